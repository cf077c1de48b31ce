"""A hub that got its version as an older one's pages and deltas: the root's pages of that version replace
the chain (also on disk, and in what it hands on), and after a restart it announces as it did before,
never pages a neighbour holding its version would refuse as stale, and never with an endless lifetime.
Announcements are recorded where ``Hub.submit`` would sign them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.clock import ManualClock
from hub.core.frame import Kind, Priority
from hub.core.identity import Identity
from hub.core.kinds.roster import RosterNode, RosterVersion
from hub.core.kinds.roster_delta import is_delta, make_delta
from hub.relay.roster import Roster
from hub.relay.roster_follow import URGENT_TTL_MINUTES, RosterFollowUp
from hub.relay.roster_handoff import RosterHandoff
from hub.relay.roster_updates import RosterUpdates
from hub.service.assembly import open_hub
from tests.inproc import eventually, hub_config, medium_name

ROOT = Ed25519PrivateKey.generate()
RELAY = Identity.generate("Relæ Nord", "relay")
STAFF = Identity.generate("Aarhus krisestab", "staff")
HOMES = [Identity.generate(f"Plejehjem {i:02}", "care-home") for i in range(3)]
V1 = RosterVersion(1, 1_700_000_000, (RosterNode(STAFF.card), RosterNode(RELAY.card)))
V2 = V1.with_node(RosterNode(HOMES[0].card), now=1_700_000_060)
V3 = V2.with_node(RosterNode(HOMES[1].card), now=1_700_000_120)


def _delta(base: RosterVersion, new: RosterVersion) -> bytes:
    delta = make_delta(base, new)
    assert delta is not None
    return delta.sign(ROOT)


def _offer(updates: RosterUpdates, payload: bytes) -> bool:
    return updates.apply(updates.check(payload), payload)


def _chain(folder: Path) -> RosterUpdates:
    """A relay holding V3 as V1's pages and the deltas to V2 and V3."""
    updates = RosterUpdates(Roster(RELAY.card), ROOT.public_key(), folder)
    for page in V1.sign(ROOT):
        assert _offer(updates, page)
    assert _offer(updates, _delta(V1, V2)) and _offer(updates, _delta(V2, V3))
    assert updates.version == 3 and sum(is_delta(p) for p in updates.payloads) == 2
    return updates


async def test_the_roots_pages_of_the_version_held_replace_the_chain_on_disk_and_in_hand_offs(
    tmp_path: Path,
) -> None:
    updates = _chain(tmp_path)
    pages = V3.sign(ROOT)
    assert [_offer(updates, page) for page in pages][-1], "saved once the last page is here"
    assert updates.payloads == pages and updates.version == 3
    restarted = RosterUpdates(Roster(RELAY.card), ROOT.public_key(), tmp_path)
    assert restarted.load() and restarted.payloads == pages and restarted.roster.version == V3
    assert _offer(restarted, pages[0]) is False and restarted.payloads == pages  # again: nothing changes

    sent: list[bytes] = []

    async def send(kind: Kind, recipient: bytes, payload: bytes, **options: Any) -> bytes:
        sent.append(payload)
        return b"\x00" * 16

    clock = ManualClock()
    handoff = RosterHandoff(RELAY.node_id, restarted, lambda n: True, send, clock)
    runner = asyncio.create_task(handoff.run())
    try:
        handoff.offer(HOMES[2].node_id)
        await eventually(lambda: handoff.handed == 1)
    finally:
        runner.cancel()
    assert sent == pages, "pages only, no chain"


async def test_after_a_restart_a_chain_is_announced_as_its_last_delta_with_a_finite_lifetime(
    tmp_path: Path,
) -> None:
    held = _chain(tmp_path / "data").payloads
    restarted = RosterUpdates(Roster(RELAY.card), ROOT.public_key(), tmp_path / "data")
    assert restarted.load() and restarted.payloads == held
    assert restarted.delta == (2, held[-1]), "the delta that made V3, as before the restart"

    announced: asyncio.Queue[tuple[bytes, dict[str, Any]]] = asyncio.Queue()

    async def submit(kind: Kind, recipient: bytes, payload: bytes, **options: Any) -> bytes:
        assert kind is Kind.ROSTER
        announced.put_nowait((payload, options))
        return b"\x00" * 16

    config = hub_config(tmp_path / "hub", "Relæ Nord", medium_name())
    async with open_hub(config, RELAY) as hub:
        follow = RosterFollowUp(
            restarted,
            hub.links,
            hub.router,
            hub.store,
            hub.sealing,
            hub.clock,
            submit,
            announce_interval=3600,
        )
        runner = asyncio.create_task(follow.announce_forever())
        try:
            payload, options = await asyncio.wait_for(announced.get(), 30)
            follow.announce_now.set()  # the next round: a chain is not repeated
            await eventually(lambda: not follow.announce_now.is_set())
        finally:
            runner.cancel()
    assert payload == held[-1] and announced.empty(), (
        "the last delta alone: the rest is stale for V3's holders"
    )
    assert options["priority"] is Priority.URGENT
    assert options["ttl_minutes"] is not None and options["ttl_minutes"] >= URGENT_TTL_MINUTES
    assert options["ttl_minutes"] == 2 * 60, "two intervals of an hour: the longer of the two"
