"""The SINE transport on simulated radios (each on its own pty) sharing one simulated TETRA network."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.errors import BudgetExhausted, ConfigError, DeliveryRefused, LinkDown, ProtocolError
from hub.core.fragment import Reassembler, decode_fragment, split
from hub.core.transport import LinkChanged, Received, Transport, TransportContext, TransportEvent
from simulators.pty_device import PtyDevice
from simulators.tetra import TetraNetwork, TetraRadio
from tests.hubproc import REPO, HubProcess
from tests.inproc import eventually
from tests.transports.contract import LinkPair, TransportContract, next_received
from transports.sine import SineTransport, open_transport, pei_mtu
from transports.sine_status import decode_status, encode_status, parse_options

PLAN = {"ok": 0x8001, "needs-power": 0x8002, "needs-medical": 0x8003, "evacuating": 0x8004}


@dataclass
class Site:
    radio: TetraRadio
    pty: PtyDevice
    transport: SineTransport


class Sites:
    """Radios on one network, each served on a pty, each opened as a SINE transport."""

    def __init__(self, tmp_path: Path, network: TetraNetwork) -> None:
        self.tmp_path = tmp_path
        self.network = network
        self.sites: list[Site] = []

    async def add(self, issi: str, *, baud: int = 38400, **options: Any) -> Site:
        radio = self.network.add_radio(issi, max_bits=1120)
        pty = PtyDevice(radio, self.tmp_path / f"tty{issi}", baud=baud)
        pty.start()
        settings = {
            "kind": "sine",
            "device": str(pty.link_path),
            "baud": baud,
            "status_plan": PLAN,
            "max_per_minute": 6000,
            "timeout": 10,
        } | options
        ctx = TransportContext("00" * 8, self.tmp_path, logging.getLogger("test.sine"))
        site = Site(radio, pty, await open_transport(f"sine{issi}", settings, ctx))
        self.sites.append(site)
        return site

    async def aclose(self) -> None:
        for site in self.sites:
            await site.transport.aclose()
            await site.pty.aclose()


@pytest.fixture
async def sites(tmp_path: Path) -> AsyncIterator[Sites]:
    made = Sites(tmp_path, TetraNetwork(max_per_window=10_000, window=60.0))
    yield made
    await made.aclose()


async def next_event(
    transport: Transport, want: Callable[[TransportEvent], bool], deadline: float = 10
) -> Any:
    async def pull() -> TransportEvent:
        async for event in transport.events():
            if want(event):
                return event
        raise AssertionError("events ended")

    return await asyncio.wait_for(pull(), deadline)


class TestSineContract(TransportContract):
    receive_timeout = 10.0

    @pytest.fixture
    async def link_pair(self, sites: Sites) -> AsyncIterator[LinkPair]:
        a = await sites.add("1001")
        b = await sites.add("1002", baud=19200)
        yield LinkPair(a.transport, b.transport, "1001", "1002")


async def test_capabilities_follow_the_radio(sites: Sites) -> None:
    a = await sites.add("1001")
    caps = a.transport.capabilities
    assert (caps.mtu, caps.link_ack, caps.cost.name) == (137, True, "METERED")
    assert pei_mtu(2047) == 252
    small = await sites.add("1002", mtu=100)
    assert small.transport.capabilities.mtu == 100
    assert a.transport.status()["radio"] == "1001"


async def test_fragmented_frame_crosses_in_mtu_sized_sds(sites: Sites) -> None:
    a, b = await sites.add("1001"), await sites.add("1002")
    wire = b"\x01" + bytes(range(256)) * 3
    pieces = split(wire, a.transport.capabilities.mtu)
    assert len(pieces) >= 6 and all(len(p) <= 137 for p in pieces)
    await asyncio.gather(*(a.transport.send("1002", piece) for piece in pieces))
    reassembler = Reassembler()
    whole = None
    for _ in pieces:
        got = await next_received(b.transport, 10)
        whole = reassembler.add(got.source, decode_fragment(got.data), time.time()) or whole
    assert whole == wire


async def test_status_sds_end_to_end(sites: Sites) -> None:
    a, b = await sites.add("1001"), await sites.add("1002")
    await a.transport.send_status("1002", "needs-power")
    got = await next_received(b.transport, 10)
    assert got == Received("1001", b"\x00\x80\x02", {"status": "needs-power", "value": 0x8002})
    assert decode_status(got.data) == 0x8002
    assert a.radio.commands[-2:] == ["AT+CTSDS=13,0", "AT+CMGS=1002,16"]
    with pytest.raises(DeliveryRefused, match="not in the plan"):
        await a.transport.send_status("1002", "party")


async def test_rate_limit_is_honoured_and_higher_priority_goes_first(tmp_path: Path) -> None:
    network = TetraNetwork(max_per_window=5, window=1.0)  # the control channel refuses bursts
    sites = Sites(tmp_path, network)
    try:
        a = await sites.add("1001", max_per_minute=300)  # one SDS per 0.2 s
        b = await sites.add("1002", max_per_minute=300)
        started = time.monotonic()
        low = [asyncio.create_task(a.transport.send("1002", b"\x01low%d" % i, priority=0)) for i in range(4)]
        await asyncio.sleep(0)
        high = asyncio.create_task(a.transport.send("1002", b"\x01high", priority=3))
        await asyncio.gather(*low, high)
        elapsed = time.monotonic() - started
        order = [(await next_received(b.transport, 10)).data for _ in range(5)]
        assert network.refused == 0
        assert elapsed >= 4 * 0.2
        assert order.index(b"\x01high") < order.index(b"\x01low2")
    finally:
        await sites.aclose()


async def test_a_queue_too_long_is_refused_with_retry_after(sites: Sites) -> None:
    a, _ = await sites.add("1001", max_per_minute=120, max_queue_seconds=1.2), await sites.add("1002")
    results = await asyncio.gather(
        *(a.transport.send("1002", b"\x01q%d" % i) for i in range(5)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, BudgetExhausted)]
    assert [r for r in results if r is not None and not isinstance(r, BudgetExhausted)] == []
    assert len(refused) == 2 and min(r.retry_after for r in refused) >= 1.2


async def test_answers_to_a_terminal_that_keeps_sending_are_bounded_like_frames(sites: Sites) -> None:
    """Answers to a team terminal go before frames, so they too are refused once they would wait longer
    than ``max_queue_seconds``: a terminal sending text after text cannot hold the control channel."""
    a, _ = await sites.add("1001", max_per_minute=120, max_queue_seconds=1.2), await sites.add("1002")
    refused: list[BudgetExhausted] = []
    for i in range(6):  # nothing in between lets the queue drain: each answer waits 0.5 s longer
        try:
            await a.transport.answer_terminal("1002", f"svar {i}")
        except BudgetExhausted as exc:
            refused.append(exc)
    assert len(refused) == 3 and min(r.retry_after for r in refused) > 1.2
    assert a.transport.status()["refused"] == 3
    await eventually(lambda: a.transport.status()["queue"] == 0, timeout=60)  # the answers went out
    await a.transport.send("1002", b"\x01after the answers")


async def test_unplug_mid_send_is_link_down_then_the_radio_returns(sites: Sites) -> None:
    a, b = await sites.add("1001"), await sites.add("1002")
    a.pty.unplug_on(b"AT+CMGS=")
    with pytest.raises(LinkDown, match="unplugged"):
        await a.transport.send("1002", b"\x01lost")
    down = await next_event(a.transport, lambda e: isinstance(e, LinkChanged) and not e.up)
    assert down.peer is None
    with pytest.raises(LinkDown):
        await a.transport.send("1002", b"\x01while away")
    with pytest.raises(LinkDown):
        await a.transport.probe("1002")
    asyncio.get_running_loop().call_later(0.3, a.pty.replug)
    await next_event(a.transport, lambda e: isinstance(e, LinkChanged) and e.up)
    await a.transport.send("1002", b"\x01back")
    assert (await next_received(b.transport, 10)).data == b"\x01back"


async def test_radio_plugged_in_after_start(sites: Sites, tmp_path: Path) -> None:
    radio = sites.network.add_radio("1003")
    pty = PtyDevice(radio, tmp_path / "late", baud=9600)
    ctx = TransportContext("00" * 8, tmp_path, logging.getLogger("test.sine"))
    transport = await open_transport("late", {"device": str(pty.link_path), "baud": "auto"}, ctx)
    try:
        first = await next_event(transport, lambda e: isinstance(e, LinkChanged))
        assert not first.up
        with pytest.raises(LinkDown):
            await transport.send("1002", b"\x01x")
        pty.start()
        await next_event(transport, lambda e: isinstance(e, LinkChanged) and e.up, deadline=30)
        assert transport.info is not None and transport.info.baud == 9600
    finally:
        await transport.aclose()
        await pty.aclose()


async def test_unregistered_destination_is_link_down_for_that_peer(sites: Sites) -> None:
    a, b = await sites.add("1001"), await sites.add("1002")
    b.radio.registered = False
    with pytest.raises(LinkDown, match="destination-not-registered") as info:
        await a.transport.send("1002", b"\x01x")
    assert info.value.peer == "1002"
    event = await next_event(a.transport, lambda e: isinstance(e, LinkChanged) and e.peer == "1002")
    assert not event.up
    with pytest.raises(LinkDown):
        await a.transport.probe("1002")
    b.radio.registered = True
    a.transport.peers.hold = 0.0  # only a send can tell whether the peer is back: probing lets it try
    await a.transport.probe("1002")
    back = await next_event(a.transport, lambda e: isinstance(e, LinkChanged) and e.peer == "1002")
    assert back.up
    await a.transport.send("1002", b"\x01y")


@pytest.mark.parametrize(
    ("status", "error", "match"),
    [
        (0x4D, DeliveryRefused, "too-long"),
        (0x41, DeliveryRefused, "service-unavailable"),
        (0x5A, LinkDown, "destination-not-reachable"),
        (0x60, LinkDown, "destination busy: memory-full"),
    ],
)
async def test_failure_reports_map_to_errors(
    sites: Sites, status: int, error: type[Exception], match: str
) -> None:
    a, _ = await sites.add("1001"), await sites.add("1002")
    sites.network.reports["1002"] = status
    with pytest.raises(error, match=match):
        await a.transport.send("1002", b"\x01x")


async def test_a_temporary_report_keeps_the_frame_waiting_until_timeout(sites: Sites) -> None:
    a, _ = await sites.add("1001", timeout=0.5, max_queue_seconds=0.5), await sites.add("1002")
    sites.network.reports["1002"] = 0x21  # stored by the network, delivery later
    with pytest.raises(LinkDown, match="no delivery report"):
        await a.transport.send("1002", b"\x01x")


async def test_a_far_radio_gone_mute_fails_the_frame_after_timeout_not_after_the_queue_limit(
    sites: Sites,
) -> None:
    """The far terminal hangs (plugged in, answers nothing): our radio sends the SDS, no report ever
    comes, and the frame fails after ``timeout`` so the hub can take another link, whatever room the
    queue has (``max_queue_seconds`` only bounds the wait for the control channel)."""
    a, b = await sites.add("1001", timeout=1, max_queue_seconds=600), await sites.add("1002")
    b.radio.mute = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(LinkDown, match="no delivery report within 1 s"):
        async with asyncio.timeout(60):
            await a.transport.send("1002", b"\x01x")
    assert loop.time() - started < 30
    assert a.transport.up  # our own radio answers: only that peer is down
    with pytest.raises(LinkDown, match="last SDS to this radio failed"):
        await a.transport.probe("1002")
    with pytest.raises(LinkDown, match="last SDS to this radio failed"):  # at once, not after 1 s
        async with asyncio.timeout(0.5):
            await a.transport.send("1002", b"\x01y")
    b.radio.mute = False  # the far radio answers again: the next SDS from it clears the hold
    await b.transport.send("1001", b"\x01z")
    await a.transport.probe("1002")


async def test_the_hold_on_a_peer_without_a_report_ends_after_peer_hold(sites: Sites) -> None:
    """One missing report holds the peer down for ``peer_hold`` seconds only: after it, the router may
    try SINE again (the peer is reported up), so a peer reached only by SINE is not cut off for good."""
    a, b = await sites.add("1001", timeout=1, peer_hold=3), await sites.add("1002")
    b.radio.mute = True
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(LinkDown, match="no delivery report within 1 s"):
        async with asyncio.timeout(60):
            await a.transport.send("1002", b"\x01x")
    down = await next_event(a.transport, lambda e: isinstance(e, LinkChanged) and e.peer == "1002")
    assert not down.up and "no delivery report" in down.reason
    with pytest.raises(LinkDown, match="last SDS to this radio failed"):
        await a.transport.probe("1002")
    b.radio.mute = False
    while True:  # the router probes a failing peer every round; here, every 0.1 s
        try:
            await a.transport.probe("1002")
            break
        except LinkDown:
            assert loop.time() - started < 60, "the hold never ended"
            await asyncio.sleep(0.1)
    assert loop.time() - started >= 3.9  # the report deadline (1 s), then the whole hold (3 s)
    back = await next_event(a.transport, lambda e: isinstance(e, LinkChanged) and e.peer == "1002")
    assert back.up and back.reason == "hold after failure expired"
    await a.transport.send("1002", b"\x01y")


@given(st.binary(max_size=8))
def test_status_data_decodes_or_raises_protocol_error(data: bytes) -> None:
    try:
        value = decode_status(data)
    except ProtocolError:
        return
    assert encode_status(value) == data


async def test_losing_registration_takes_the_link_down(sites: Sites) -> None:
    a = await sites.add("1001", health_interval=0.1)
    a.radio.registered = False
    event = await next_event(a.transport, lambda e: isinstance(e, LinkChanged) and not e.up)
    assert "not registered" in event.reason
    with pytest.raises(LinkDown, match="not registered"):
        await a.transport.send("1002", b"\x01x")
    a.radio.registered = True
    await next_event(a.transport, lambda e: isinstance(e, LinkChanged) and e.up)
    await a.transport.probe("1002")


async def test_radio_errors_become_link_down(sites: Sites) -> None:
    a, _ = await sites.add("1001"), await sites.add("1002")
    a.radio.fail["AT+CMGS="] = 35
    with pytest.raises(LinkDown, match="CME ERROR: 35"):
        await a.transport.send("1002", b"\x01x")
    with pytest.raises(DeliveryRefused, match="not an ISSI"):
        await a.transport.send("!0badbeef", b"\x01x")


async def test_a_silent_radio_is_link_down_and_the_link_recovers(sites: Sites) -> None:
    a, b = await sites.add("1001", timeout=1, health_interval=0.2), await sites.add("1002")
    a.radio.silent.add("")  # no command gets an answer, the registration check neither
    with pytest.raises(LinkDown, match="no final result"):
        await a.transport.send("1002", b"\x01x")
    with pytest.raises(LinkDown, match="radio not answering"):  # the whole link is down, not one frame
        await a.transport.probe("1002")
    a.radio.silent.clear()
    await next_event(
        a.transport, lambda e: isinstance(e, LinkChanged) and e.reason == "registered on the network"
    )
    await a.transport.send("1002", b"\x01y")
    assert (await next_received(b.transport, 10)).data == b"\x01y"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({}, "links.s.device"),
        ({"device": "/dev/x", "baud": 12345}, "links.s.baud"),
        ({"device": "/dev/x", "pid": 0x82}, "links.s.pid"),
        ({"device": "/dev/x", "status_plan": {"ok": 1}}, "links.s.status_plan.ok"),
        ({"device": "/dev/x", "status_plan": {"a": 0x8001, "b": 0x8001}}, "links.s.status_plan.b"),
        ({"device": "/dev/x", "max_per_minute": 0}, "links.s.max_per_minute"),
        ({"device": "/dev/x", "mtu": 1000}, "links.s.mtu"),
        ({"device": "/dev/x", "colour": "red"}, "links.s.colour"),
        ({"device": "/dev/x", "command_timeout": 0}, "links.s.command_timeout"),
        ({"device": "/dev/x", "peer_hold": 0}, "links.s.peer_hold"),
    ],
)
async def test_config_errors_name_the_key(options: dict[str, Any], key: str, tmp_path: Path) -> None:
    ctx = TransportContext("00" * 8, tmp_path, logging.getLogger("test.sine"))
    with pytest.raises(ConfigError) as info:
        await open_transport("s", options, ctx)
    assert info.value.key == key


def test_the_command_deadline_is_command_timeout_or_at_most_ten_seconds_of_timeout() -> None:
    assert parse_options("s", {"device": "/dev/x"}).command_deadline == 10.0
    assert parse_options("s", {"device": "/dev/x", "timeout": 4}).command_deadline == 4.0
    assert parse_options("s", {"device": "/dev/x", "command_timeout": 2.5}).command_deadline == 2.5


def test_entry_radios_are_issis_or_tsis() -> None:
    assert parse_options("s", {"device": "/dev/x"}).entry == ()
    entry = ("2380042", "23802001234567890")
    assert parse_options("s", {"device": "/dev/x", "entry": list(entry)}).entry == entry
    for wrong in (["238-0042"], ["123456789"], "2380042"):
        with pytest.raises(ConfigError, match=r"links\.s\.entry"):
            parse_options("s", {"device": "/dev/x", "entry": wrong})


def test_two_real_hubs_talk_over_sine_only(tmp_path: Path) -> None:
    """Two `beredt run` processes with only a SINE link, radios served by the simulator as a process."""
    radios = tmp_path / "radios"
    simulator = subprocess.Popen(
        [sys.executable, "-m", "simulators.tetra", "--dir", str(radios), "--baud", "38400",
         "--per-minute", "600", "1001", "1002"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    hubs: list[HubProcess] = []
    try:
        assert simulator.stdout is not None
        ready = [simulator.stdout.readline() for _ in range(2)]
        assert all(b"radio" in line for line in ready), ready
        a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff", internet=False)
        b = HubProcess.create(tmp_path / "b", "Plejehjemmet Solgaarden", "care-home", internet=False)
        hubs += [a, b]
        for hub, issi in ((a, "1001"), (b, "1002")):
            hub.add_link("sine", {"kind": "sine", "device": str(radios / f"tty{issi}"), "baud": "auto",
                                  "max_per_minute": 600, "status_plan": PLAN})  # fmt: skip
        a.add_peer(b, {"sine": "1002"})
        b.add_peer(a, {"sine": "1001"})
        a.set_default_route([b])
        b.set_default_route([a])
        a.trust(b)
        b.trust(a)
        a.start()
        b.start()
        message_id = b.send(a.node_id, "text", "Generatoren kører, 40 timers brændstof", priority="urgent")
        a.wait_for("the message over SINE", lambda: any(m["id"] == message_id for m in a.inbox()), timeout=60)
        b.wait_for("the hop ack", lambda: b.message(message_id)["hops"][0]["state"] != "pending", timeout=60)
        assert b.message(message_id)["hops"][0]["hop"] == a.node_id
    except BaseException:
        for hub in hubs:
            print(f"--- {hub.name} ---\n{hub.log_tail()}")
        raise
    finally:
        for hub in hubs:
            hub.kill()
        simulator.send_signal(signal.SIGINT)
        try:
            simulator.wait(10)
        except subprocess.TimeoutExpired:
            simulator.kill()
            simulator.wait(10)
        if simulator.stdout is not None:
            simulator.stdout.close()


async def test_a_busy_radio_is_asked_again_and_the_link_stays_up(sites: Sites) -> None:
    a, b = await sites.add("1001", busy_seconds=2), await sites.add("1002")
    a.radio.errors_next["AT+CMGS="] = [42]
    await a.transport.send("1002", b"\x01after one busy answer")
    assert (await next_received(b.transport, 10)).data == b"\x01after one busy answer"
    a.radio.fail["AT+CMGS="] = 42
    with pytest.raises(BudgetExhausted, match="radio busy"):
        await a.transport.send("1002", b"\x01still busy")
    assert a.transport.up
    await a.transport.probe("1002")
    a.radio.fail.clear()
    a.radio.errors_next["AT+CREG?"] = [42]
    await a.transport.send("1002", b"\x01free again")


async def test_a_radio_with_its_own_references_and_a_tsi_address(sites: Sites) -> None:
    a, b = await sites.add("1001"), await sites.add("1002")
    a.radio.own_refs = True
    a.radio.two_stage = False
    await a.transport.send("02380000100001002", b"\x01by TSI")
    got = await next_received(b.transport, 10)
    assert got.data == b"\x01by TSI" and got.meta["sds_ref"] == 1  # the radio's reference, not ours
    assert "AT+CTSDS=12,1" in a.radio.commands
    assert any(command.startswith("AT+CMGS=02380000100001002,") for command in a.radio.commands)


async def test_over_the_air_refusal_comes_after_acceptance(tmp_path: Path) -> None:
    sites = Sites(tmp_path, TetraNetwork(max_per_window=1, window=60.0))
    try:
        a, _ = await sites.add("1001"), await sites.add("1002")
        a.radio.result_delay = 0.1
        await a.transport.send("1002", b"\x01first")
        with pytest.raises(BudgetExhausted, match="control channel refused"):
            await a.transport.send("1002", b"\x01second")
        assert a.transport.up
    finally:
        await sites.aclose()


async def test_terminal_without_cmgs_test_form_uses_the_configured_mtu(sites: Sites, tmp_path: Path) -> None:
    radio = sites.network.add_radio("1003")
    radio.cmgs_test = False
    radio.calling_party = False
    pty = PtyDevice(radio, tmp_path / "tty1003", baud=38400)
    pty.start()
    ctx = TransportContext("00" * 8, tmp_path, logging.getLogger("test.sine"))
    settings = {"device": str(pty.link_path), "baud": 38400, "mtu": 100, "max_per_minute": 6000}
    c = await open_transport("c", settings, ctx)
    try:
        a = await sites.add("1001")
        assert c.capabilities.mtu == 100 and c.info is not None and not c.info.max_bits_reported
        send = asyncio.create_task(a.transport.send("1003", b"\x01anonymous"))
        got = await next_received(c, 10)
        assert (got.source, got.data) == ("", b"\x01anonymous")  # no calling party, so no report to send
        send.cancel()
    finally:
        await c.aclose()
        await pty.aclose()


async def test_pid_fallback_is_configured_and_checked(sites: Sites, tmp_path: Path) -> None:
    a = await sites.add("1001", pid_fallback=["range", 130])
    assert a.transport.info is not None and a.transport.info.pid == 0xC8
    ctx = TransportContext("00" * 8, tmp_path, logging.getLogger("test.sine"))
    with pytest.raises(ConfigError) as info:
        await open_transport("s", {"device": "/dev/x", "pid_fallback": ["any"]}, ctx)
    assert info.value.key == "links.s.pid_fallback"


async def test_late_over_the_air_results_never_refuse_the_next_frame(sites: Sites) -> None:
    a, b = await sites.add("1001"), await sites.add("1002")
    a.radio.result_delay = 0.05  # each result arrives while the next SDS is being handed over
    frames = [b"\x01frame %d" % i for i in range(6)]
    await asyncio.gather(*(a.transport.send("1002", frame) for frame in frames))
    got = [(await next_received(b.transport, 10)).data for _ in frames]
    assert sorted(got) == sorted(frames) and a.transport.counters["refused"] == 0
    assert sum(command.startswith("AT+CMGS=1002,") for command in a.radio.commands) == len(
        frames
    )  # no resend
