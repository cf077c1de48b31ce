"""The satellite transport in both roles, through the simulated 9603 (on a real pty) and provider cloud."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware import iridium_sbd as sbd
from hub.core.errors import (
    BudgetExhausted,
    ConfigError,
    DeliveryRefused,
    FrameTooLarge,
    LinkDown,
    ProtocolError,
    TrustError,
)
from hub.core.transport import LinkChanged, TimeHint, TransportContext, TransportEvent
from simulators.iridium import Iridium9603
from simulators.iridium_cloud import IridiumCloud, hs256_token
from simulators.pty_device import PtyDevice
from tests.transports.contract import LinkPair, TransportContract, next_received
from transports.satellite import SatelliteModemTransport, open_transport
from transports.satellite_delivery import parse_delivery
from transports.satellite_webhook import SatelliteWebhookTransport

NOW = 1_760_000_000.0  # 2025-10-09: after PLAUSIBLE_EPOCH, before the 2026 tick rollover
SECRET = "shared webhook secret"
IMEI_1, IMEI_2 = "300234010753371", "300234010753372"
FAST_RETRY = {"retry_soon_seconds": 0.02, "retry_later_seconds": 0.05, "give_up_minutes": 0.1}

E = TypeVar("E", bound=TransportEvent)


def context(tmp_path: Path, node: str) -> TransportContext:
    return TransportContext(node_id=node, data_dir=tmp_path / node, logger=logging.getLogger(f"test.{node}"))


async def next_event(transport: Any, kind: type[E], deadline: float = 10.0) -> E:
    async def pull() -> E:
        async for event in transport.events():
            if isinstance(event, kind):
                return event
        raise AssertionError("events ended")

    return await asyncio.wait_for(pull(), deadline)


@dataclass
class Modem:
    model: Iridium9603
    device: PtyDevice
    transport: SatelliteModemTransport


class World:
    """A provider cloud, a webhook end and any number of modems, all torn down together."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.cloud = IridiumCloud(session_delay=0.02, network_time=lambda: NOW, webhook_secret=SECRET, seed=3)
        self.closers: list[Callable[[], Awaitable[None]]] = []

    async def start(self) -> None:
        await self.cloud.start()
        self.closers.append(self.cloud.aclose)

    async def webhook(self, **options: Any) -> SatelliteWebhookTransport:
        settings = {
            "webhook_listen": "127.0.0.1:0",
            "webhook_token": SECRET,
            "mt_url": self.cloud.mt_url,
            "mt_username": "beredt",
            "mt_password": "secret",
        } | options
        transport = await open_transport("sat", settings, context(self.tmp_path, "central"))
        assert isinstance(transport, SatelliteWebhookTransport)
        self.closers.append(transport.aclose)
        self.cloud.webhook_url = transport.receiver.url
        return transport

    async def modem(self, imei: str, serial: int, *, start: bool = True, **options: Any) -> Modem:
        model = Iridium9603(imei, self.cloud)
        self.cloud.attach(model, serial)
        path = self.tmp_path / f"iridium-{serial}"
        device = PtyDevice(model, path, baud=19200)
        self.closers.append(device.aclose)
        if start:
            device.start()
        settings = {"device": str(path), "serial": serial} | FAST_RETRY | options
        transport = await open_transport("sat", settings, context(self.tmp_path, f"modem{serial}"))
        assert isinstance(transport, SatelliteModemTransport)
        self.closers.append(transport.aclose)
        if start:
            await asyncio.wait_for(transport.ready.wait(), 10)
        return Modem(model, device, transport)

    async def aclose(self) -> None:
        for close in reversed(self.closers):
            await close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    world = World(tmp_path)
    await world.start()
    yield world
    await world.aclose()


class TestSatelliteModemToWebhookContract(TransportContract):
    """MO from a modem reaches the webhook end; MT from the webhook end rings the modem."""

    @pytest.fixture
    async def link_pair(self, world: World) -> AsyncIterator[LinkPair]:
        # The contract sends at the default priority (normal); the floor is tested on its own below.
        central = await world.webhook(min_priority=0)
        modem = await world.modem(IMEI_1, 1, min_priority=0)
        yield LinkPair(modem.transport, central, IMEI_1, "cloud")


