"""Routes over a paid link, on three real engines: the staff hub reaches relay R over a memory medium, and
R reaches a remote care home only by satellite (R's Iridium 9603 is the simulator on a real pty, the care
home has the provider's webhook, the simulated provider cloud between them and billing every message).
No hub has a [routes] table, and the staff hub has no [[peers]] line for the care home.

Without ``announce = "changes"`` on the satellite links no route announcement crosses them, so R never
learns the care home as a neighbour and the staff hub has no way to it; with it, the staff hub learns
the care home through R, a message gets there, and the credits the announcements cost are counted by
the hubs exactly as the provider billed them. With no [[peers]] line for the satellite link on either end,
the care home's modem announces itself to the provider, R (the webhook's end) learns the care home at the
IMEI the provider posted and answers with its table, and the care home learns R at the provider
("cloud")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.core.frame import Kind, Priority, decode_frame
from hub.core.identity import Identity
from hub.core.kinds.routes import decode
from hub.relay.events import MessageReceived
from hub.relay.hub import Hub
from hub.relay.roster import Role
from hub.relay.settings import LinkConfig
from simulators.iridium_cloud import IridiumCloud, credits_for
from tests.inproc import eventually, hub_config, peer, running
from tests.relay.test_own_kinds import acknowledged
from tests.satellite_provider import Provider, provider

# Up to four waits of WAIT seconds each: three engines, the modem and the cloud on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(600)

IMEI = "300234010753372"
WAIT = 120.0
"""Seconds to wait for the link and the first announcement (30 s after a hub starts): generous, for a
loaded 2-core machine."""
ANNOUNCE_HOURS = 6


@dataclass
class Hubs:
    staff: Hub
    relay: Hub
    home: Hub
    cloud: IridiumCloud

    def route_credits_billed(self) -> int:
        """Credits the provider billed for the route announcements the relay's modem sent."""
        return sum(credits_for(len(data)) for _, data in self.cloud.mo_log if _is_route(data))


def _is_route(data: bytes) -> bool:
    return decode_frame(data).kind is Kind.ROUTE


@contextlib.asynccontextmanager
async def three_hubs(folder: Path, *, announce: bool, configured: bool = True) -> AsyncIterator[Hubs]:
    """``configured``: each end of the satellite link has a [[peers]] line for the other."""
    async with (
        provider(folder, IMEI, 2, seed=5) as sky,
        _hubs(folder, sky, announce=announce, configured=configured) as hubs,
    ):
        yield hubs


@contextlib.asynccontextmanager
async def _hubs(folder: Path, sky: Provider, *, announce: bool, configured: bool) -> AsyncIterator[Hubs]:
    cloud, modem_link, webhook_link = sky.cloud, sky.modem_link, sky.webhook_link
    gap = 3600.0 * ANNOUNCE_HOURS if announce else None  # announce = "changes", announce_hours = 6
    medium = f"paid-{folder.name}"
    ids = {name: Identity.generate(name, "staff") for name in ("Staben", "Relae", "Plejehjemmet Fjord")}
    staff_id, relay_id, home_id = ids.values()
    for name in ("staff", "relay", "home"):
        (folder / name).mkdir()
    # With [[peers]] R has the modem; without, the care home has it (a remote site's own terminal) and R the
    # webhook: the modem's end announces itself to the provider, and the end that answers offers the default.
    relay_link, home_link = (modem_link, webhook_link) if configured else (webhook_link, modem_link)
    staff_config = hub_config(folder / "staff", "staff", medium, peers=(peer(relay_id, "relay"),))
    relay_peers = [peer(staff_id, "staff")] + ([peer(home_id, "cloud", ("sat",))] if configured else [])
    relay_config = hub_config(
        folder / "relay", "relay", medium,
        links=(LinkConfig("memory", "memory", {"kind": "memory", "medium": medium, "address": "relay"}),
               LinkConfig("sat", "satellite", relay_link, gap)),
        peers=tuple(relay_peers),
    )  # fmt: skip
    home_config = hub_config(
        folder / "home", "home", "", role=Role.CARE_HOME,
        links=(LinkConfig("sat", "satellite", home_link, gap),),
        peers=(peer(relay_id, IMEI, ("sat",)),) if configured else (),
    )  # fmt: skip
    first, then = ((home_config, home_id), (relay_config, relay_id))
    if not configured:
        first, then = then, first
    async with running(staff_config, staff_id) as staff, running(*first) as webhook_end:
        cloud.webhook_url = webhook_end.links.transports["sat"].receiver.url  # type: ignore[attr-defined]
        _trust_all(webhook_end, ids.values())  # before the modem's end first announces itself
        async with running(*then) as modem_end:
            _trust_all(staff, ids.values())
            _trust_all(modem_end, ids.values())
            relay, home = (modem_end, webhook_end) if configured else (webhook_end, modem_end)
            yield Hubs(staff, relay, home, cloud)


