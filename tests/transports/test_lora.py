"""The LoRa transport: the real meshtastic library against fake radios on a simulated mesh."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.errors import BudgetExhausted, ConfigError, DeliveryRefused, FrameTooLarge, LinkDown
from hub.core.frame import Priority, decode_frame
from hub.core.tasks import cancel_and_wait
from hub.core.transport import BROADCAST_ADDRESS, Cost, LinkChanged, TimeHint, TransportContext
from simulators.meshtastic_radio import FakeMeshtasticRadio
from simulators.rf_medium import RFMedium
from tests.core.kinds.test_kinds import FULL_STATUS
from tests.hubproc import HubProcess, free_port
from tests.transports.contract import LinkPair, TransportContract, next_received
from transports.lora import MTU, LoraTransport, open_transport
from transports.lora_airtime import PRIORITY_CEILING, AirtimeBudget, ModemPreset, packet_airtime, time_on_air
from transports.lora_packets import ROUTING_APP
from transports.lora_peers import RECHECK_DOWN, PeerBook
from transports.lora_settings import LoraSettings

T = TypeVar("T")
A, B, C = 0xA1, 0xB2, 0xC3
ADDR = {n: f"!{n:08x}" for n in (A, B, C)}


def context(tmp_path: Path) -> TransportContext:
    return TransportContext(node_id="0" * 16, data_dir=tmp_path, logger=logging.getLogger("test.lora"))


async def tcp_link(radio: FakeMeshtasticRadio, tmp_path: Path, **options: Any) -> LoraTransport:
    port = await radio.start_tcp() if not radio.plugged else radio.cable.tcp_port
    opts = {"kind": "lora", "host": f"127.0.0.1:{port}", "connect_timeout": 15, "reconnect_max": 1, **options}
    return await open_transport("lora", opts, context(tmp_path))


async def pty_link(radio: FakeMeshtasticRadio, tmp_path: Path, **options: Any) -> LoraTransport:
    link = await radio.start_pty(tmp_path / f"ttyMESH{radio.node_num:x}")
    opts = {"kind": "lora", "device": str(link), "connect_timeout": 15, "reconnect_max": 1, **options}
    return await open_transport("lora", opts, context(tmp_path))


async def link_change(transport: LoraTransport, *, up: bool, within: float = 15.0) -> LinkChanged:
    """The next ``LinkChanged`` to ``up``, skipping frames and earlier changes (the opening "connected")."""

    async def pull() -> LinkChanged:
        async for event in transport.events():
            if isinstance(event, LinkChanged) and event.up == up:
                return event
        raise AssertionError("events ended")

    return await asyncio.wait_for(pull(), within)


class Mesh:
    """Fake radios on one medium and the transports opened on them; closes everything."""

    def __init__(self, tmp_path: Path, **medium: Any) -> None:
        self.tmp_path = tmp_path
        self.medium = RFMedium(seed=1, **medium)
        self.radios: dict[int, FakeMeshtasticRadio] = {}
        self.links: list[LoraTransport] = []

    async def open(
        self, num: int, how: Callable[..., Awaitable[LoraTransport]] = tcp_link, **options: Any
    ) -> LoraTransport:
        if num not in self.radios:
            self.radios[num] = FakeMeshtasticRadio(num, self.medium)
        radio = self.radios[num]
        transport = await how(radio, self.tmp_path, **options)
        self.links.append(transport)
        return transport

    async def aclose(self) -> None:
        for transport in self.links:
            await transport.aclose()
        for radio in self.radios.values():
            await radio.aclose()


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    mesh = Mesh(tmp_path)
    yield mesh
    await mesh.aclose()


# -- the contract, over both attachments ---------------------------------------------------------


class TestLoraTcpContract(TransportContract):
    @pytest.fixture
    async def link_pair(self, mesh: Mesh) -> AsyncIterator[LinkPair]:
        a, b = await mesh.open(A), await mesh.open(B)
        yield LinkPair(a, b, ADDR[A], ADDR[B])


class TestLoraSerialContract(TransportContract):
    @pytest.fixture
    async def link_pair(self, mesh: Mesh) -> AsyncIterator[LinkPair]:
        a, b = await mesh.open(A, pty_link), await mesh.open(B, pty_link)
        yield LinkPair(a, b, ADDR[A], ADDR[B])


# -- what goes on the air ------------------------------------------------------------------------


async def test_frame_is_a_want_ack_dm_on_the_private_port(mesh: Mesh) -> None:
    a, b = await mesh.open(A, port=300), await mesh.open(B, port=300)
    await a.send(ADDR[B], b"\x01frame", priority=Priority.URGENT)
    got = await next_received(b, 10)
    assert got.source == ADDR[A]
    assert {"rxSnr", "rxRssi", "hopStart", "hopLimit"} <= set(got.meta)
    (packet,) = mesh.radios[A].from_host
    assert (packet.to, packet.want_ack, packet.decoded.portnum) == (B, True, 300)
    assert a.capabilities.link_ack and a.capabilities.cost is Cost.METERED and a.capabilities.mtu == MTU


async def test_broadcast_reaches_everyone_without_ack_and_other_ports_are_ignored(mesh: Mesh) -> None:
    a, b, c = await mesh.open(A), await mesh.open(B), await mesh.open(C, port=257)
    await a.send(BROADCAST_ADDRESS, b"\x01all")
    assert (await next_received(b, 10)).data == b"\x01all"
    assert mesh.radios[A].from_host[0].to == 0xFFFFFFFF
    assert not mesh.radios[A].from_host[0].want_ack
    with pytest.raises(TimeoutError):
        await next_received(c, 0.5)  # c listens on another private port: the same radio traffic is not for it


async def test_two_transports_in_one_process_keep_their_packets_apart(mesh: Mesh) -> None:
    a, b, c = await mesh.open(A), await mesh.open(B), await mesh.open(C)
    await a.send(ADDR[B], b"\x01for b")
    assert (await next_received(b, 10)).data == b"\x01for b"
    with pytest.raises(TimeoutError):
        await next_received(c, 0.5)


async def test_bad_addresses_and_oversize_frames_are_refused_before_the_radio(mesh: Mesh) -> None:
    a = await mesh.open(A)
    with pytest.raises(DeliveryRefused):
        await a.send("relay-nord", b"\x01x")
    with pytest.raises(FrameTooLarge):
        await a.send(ADDR[B], b"\x01" * (MTU + 1))
    with pytest.raises(LinkDown):
        await a.probe("0badbeef")
    assert mesh.radios[A].from_host == []


# -- routing NAKs and losses ---------------------------------------------------------------------


async def test_unreachable_node_is_link_down_after_the_radios_retries(mesh: Mesh) -> None:
    a, _ = await mesh.open(A), await mesh.open(B)
    mesh.medium.partition([A], [B])
    with pytest.raises(LinkDown, match="MAX_RETRANSMIT"):
        await a.send(ADDR[B], b"\x01lost")
    assert mesh.medium.transmissions == 4  # the original and three retransmissions, nobody to relay
    assert a.status()["airtime_used_s"] == pytest.approx(
        4 * packet_airtime(5, ModemPreset.LONG_FAST), rel=0.01
    )


async def test_lossy_medium_loses_a_packet_then_delivers_again(mesh: Mesh) -> None:
    a, b = await mesh.open(A), await mesh.open(B)
    mesh.medium.loss = 1.0
    with pytest.raises(LinkDown, match="MAX_RETRANSMIT"):
        await a.send(ADDR[B], b"\x01gone")
    assert mesh.medium.lost == 4
    mesh.medium.loss = 0.0
    await a.send(ADDR[B], b"\x01back")
    assert (await next_received(b, 10)).data == b"\x01back"


async def test_relay_carries_a_dm_across_the_mesh(mesh: Mesh) -> None:
    a, _, c = await mesh.open(A), await mesh.open(B), await mesh.open(C)
    mesh.medium.connect([(A, B), (B, C)])
    await a.send(ADDR[C], b"\x01via b")
    got = await next_received(c, 10)
    assert got.data == b"\x01via b" and got.meta["hopStart"] - got.meta["hopLimit"] == 1
    assert mesh.medium.airtime_used(B) > 0  # the relay spent its own airtime (the packet and the ACK)


async def test_a_relay_repeating_the_frame_is_not_a_failure_delivered_once_no_resend(mesh: Mesh) -> None:
    a, _, c = await mesh.open(A), await mesh.open(B), await mesh.open(C)
    mesh.medium.connect([(A, B), (B, C)])  # B relays: A hears it repeat the frame before C's ACK
    await a.send(ADDR[C], b"\x01via the relay")  # returns: reported delivered
    assert (await next_received(c, 10)).data == b"\x01via the relay"
    with pytest.raises(TimeoutError):
        await next_received(c, 0.5)  # exactly once
    (sent,) = mesh.radios[A].from_host  # one send, nothing resent by the link
    assert mesh.radios[A].on_air[sent.id] == 1  # nor by the radio
    assert mesh.radios[A].implicit_acks == 1
    status = a.status()
    assert (status["implicit_acks"], status["unconfirmed_after_relay"], status["peers_down"]) == (1, 0, [])


async def test_implicit_ack_without_the_destinations_ack_fails_at_the_deadline_without_resending(
    mesh: Mesh,
) -> None:
    a, _ = await mesh.open(A, ack_timeout=2), await mesh.open(B)
    mesh.medium.connect([(A, B), (B, C)])  # C's radio is switched off: B repeats into the void
    with pytest.raises(LinkDown, match="a relay repeated the frame but !000000c3 sent no ACK within 2 s"):
        await a.send(ADDR[C], b"\x01lost beyond the relay")
    sent = [p for p in mesh.radios[A].from_host if p.decoded.portnum == 256]
    assert len(sent) == 1  # the link never resent it
    assert mesh.radios[A].on_air[sent[0].id] == 1  # B's repeat stopped the radio's retransmissions
    assert a.status()["unconfirmed_after_relay"] == 1
    assert (await link_change(a, up=False)).peer == ADDR[C]
    with pytest.raises(LinkDown, match="did not answer"):
        await a.probe(ADDR[C])


async def test_partitioned_mesh_marks_the_far_peer_down_within_the_check_interval(mesh: Mesh) -> None:
    interval, answer_deadline = 2.0, 3.0
    options = {"peer_check_interval": interval, "ack_timeout": answer_deadline}
    a, _, _ = await mesh.open(A, **options), await mesh.open(B), await mesh.open(C)
    await a.probe(ADDR[C])  # first probe: a traceroute goes out in the background
    await asyncio.wait_for(a._peers.settled(), 10)
    assert a.status()["peer_checks"] == 1 and a.status()["peers_down"] == []
    mesh.medium.partition([A, B], [C])
    loop = asyncio.get_running_loop()
    cut_at = loop.time()

    async def probe_like_the_hub() -> None:
        while True:
            with contextlib.suppress(LinkDown):
                await a.probe(ADDR[C])
            await asyncio.sleep(0.2)

    prober = asyncio.create_task(probe_like_the_hub())
    try:
        down = await link_change(a, up=False, within=interval + answer_deadline + 20)
        assert (down.peer, down.reason) == (ADDR[C], "no answer to a traceroute")
        # The bound holds on an idle machine; the slack is for a loaded one.
        assert loop.time() - cut_at <= interval + answer_deadline + 15
        with pytest.raises(LinkDown):
            await a.probe(ADDR[C])
        await a.probe(ADDR[B])  # the near peer is unaffected
        assert a.status()["peers_down"] == [ADDR[C]]
        mesh.medium.heal()
        up = await link_change(a, up=True, within=interval + answer_deadline + 20)
        assert up.peer == ADDR[C]
        await a.probe(ADDR[C])
    finally:
        await cancel_and_wait(prober)
    assert 2 <= a.status()["peer_checks"] <= 2 + 3 * 20 / interval  # rate-limited to one per interval


async def test_radio_duty_cycle_refusal_is_budget_exhausted(mesh: Mesh) -> None:
    a, _ = await mesh.open(A), await mesh.open(B)
    mesh.medium.charge(A, 359.9)  # the radio has been busy for others; our own ledger does not know
    with pytest.raises(BudgetExhausted) as refused:
        await a.send(ADDR[B], b"\x01too much")
    assert refused.value.retry_after == 3600  # from the radio's notice: "send again in 60 mins"
    with pytest.raises(BudgetExhausted):  # now known: refused without another trip to the radio
        await a.send(ADDR[B], b"\x01again")
    assert len(mesh.radios[A].from_host) == 1


async def test_own_budget_keeps_room_for_life_safety(mesh: Mesh) -> None:
    per_packet = packet_airtime(200, ModemPreset.LONG_FAST)
    a, _ = await mesh.open(A, airtime_budget_seconds=5 * per_packet + 0.1), await mesh.open(B)
    frame = b"\x01" * 200
    for _ in range(3):  # routine may fill 60 % of the hour
        await a.send(ADDR[B], frame, priority=Priority.ROUTINE)
    with pytest.raises(BudgetExhausted) as refused:
        await a.send(ADDR[B], frame, priority=Priority.ROUTINE)
    assert 3000 < refused.value.retry_after <= 3600
    await a.send(ADDR[B], frame, priority=Priority.URGENT)
    await a.send(ADDR[B], frame, priority=Priority.LIFE_SAFETY)
    await a.send(ADDR[B], frame, priority=Priority.LIFE_SAFETY)  # overshoots a little: life-safety may
    with pytest.raises(BudgetExhausted):
        await a.send(ADDR[B], frame, priority=Priority.LIFE_SAFETY)
    status = a.status()
    assert status["airtime_used_s"] == pytest.approx(6 * per_packet, rel=0.01)
    assert status["queue_depth"] == 0 and status["connected"]


async def test_waiting_senders_get_the_radio_by_priority(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path, hop_delay=0.3)  # each packet and its ACK take a while on the air
    try:
        a, _ = await mesh.open(A), await mesh.open(B)
        first = asyncio.create_task(a.send(ADDR[B], b"\x01first", priority=Priority.ROUTINE))
        await asyncio.wait_for(mesh.radios[A].packets_from_host(1), 10)
        routine = asyncio.create_task(a.send(ADDR[B], b"\x01routine", priority=Priority.ROUTINE))
        await asyncio.sleep(0.05)
        flash = asyncio.create_task(a.send(ADDR[B], b"\x01flash", priority=Priority.LIFE_SAFETY))
        await asyncio.sleep(0.05)
        status = a.status()
        assert status["queue_depth"] == 3
        assert status["drain_seconds"] == pytest.approx(
            3 * packet_airtime(MTU, ModemPreset.LONG_FAST), rel=0.01
        )
        await asyncio.wait_for(asyncio.gather(first, routine, flash), 20)
        assert [p.decoded.payload for p in mesh.radios[A].from_host] == [
            b"\x01first",
            b"\x01flash",
            b"\x01routine",
        ]
    finally:
        await mesh.aclose()


async def test_missing_ack_times_out_and_leaves_no_response_handler(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path, retry_delay=2.0)
    try:
        a, _ = await mesh.open(A, ack_timeout=1), await mesh.open(B)
        mesh.medium.partition([A], [B])
        with pytest.raises(LinkDown, match="no ACK within 1 s"):
            await a.send(ADDR[B], b"\x01unanswered")
        cancelled = asyncio.create_task(a.send(ADDR[B], b"\x01cancelled"))
        await asyncio.wait_for(mesh.radios[A].packets_from_host(2), 10)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await asyncio.wait_for(a._peers.settled(), 10)  # the traceroute the failure set off
        assert a._iface.responseHandlers == {}  # the library never expires them by itself
    finally:
        await mesh.aclose()


async def test_gps_time_of_the_own_radio_becomes_a_time_hint(mesh: Mesh) -> None:
    a = await mesh.open(A)
    mesh.radios[A].report_position(1_800_000_123)

    async def hint() -> TimeHint:
        async for event in a.events():
            if isinstance(event, TimeHint):
                return event
        raise AssertionError("events ended")

    assert await asyncio.wait_for(hint(), 10) == TimeHint(unix_time=1_800_000_123.0, source="meshtastic-gps")


# -- unplugging ----------------------------------------------------------------------------------


@pytest.mark.parametrize("attach", [tcp_link, pty_link], ids=["tcp", "pty"])
async def test_radio_gone_mid_send_is_link_down_then_recovers(
    tmp_path: Path, attach: Callable[..., Awaitable[LoraTransport]]
) -> None:
    mesh = Mesh(tmp_path, retry_delay=1.0)
    try:
        a, b = await mesh.open(A, attach), await mesh.open(B)
        mesh.medium.partition([A], [B])  # the ACK will not come: the send is in flight when we unplug
        sending = asyncio.create_task(a.send(ADDR[B], b"\x01in flight"))
        await asyncio.wait_for(mesh.radios[A].packets_from_host(1), 10)
        await mesh.radios[A].unplug()  # TCP server and connection gone, or the pty master closed
        with pytest.raises(LinkDown):
            await asyncio.wait_for(sending, 10)
        assert (await link_change(a, up=False)).reason == "radio connection lost"
        with pytest.raises(LinkDown):
            await a.send(ADDR[B], b"\x01while down")
        with pytest.raises(LinkDown):
            await a.probe(ADDR[B])
        mesh.medium.heal()
        await mesh.radios[A].plug()
        await link_change(a, up=True)
        await a.send(ADDR[B], b"\x01after")
        # The radio kept retrying its queued packet while the host was away: "in flight" may arrive too,
        # which is why the hub deduplicates and never trusts a failed send to mean "not delivered".
        arrived = [(await next_received(b, 10)).data]
        while arrived[-1] != b"\x01after":
            arrived.append((await next_received(b, 10)).data)
        assert set(arrived) <= {b"\x01in flight", b"\x01after"}
    finally:
        await mesh.aclose()


async def test_radio_reboot_reconnects(mesh: Mesh) -> None:
    a, b = await mesh.open(A), await mesh.open(B)
    mesh.radios[A].reboot()
    await link_change(a, up=False)
    await link_change(a, up=True)
    await a.send(ADDR[B], b"\x01after reboot")
    assert (await next_received(b, 10)).data == b"\x01after reboot"


async def test_slow_handshake_times_out_and_the_abandoned_connection_is_closed(mesh: Mesh) -> None:
    radio = mesh.radios[A] = FakeMeshtasticRadio(A, mesh.medium)
    radio.config_delay = 2.5
    a = await mesh.open(A, connect_timeout=1)
    assert "handshake took over 1 s" in (await link_change(a, up=False)).reason
    radio.config_delay = 0.0
    await link_change(a, up=True)
    # Every connection the transport gave up on is closed by it in the background, none leaks.
    await asyncio.wait_for(radio.wait_until(lambda: radio.host_connections == 1), 15)
    await a.probe(ADDR[B])


async def test_radio_absent_at_start_reports_down_and_connects_when_it_appears(tmp_path: Path) -> None:
    medium = RFMedium()
    radio = FakeMeshtasticRadio(A, medium)
    link = tmp_path / "ttyABSENT"
    options = {"kind": "lora", "device": str(link), "connect_timeout": 1, "reconnect_max": 0.5}
    transport = await open_transport("lora", options, context(tmp_path))
    try:
        assert "cannot open" in (await link_change(transport, up=False)).reason
        await radio.start_pty(link)
        await link_change(transport, up=True)
        await transport.probe(ADDR[B])
    finally:
        await transport.aclose()
        await radio.aclose()


# -- options -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({}, "links.l.device"),
        ({"device": "/dev/ttyUSB0", "host": "radio:4403"}, "links.l.device"),
        ({"host": "radio:port"}, "links.l.host"),
        ({"device": "/dev/ttyUSB0", "port": 0}, "links.l.port"),
        ({"device": "/dev/ttyUSB0", "port": 512}, "links.l.port"),
        ({"device": "/dev/ttyUSB0", "port": 300.5}, "links.l.port"),
        ({"device": "/dev/ttyUSB0", "ack_timeout": True}, "links.l.ack_timeout"),
        ({"device": "/dev/ttyUSB0", "preset": "VERY_FAST"}, "links.l.preset"),
        ({"device": "/dev/ttyUSB0", "budget_share": 1.5}, "links.l.budget_share"),
        ({"device": "/dev/ttyUSB0", "hop_limit": 9}, "links.l.hop_limit"),
        ({"device": "/dev/ttyUSB0", "peer_check_interval": 0}, "links.l.peer_check_interval"),
        ({"device": "/dev/ttyUSB0", "radio_check_timeout": 0}, "links.l.radio_check_timeout"),
        ({"device": "/dev/ttyUSB0", "baud": 9600}, "links.l.baud"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as error:
        LoraSettings.from_options("l", {"kind": "lora", **options})
    assert error.value.key == key


def test_default_options() -> None:
    settings = LoraSettings.from_options(
        "l", {"host": "radio.local", "preset": "long_slow", "budget_share": 0.5}
    )
    assert (settings.host, settings.tcp_port, settings.port) == ("radio.local", 4403, 256)
    assert settings.preset is ModemPreset.LONG_SLOW
    assert settings.airtime_budget_seconds == 180.0
    assert settings.peer_check_interval == 600.0
    assert (settings.radio_check_interval, settings.radio_check_timeout) == (30.0, 10.0)


# -- peer reachability bookkeeping ---------------------------------------------------------------


def test_peer_book_checks_silent_peers_once_per_interval_and_suspects_at_once() -> None:
    book = PeerBook(check_interval=100.0)
    assert book.due("!b", 0.0)  # never heard: check
    book.start_check("!b", 0.0)
    assert not book.due("!b", 1.0)  # one check at a time
    book.end_check("!b")
    assert book.heard("!b", 1.0) is False  # it was never in doubt
    assert not book.due("!b", 100.0) and book.due("!b", 101.0)  # silent for the whole interval
    book.heard("!b", 150.0)
    book.suspect("!b")  # a send got no ACK: check now, whatever the interval says
    assert book.due("!b", 151.0) and book.is_suspect("!b") and not book.is_down("!b")
    book.start_check("!b", 151.0)
    book.end_check("!b")
    assert book.failed("!b") is True and book.failed("!b") is False  # down once
    assert book.down_peers() == ["!b"]
    assert not book.due("!b", 151.0 + RECHECK_DOWN - 1) and book.due("!b", 151.0 + RECHECK_DOWN)
    assert book.heard("!b", 300.0) is True and book.down_peers() == []
    assert not book.knows("!stranger")


# -- airtime ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "seconds"),
    [
        (ModemPreset.SHORT_FAST, 0.204),
        (ModemPreset.MEDIUM_FAST, 0.642),
        (ModemPreset.LONG_FAST, 2.157),
        (ModemPreset.LONG_SLOW, 14.3),
    ],
)
def test_time_on_air_of_a_full_frame_matches_the_firmware_figures(
    preset: ModemPreset, seconds: float
) -> None:
    assert time_on_air(255, preset) == pytest.approx(seconds, rel=0.02)


def test_time_on_air_grows_with_length_and_rejects_impossible_packets() -> None:
    assert time_on_air(10, ModemPreset.LONG_FAST) < time_on_air(100, ModemPreset.LONG_FAST)
    assert 166 < 360 / time_on_air(255, ModemPreset.LONG_FAST) < 168  # ≈ 167 full frames an hour
    with pytest.raises(ValueError):
        time_on_air(256, ModemPreset.LONG_FAST)


def test_rolling_budget_forgets_after_an_hour_and_says_when() -> None:
    budget = AirtimeBudget(100.0)
    budget.record(0.0, 50.0)
    budget.record(600.0, 30.0)
    refused = budget.decide(700.0, 10.0, Priority.NORMAL)  # 80 + 10 over the normal ceiling of 80
    assert not refused.allowed and refused.retry_after == pytest.approx(2900.0)
    assert budget.decide(700.0, 10.0, Priority.URGENT).allowed
    assert budget.decide(3600.0, 10.0, Priority.NORMAL).allowed
    assert budget.used(4200.0) == 0.0


def test_life_safety_goes_while_anything_is_left() -> None:
    budget = AirtimeBudget(10.0)
    budget.record(0.0, 9.9)
    assert not budget.decide(1.0, 2.0, Priority.URGENT).allowed
    assert budget.decide(1.0, 2.0, Priority.LIFE_SAFETY).allowed
    budget.record(1.0, 2.0)
    assert not budget.decide(2.0, 2.0, Priority.LIFE_SAFETY).allowed


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=600.0),
            st.floats(min_value=0.05, max_value=15.0),
            st.sampled_from(list(Priority)),
        ),
        max_size=200,
    )
)
def test_budget_never_lets_a_priority_past_its_ceiling(sends: list[tuple[float, float, Priority]]) -> None:
    budget, now = AirtimeBudget(120.0), 0.0
    for pause, airtime, priority in sends:
        now += pause
        used = budget.used(now)
        if budget.decide(now, airtime, priority).allowed:
            if priority is Priority.LIFE_SAFETY:
                assert used < budget.limit
            else:
                assert used + airtime <= budget.limit * PRIORITY_CEILING[priority] + 1e-9
            budget.record(now, airtime)
        assert budget.used(now) < budget.limit + 15.0  # only life-safety may overshoot, by one packet


# -- two real hubs over the mesh only ------------------------------------------------------------


class MeshInBackground:
    """Fake radios on their own event loop thread, so that synchronous hub-process tests can use them."""

    def __init__(self, *nums: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-mesh", daemon=True)
        self.thread.start()
        self.medium, self.radios, self.ports = self.run(self._start(nums))

    async def _start(
        self, nums: tuple[int, ...]
    ) -> tuple[RFMedium, dict[int, FakeMeshtasticRadio], dict[int, int]]:
        medium = RFMedium(seed=5)
        radios = {n: FakeMeshtasticRadio(n, medium) for n in nums}
        return medium, radios, {n: await r.start_tcp() for n, r in radios.items()}

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def frames_from(self, num: int) -> list[bytes]:
        """Payloads the hub behind radio ``num`` put on our private port, in order."""
        return [p.decoded.payload for p in list(self.radios[num].from_host) if p.decoded.portnum == 256]

    def close(self) -> None:
        async def stop() -> None:
            for radio in self.radios.values():
                await radio.aclose()

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def hubs(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HubProcess, HubProcess, MeshInBackground]]:
    """A municipality staff hub and a care home, each with nothing but a LoRa radio."""
    mesh = MeshInBackground(A, B)
    root = tmp_path_factory.mktemp("lora-hubs")
    staff = HubProcess.create(root / "staff", "Aarhus krisestab", "staff", internet=False)
    home = HubProcess.create(root / "home", "Plejehjemmet Solgaarden", "care-home", internet=False)
    for hub, num in ((staff, A), (home, B)):
        hub.add_link("lora", {"kind": "lora", "host": f"127.0.0.1:{mesh.ports[num]}", "connect_timeout": 15})
    staff.add_peer(home, {"lora": ADDR[B]})
    home.add_peer(staff, {"lora": ADDR[A]})
    staff.set_default_route([home])
    home.set_default_route([staff])
    staff.trust(home)
    home.trust(staff)
    try:
        staff.start()
        home.start()
        yield staff, home, mesh
    finally:
        staff.kill()
        home.kill()
        mesh.close()


def arrived(hub: HubProcess, message_id: str) -> dict[str, Any] | None:
    return next((m for m in hub.inbox() if m["id"] == message_id), None)


def test_a_fully_filled_sealed_status_crosses_the_mesh_in_one_packet(
    hubs: tuple[HubProcess, HubProcess, MeshInBackground],
) -> None:
    staff, home, mesh = hubs
    before = len(mesh.frames_from(B))
    message_id = home.send(staff.node_id, "status", FULL_STATUS, priority="urgent")
    staff.wait_for("the status over LoRa", lambda: arrived(staff, message_id) is not None)
    got = arrived(staff, message_id)
    assert got is not None and got["from"] == home.node_id and got["body"] == FULL_STATUS
    first_frame = mesh.frames_from(B)[before]
    assert first_frame[0] == 1, "a whole frame (version 1), not a fragment"
    assert decode_frame(first_frame).sealed, "sent sealed, as by default"
    print(f"fully filled sealed status on the air: {len(first_frame)} bytes in one mesh packet")
    home.wait_for("the end-to-end ack", lambda: home.message(message_id)["end_to_end_acked"])
    lora = [row for row in staff.get("/v1/links")["links"] if row["link"] == "lora"]
    assert lora and lora[0]["details"]["airtime_used_s"] > 0
    assert len(first_frame) <= lora[0]["mtu"], f"a sealed status of {len(first_frame)} bytes is over the MTU"


def test_multi_fragment_sitrep_is_reassembled_and_a_lost_fragment_recovered(
    hubs: tuple[HubProcess, HubProcess, MeshInBackground],
) -> None:
    staff, home, mesh = hubs
    summary = "Strømsvigt i hele kommunen; generatorer kører på plejecentrene. " * 9
    before = len(mesh.frames_from(A))
    mesh.medium.lose_next(A, 4)  # the first fragment and all three of the radio's retransmissions
    message_id = staff.send(
        home.node_id, "sitrep", {"number": 2, "phase": "Update", "summary": summary[:500]}
    )
    home.wait_for("the sitrep over LoRa", lambda: arrived(home, message_id) is not None, timeout=60)
    got = arrived(home, message_id)
    assert got is not None and got["body"]["summary"] == summary[:500]
    fragments = [f for f in mesh.frames_from(A)[before:] if f[0] == 2]
    set_size = fragments[0][6]
    assert set_size >= 3 and len(fragments) > set_size, "the lost fragment was sent again"
    print(f"sitrep: {set_size} fragments, {len(fragments)} sent with the recovery")


def test_internet_dead_the_mesh_carries_the_message(tmp_path: Path) -> None:
    """Both hubs have internet and LoRa; the care home's internet address is dead, so LoRa takes over."""
    mesh = MeshInBackground(A, B)
    staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff")
    home = HubProcess.create(tmp_path / "home", "Plejehjemmet Solgaarden", "care-home")
    for hub, num in ((staff, A), (home, B)):
        hub.add_link("lora", {"kind": "lora", "host": f"127.0.0.1:{mesh.ports[num]}"})
    dead_port = free_port()  # nobody listens: the internet link to the home fails at once
    staff.add_peer(home, {"internet": f"http://127.0.0.1:{dead_port}", "lora": ADDR[B]})
    home.add_peer(staff, {"internet": staff.internet_url, "lora": ADDR[A]})
    staff.set_default_route([home])
    home.set_default_route([staff])
    staff.trust(home)
    home.trust(staff)
    try:
        staff.start()
        home.start()
        message_id = staff.send(home.node_id, "text", "Strømmen er tilbage kl. 18", priority="urgent")
        home.wait_for("the text via LoRa", lambda: arrived(home, message_id) is not None, timeout=60)
        staff.wait_for("the hop ack", lambda: staff.message(message_id)["hops"][0]["state"] != "queued")
        hop = staff.message(message_id)["hops"][0]
        assert (hop["link"], hop["state"]) == ("lora", "hop-acked"), hop  # the radio's ACK was the hop ack
        assert mesh.frames_from(A), "the frame went over the mesh"
    finally:
        staff.kill()
        home.kill()
        mesh.close()