class TestSatelliteModemToModemContract(TransportContract):
    """Two modems on one account: the provider forwards payloads that start with RB + serial."""

    @pytest.fixture
    async def link_pair(self, world: World) -> AsyncIterator[LinkPair]:
        one = await world.modem(IMEI_1, 1, min_priority=0)
        two = await world.modem(IMEI_2, 2, min_priority=0)
        yield LinkPair(one.transport, two.transport, "RB0000001", "RB0000002")


async def test_no_service_and_rf_drop_are_retried_then_delivered(world: World) -> None:
    central = await world.webhook()
    modem = await world.modem(IMEI_1, 1)
    world.cloud.fail_next(IMEI_1, 32, 18)
    await modem.transport.send("cloud", b"\x01after two failures", priority=3)
    got = await next_received(central, 10)
    assert got.data == b"\x01after two failures"
    assert got.source == IMEI_1
    assert modem.model.sessions == 3


async def test_modem_link_carries_network_time_and_never_polls_blindly(world: World) -> None:
    modem = await world.modem(IMEI_1, 1)
    hint = await next_event(modem.transport, TimeHint)
    assert hint.unix_time == pytest.approx(NOW, abs=0.1)
    assert hint.source == "iridium"
    await asyncio.sleep(0.3)
    assert modem.model.sessions == 0  # idle: no session, no credit


async def test_network_time_in_the_next_iridium_era_needs_no_configuration(world: World) -> None:
    later = 1_800_000_000.0  # 2027: the network counts frames from the ERA3 epoch (2025-02-14)
    world.cloud.network_time_source = lambda: later
    current = await world.modem(IMEI_1, 1)
    hint = await next_event(current.transport, TimeHint)
    assert hint.unix_time == pytest.approx(later, abs=0.1)
    # A hub pinned to the 2014 epoch reads that count as 2016: never handed to the hub as time.
    stale = await world.modem(IMEI_2, 2, msstm_epoch=sbd.IRIDIUM_EPOCH)
    assert stale.transport.time_hints_refused == 1


async def test_scheduled_mailbox_check_fetches_mt_without_a_ring(world: World) -> None:
    modem = await world.modem(IMEI_1, 1, mailbox_check_minutes=0.005)
    modem.model.ring_alerts = False  # a ring lost in the sky: the schedule still finds the message
    world.cloud.queue_mt(IMEI_1, b"\x01queued")
    got = await next_received(modem.transport, 10)
    assert (got.source, got.data) == ("cloud", b"\x01queued")


async def test_routine_priority_is_refused_by_default(world: World) -> None:
    modem = await world.modem(IMEI_1, 1)  # no min_priority option: the default floor applies
    with pytest.raises(BudgetExhausted, match=r"priority 1 \(normal\) may not use the paid satellite link"):
        await modem.transport.send("cloud", b"\x01normal")
    with pytest.raises(BudgetExhausted, match=r"priority 0 \(routine\)"):
        await modem.transport.send("cloud", b"\x01routine", priority=0)
    assert world.cloud.mo_log == []
    await modem.transport.send("cloud", b"\x01urgent", priority=2)
    assert world.cloud.mo_log == [(IMEI_1, b"\x01urgent")]
    central = await world.webhook()
    with pytest.raises(BudgetExhausted, match="min_priority is 2"):
        await central.send(IMEI_1, b"\x01normal MT")
    assert modem.transport.budget.used_today == 1 and central.budget.used_today == 0


async def test_daily_budget_is_counted_per_50_bytes_and_survives_a_restart(
    world: World, tmp_path: Path
) -> None:
    modem = await world.modem(IMEI_1, 1, daily_credit_budget=5)
    await modem.transport.send("cloud", b"\x01" * 101, priority=3)  # 3 credits
    assert modem.transport.budget.used_today == 3
    with pytest.raises(BudgetExhausted, match="3 of 5 credits used, this frame needs 3") as caught:
        await modem.transport.send("cloud", b"\x01" * 120, priority=3)
    assert 0 < caught.value.retry_after <= 86400
    await modem.transport.aclose()
    again = await open_transport(
        "sat",
        {"device": str(modem.device.link_path), "daily_credit_budget": 5} | FAST_RETRY,
        context(tmp_path, "modem1"),
    )
    try:
        assert isinstance(again, SatelliteModemTransport)
        assert again.budget.used_today == 3
    finally:
        await again.aclose()