def _trust_all(hub: Hub, identities: Iterable[Identity]) -> None:
    for identity in identities:
        if identity.node_id != hub.node_id:
            hub.roster.add(identity.card)


async def test_a_hub_reached_only_by_satellite_is_learned_when_its_link_asks(tmp_path: Path) -> None:
    async with three_hubs(tmp_path, announce=True) as hubs:
        await _message_and_ack_cross(hubs)
        relay, home, staff = hubs.relay, hubs.home, hubs.staff
        assert relay.routes.paid_frames > 0 and home.routes.paid_frames > 0
        spent = relay.routes.paid_spent["sat"].credits
        assert spent > 0 and spent == hubs.route_credits_billed()
        shown = {row.get("route_credits") for row in await relay.links_summary() if row["link"] == "sat"}
        assert shown == {spent}  # what /v1/links shows, and 'beredt links' prints
        assert staff.routes.paid_frames == 0  # its only link is free


async def test_the_two_ends_of_the_satellite_learn_each_other_with_no_peers_line(tmp_path: Path) -> None:
    async with three_hubs(tmp_path, announce=True, configured=False) as hubs:
        relay, home = hubs.relay, hubs.home
        await eventually(lambda: relay.links.address_of(home.node_id, "sat") == IMEI, WAIT)
        await eventually(lambda: home.links.address_of(relay.node_id, "sat") == "cloud", WAIT)
        await _message_and_ack_cross(hubs)
        # the care home announced itself once to the provider, not again: it has a neighbour there since
        assert sum(_is_alone_route(data) for _, data in hubs.cloud.mo_log) == 1


def _is_alone_route(data: bytes) -> bool:
    frame = decode_frame(data)
    return frame.kind is Kind.ROUTE and decode(frame.payload).alone


async def _message_and_ack_cross(hubs: Hubs) -> None:
    """The staff hub learns its way to the care home through R and back; an urgent text gets there
    over the satellite and its end-to-end ack comes back."""
    staff, relay, home = hubs.staff, hubs.relay, hubs.home
    await eventually(lambda: staff.router.route(home.node_id) == [relay.node_id], WAIT)
    # The way back: R's first announcement over the satellite, one free interval after it came up,
    # offers the care home everything else through R.
    await eventually(lambda: home.router.route(staff.node_id) == [relay.node_id], WAIT)
    received: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

    async def watch() -> None:
        async for event in home.subscribe():
            if isinstance(event, MessageReceived) and event.kind == "text":
                received.set_result((event.sender, event.link))
                return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    # Urgent: a satellite link takes nothing less (the default paid_min_priority).
    text = b"Mobilnettet er nede hos jer?"
    sent = await staff.submit(Kind.TEXT, home.node_id, text, priority=Priority.URGENT)
    async with asyncio.timeout(WAIT):
        assert await received == (staff.node_id.hex(), "sat")
    watcher.cancel()
    await acknowledged(staff, sent, WAIT)  # the care home's end-to-end ack came back the learned way


async def test_without_the_opt_in_no_announcement_crosses_the_satellite(tmp_path: Path) -> None:
    async with three_hubs(tmp_path, announce=False) as hubs:
        staff, relay, home = hubs.staff, hubs.relay, hubs.home
        # The staff hub learns R (a free link) while R's table is still empty of the care home.
        await eventually(lambda: staff.routes.table.best(relay.node_id) is not None, WAIT)
        await eventually(lambda: relay.routes.sent_frames >= 3, WAIT)
        assert staff.router.route(home.node_id) == []
        assert relay.routes.paid_frames == home.routes.paid_frames == 0
        assert hubs.route_credits_billed() == 0 and relay.routes.paid_spent == {}