@pytest.fixture(scope="module")
def relayed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HubProcess, HubProcess, MeshInBackground]]:
    """Staff on radio A and a care home on radio B, which hear each other only through radio C."""
    mesh = MeshInBackground(A, B, C)
    mesh.medium.connect([(A, C), (C, B)])
    root = tmp_path_factory.mktemp("lora-relayed")
    staff = HubProcess.create(root / "staff", "Aarhus krisestab", "staff", internet=False)
    home = HubProcess.create(root / "home", "Plejehjemmet Solgaarden", "care-home", internet=False)
    for hub, num in ((staff, A), (home, B)):
        link = {
            "kind": "lora",
            "host": f"127.0.0.1:{mesh.ports[num]}",
            "connect_timeout": 15,
            "ack_timeout": 8,
        }
        hub.add_link("lora", link)
    staff.add_peer(home, {"lora": ADDR[B]})
    home.add_peer(staff, {"lora": ADDR[A]})
    staff.set_default_route([home])
    home.set_default_route([staff])
    staff.trust(home)
    home.trust(staff)
    try:
        staff.start()
        home.start()
        yield staff, home, mesh
    finally:
        staff.kill()
        home.kill()
        mesh.close()


def lora_details(hub: HubProcess) -> dict[str, Any]:
    row = next(row for row in hub.get("/v1/links")["links"] if row["link"] == "lora")
    details: dict[str, Any] = row["details"]
    return details