async def test_unknown_address_and_missing_serial_are_refused(world: World) -> None:
    modem = await world.modem(IMEI_1, 1)
    with pytest.raises(DeliveryRefused, match="not a satellite address"):
        await modem.transport.send("300234010753372", b"\x01x", priority=3)
    with pytest.raises(LinkDown):
        await modem.transport.probe("nowhere")
    central = await world.webhook()
    with pytest.raises(DeliveryRefused, match="15-digit IMEI"):
        await central.send("cloud", b"\x01x", priority=3)
    with pytest.raises(FrameTooLarge):
        await central.send(IMEI_1, b"\x01" * 251, priority=3)


async def test_bad_checksums_on_the_serial_line(world: World) -> None:
    central = await world.webhook()
    modem = await world.modem(IMEI_1, 1)
    modem.model.corrupt_next_write = True
    with pytest.raises(LinkDown, match="bad checksum"):
        await modem.transport.send("cloud", b"\x01x", priority=3)
    assert modem.transport.budget.used_today == 0  # refunded: nothing went out
    modem.model.corrupt_next_read = True
    await central.send(IMEI_1, b"\x01mt survives a re-read", priority=3)
    got = await next_received(modem.transport, 10)
    assert got.data == b"\x01mt survives a re-read"


async def test_unplug_mid_session_is_link_down_and_replug_brings_it_back(world: World) -> None:
    modem = await world.modem(IMEI_1, 1)
    up = await next_event(modem.transport, LinkChanged)
    assert up.up
    world.cloud.session_delay = 0.3
    modem.device.unplug_on(b"AT+SBDIX")
    with pytest.raises(LinkDown, match="unplugged"):
        await modem.transport.send("cloud", b"\x01lost", priority=3)
    down = await next_event(modem.transport, LinkChanged)
    assert not down.up
    assert modem.transport.budget.used_today == 0
    with pytest.raises(LinkDown):
        await modem.transport.probe("cloud")
    world.cloud.session_delay = 0.02
    modem.device.replug()
    back = await next_event(modem.transport, LinkChanged, deadline=20)
    assert back.up
    await modem.transport.send("cloud", b"\x01back", priority=3)
    assert world.cloud.mo_log[-1] == (IMEI_1, b"\x01back")


async def test_modem_absent_at_start_reports_down_then_up(world: World) -> None:
    modem = await world.modem(IMEI_1, 1, start=False)
    down = await next_event(modem.transport, LinkChanged)
    assert not down.up and "unavailable" in down.reason
    with pytest.raises(LinkDown, match="modem not available"):
        await modem.transport.send("cloud", b"\x01x", priority=3)
    modem.device.start()
    up = await next_event(modem.transport, LinkChanged, deadline=20)
    assert up.up


async def test_probe_without_signal_and_with_mt_api_down(world: World) -> None:
    central = await world.webhook()
    modem = await world.modem(IMEI_1, 1)
    await central.probe(IMEI_1)
    world.cloud.service = False
    with pytest.raises(LinkDown, match="no satellite signal"):
        await modem.transport.probe("cloud")
    assert modem.model.sessions == 0
    await world.cloud.aclose()
    with pytest.raises(LinkDown, match="unreachable"):
        await central.probe(IMEI_1)


async def test_mt_api_refusals_are_mapped(world: World) -> None:
    central = await world.webhook(mt_password="wrong")
    with pytest.raises(DeliveryRefused, match="Invalid login credentials"):
        await central.send(IMEI_1, b"\x01x", priority=3)
    assert central.budget.used_today == 0


# -- the webhook receiver ------------------------------------------------------------------------


def _form(**changes: str) -> dict[str, str]:
    fields = {
        "imei": IMEI_1,
        "momsn": "7",
        "transmit_time": "23-11-14 22:13:20",
        "iridium_latitude": "56.1572",
        "iridium_longitude": "10.2107",
        "iridium_cep": "4",
        "data": "0168656c6c6f",
    } | changes
    fields["JWT"] = hs256_token({k: v for k, v in fields.items()}, SECRET)
    return fields


@pytest.mark.parametrize(
    ("fields", "status", "reason"),
    [
        (_form(imei="12345"), 400, "imei must be 15 digits"),
        (_form(momsn="70000"), 400, "momsn"),
        (_form(transmit_time="2023-11-14T22:13:20Z"), 400, "transmit_time"),
        (_form(data="zz"), 400, "data is not hex"),
        (_form(data=""), 400, "1-340 bytes"),
        (_form(data="00" * 341), 400, "1-340 bytes"),
        (_form(iridium_latitude="91"), 400, "iridium_latitude"),
        ({k: v for k, v in _form().items() if k != "JWT"}, 403, "JWT field is missing"),
        (_form() | {"JWT": hs256_token({"imei": IMEI_1}, "another secret")}, 403, "signature does not match"),
        (_form() | {"JWT": "not.a.token"}, 403, "token"),
        (_form() | {"data": "0168656c6c6e"}, 403, "claim data differs"),
    ],
)
async def test_webhook_rejects_malformed_and_unsigned_posts(
    world: World, fields: dict[str, str], status: int, reason: str
) -> None:
    central = await world.webhook()
    async with aiohttp.ClientSession() as http, http.post(central.receiver.url, data=fields) as response:
        assert response.status == status
        assert reason in await response.text()
    assert central.receiver.rejected == 1 and central.receiver.accepted == 0


async def test_webhook_accepts_once_and_ignores_provider_retries(world: World) -> None:
    central = await world.webhook()
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.post(central.receiver.url, data=_form()) as response:
                assert response.status == 200
    got = await next_received(central, 5)
    assert (got.source, got.data) == (IMEI_1, b"\x01hello")
    assert got.meta["momsn"] == 7 and got.meta["latitude"] == pytest.approx(56.1572)
    assert central.receiver.duplicates == 1


async def test_webhook_limits_to_listed_imeis(world: World) -> None:
    central = await world.webhook(imeis=[IMEI_2])
    async with aiohttp.ClientSession() as http, http.post(central.receiver.url, data=_form()) as response:
        assert response.status == 403


@given(
    st.dictionaries(
        st.sampled_from(["imei", "momsn", "transmit_time", "iridium_latitude", "iridium_cep", "data", "JWT"]),
        st.text(max_size=40),
    )
)
def test_any_webhook_form_parses_or_is_refused_with_our_errors(fields: dict[str, str]) -> None:
    for secret in (None, SECRET):
        try:
            delivery = parse_delivery(fields, secret=secret)
        except (ProtocolError, TrustError):
            continue
        assert delivery.data == bytes.fromhex(fields["data"])