def test_two_hubs_across_a_relay_radio_deliver_once_and_report_it_delivered(
    relayed: tuple[HubProcess, HubProcess, MeshInBackground],
) -> None:
    staff, home, mesh = relayed
    before, relayed_before = len(mesh.frames_from(A)), lora_details(staff)["unconfirmed_after_relay"]
    message_id = staff.send(home.node_id, "text", "Evakuering kl. 14 via relæ", priority="urgent")
    home.wait_for("the text across the relay", lambda: arrived(home, message_id) is not None, timeout=60)
    staff.wait_for("the end-to-end ack", lambda: staff.message(message_id)["end_to_end_acked"], timeout=60)
    hop = staff.message(message_id)["hops"][0]
    assert (hop["link"], hop["state"]) == ("lora", "hop-acked"), hop
    frames = mesh.frames_from(A)[before:]
    assert len(frames) == 1, f"sent {len(frames)} times: the relay's implicit ACK caused a resend"
    assert [m["id"] for m in home.inbox()].count(message_id) == 1
    assert mesh.radios[A].implicit_acks >= 1  # the relay was heard repeating it
    details = lora_details(staff)
    assert details["implicit_acks"] >= 1 and details["unconfirmed_after_relay"] == relayed_before


def test_a_lost_radio_ack_after_a_relay_is_settled_by_the_end_to_end_ack_without_a_resend(
    relayed: tuple[HubProcess, HubProcess, MeshInBackground],
) -> None:
    staff, home, mesh = relayed
    before, relayed_before = len(mesh.frames_from(A)), lora_details(staff)["unconfirmed_after_relay"]
    mesh.medium.lose_next(B, 1, port=ROUTING_APP)  # the home radio's ACK for our frame never arrives
    message_id = staff.send(home.node_id, "text", "Vand til 200 personer", priority="urgent")
    home.wait_for("the text across the relay", lambda: arrived(home, message_id) is not None, timeout=60)
    staff.wait_for("the end-to-end ack", lambda: staff.message(message_id)["end_to_end_acked"], timeout=60)
    staff.wait_for(
        "the send to give up on the radio ACK",
        lambda: lora_details(staff)["unconfirmed_after_relay"] == relayed_before + 1,
        timeout=60,
    )
    # The end-to-end ack settled the hop while the send still waited: the give-up queues nothing.
    hop = staff.message(message_id)["hops"][0]
    assert (hop["state"], hop["attempts"]) == ("hop-acked", 1), hop
    assert len(mesh.frames_from(A)[before:]) == 1
    assert [m["id"] for m in home.inbox()].count(message_id) == 1


async def test_a_radio_that_is_not_plugged_in_is_not_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The shipped Pi config names /dev/beredt-lora; a hub without the radio must start without it."""
    caplog.set_level(logging.INFO)
    device = tmp_path / "beredt-lora"
    transport = await open_transport("lora", {"device": str(device)}, context(tmp_path))
    try:
        assert f"no radio at {device} yet" in caplog.text
        with pytest.raises(LinkDown):
            await transport.send("!0badbeef", b"\x01hello")
    finally:
        await transport.aclose()