async def test_a_webhook_end_without_mt_url_only_receives(tmp_path: Path) -> None:
    central = await open_transport("sat", {"webhook_listen": "127.0.0.1:0"}, context(tmp_path, "c"))
    try:
        with pytest.raises(DeliveryRefused, match="only receives"):
            await central.send(IMEI_1, b"\x01x", priority=3)
    finally:
        await central.aclose()


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({}, "links.sat"),
        ({"device": "/dev/x", "webhook_listen": "127.0.0.1:0"}, "links.sat"),
        ({"device": "/dev/x", "colour": "red"}, "links.sat.colour"),
        ({"device": "/dev/x", "baud": "fast"}, "links.sat.baud"),
        ({"device": "/dev/x", "serial": 123456789}, "links.sat.serial"),
        ({"device": "/dev/x", "daily_credit_budget": -1}, "links.sat.daily_credit_budget"),
        ({"device": "/dev/x", "min_priority": 4}, "links.sat.min_priority"),
        ({"device": "/dev/x", "mt_url": "http://x"}, "links.sat"),
        ({"device": ""}, "links.sat.device"),
        ({"webhook_listen": "nowhere"}, "links.sat.webhook_listen"),
        ({"webhook_listen": "127.0.0.1:0", "baud": 9600}, "links.sat"),
        ({"webhook_listen": "127.0.0.1:0", "mt_url": "ftp://x"}, "links.sat.mt_url"),
        ({"webhook_listen": "127.0.0.1:0", "mt_url": "http://x"}, "links.sat"),
        ({"webhook_listen": "127.0.0.1:0", "imeis": ["123"]}, "links.sat.imeis"),
        ({"webhook_listen": "127.0.0.1:0", "webhook_path": "mo"}, "links.sat.webhook_path"),
    ],
)
async def test_config_errors_name_the_key(tmp_path: Path, options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await open_transport("sat", {"kind": "satellite"} | options, context(tmp_path, "node"))
    assert caught.value.key == key


async def test_webhook_port_in_use_is_a_config_error(world: World, tmp_path: Path) -> None:
    central = await world.webhook()
    with pytest.raises(ConfigError, match="kan ikke lytte på"):
        await open_transport(
            "sat", {"webhook_listen": f"127.0.0.1:{central.receiver.port}"}, context(tmp_path, "other")
        )


def test_mtu_keeps_full_fragments_at_five_credit_steps() -> None:
    from transports.satellite import MODEM_MTU
    from transports.satellite_budget import WEBHOOK_MTU

    assert sbd.credits_for(MODEM_MTU + 2 * sbd.RB_PREFIX_SIZE) == 5
    assert sbd.credits_for(MODEM_MTU + 2 * sbd.RB_PREFIX_SIZE + 1) == 6
    assert WEBHOOK_MTU <= sbd.MT_MAX and sbd.credits_for(WEBHOOK_MTU) == 5


async def test_probe_during_a_long_session_answers_at_once_and_cancel_refunds(world: World) -> None:
    modem = await world.modem(IMEI_1, 1)
    world.cloud.session_delay = 60.0
    world.cloud.session_started.clear()
    sending = asyncio.create_task(modem.transport.send("cloud", b"\x01slow sky", priority=3))
    await asyncio.wait_for(world.cloud.session_started.wait(), 10)
    assert modem.model.in_session
    assert modem.transport.budget.used_today == 1
    await asyncio.wait_for(modem.transport.probe("cloud"), 5)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    assert modem.transport.budget.used_today == 0


# -- two real hubs over the simulated constellation ----------------------------------------------


async def test_care_home_hub_reaches_staff_hub_over_satellite_only(world: World, tmp_path: Path) -> None:
    """A care home with only a 9603 reports to the staff hub, which has only the provider webhook."""
    from tests.hubproc import HubProcess, free_port

    model = Iridium9603(IMEI_1, world.cloud)
    world.cloud.attach(model, 1)
    device = PtyDevice(model, tmp_path / "iridium-care", baud=19200)
    device.start()
    world.closers.append(device.aclose)
    webhook_port = free_port()
    world.cloud.webhook_url = f"http://127.0.0.1:{webhook_port}/iridium/mo"

    def build() -> tuple[HubProcess, HubProcess]:
        staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff", internet=False)
        care = HubProcess.create(tmp_path / "care", "Plejehjemmet Solgaarden", "care-home", internet=False)
        staff.add_link("satellite", {
            "kind": "satellite", "webhook_listen": f"127.0.0.1:{webhook_port}", "webhook_token": SECRET,
            "mt_url": world.cloud.mt_url, "mt_username": "beredt", "mt_password": "secret",
        })  # fmt: skip
        care.add_link(
            "satellite", {"kind": "satellite", "device": str(device.link_path), "serial": 1} | FAST_RETRY
        )
        staff.add_peer(care, {"satellite": IMEI_1})
        care.add_peer(staff, {"satellite": "cloud"})
        staff.set_default_route([care])
        care.set_default_route([staff])
        staff.trust(care)
        care.trust(staff)
        staff.start()
        care.start()
        return staff, care

    staff, care = await asyncio.to_thread(build)
    try:
        urgent = await asyncio.to_thread(
            care.send,
            staff.node_id,
            "text",
            "Strømmen er gået; generator kører, 6 timers brændstof",
            priority="urgent",
        )
        routine = await asyncio.to_thread(
            care.send, staff.node_id, "text", "Ugeplan for kantinen", priority="normal"
        )

        def arrived() -> bool:
            return any(m["id"] == urgent for m in staff.inbox())

        await asyncio.to_thread(staff.wait_for, "the urgent report over satellite", arrived, 60)
        await asyncio.to_thread(
            care.wait_for,
            "the end-to-end ack back over MT",
            lambda: care.message(urgent)["end_to_end_acked"],
            60,
        )
        inbox = await asyncio.to_thread(staff.inbox)
        assert routine not in {m["id"] for m in inbox}, "routine traffic must not spend satellite credit"
        assert all(imei == IMEI_1 for imei, _ in world.cloud.mo_log)
        assert world.cloud.account(IMEI_1).credits > 0
    finally:
        await asyncio.to_thread(staff.kill)
        await asyncio.to_thread(care.kill)
