"""The SINE radio driver against simulated radios on a simulated TETRA network, over real ptys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hardware import tetra_pei as pei
from hardware.tetra_driver import ReportReceived, SdsReceived, StatusReceived, TetraDriver
from hub.core.errors import CmeError, CommandTimeout, DeviceGone
from simulators.pty_device import PtyDevice
from simulators.tetra import TetraNetwork, TetraRadio

PID = 0xC8


@dataclass
class Station:
    radio: TetraRadio
    pty: PtyDevice
    driver: TetraDriver


@pytest.fixture
def network() -> TetraNetwork:
    return TetraNetwork(max_per_window=100, window=60.0)


@pytest.fixture
async def stations(network: TetraNetwork, tmp_path: Path) -> AsyncIterator[tuple[Station, Station]]:
    made = []
    for issi, baud in (("1001", 38400), ("1002", 19200)):
        radio = network.add_radio(issi, max_bits=1120)
        pty = PtyDevice(radio, tmp_path / f"tty{issi}", baud=baud)
        pty.start()
        made.append(Station(radio, pty, TetraDriver(str(pty.link_path), baud, pid=PID, deadline=5.0)))
    for station in made:
        await station.driver.open()
    yield made[0], made[1]
    for station in made:
        await station.driver.aclose()
        await station.pty.aclose()


async def test_init_sequence_routes_our_pid_and_learns_identity_and_size(
    stations: tuple[Station, Station],
) -> None:
    a, _ = stations
    assert a.driver.info is not None
    assert (a.driver.info.issi, a.driver.info.max_bits) == ("1001", 1120)
    assert a.radio.commands == [
        "ATE0",
        "AT+CTSP=1,3,200",
        "AT+CTSP=1,2,20",
        "AT+CTSDS=12,0",
        "AT+CNUMF?",
        "AT+CMGS=?",
    ]
    assert a.radio.routed_pids == {PID} and a.radio.status_routed and not a.radio.echo


async def test_sdstl_transfer_and_received_report_round_trip(stations: tuple[Station, Station]) -> None:
    a, b = stations
    result = await a.driver.send_sdstl("1002", pei.Transfer(PID, 5, b"\x01hello"))
    assert await result.sent and result.ref == 5
    got = await b.driver.next_event(5)
    assert got == SdsReceived("1001", pei.Transfer(PID, 5, b"\x01hello"))
    await b.driver.send_sdstl("1001", pei.Report(PID, 5, pei.DeliveryStatus.RECEIVED))
    assert await a.driver.next_event(5) == ReportReceived("1002", pei.Report(PID, 5, 0))


async def test_radio_without_a_prompt_takes_the_text_too(stations: tuple[Station, Station]) -> None:
    a, b = stations
    a.radio.prompt = False
    assert await (await a.driver.send_sdstl("1002", pei.Transfer(PID, 8, b"\x01quiet"))).sent
    assert await b.driver.next_event(5) == SdsReceived("1001", pei.Transfer(PID, 8, b"\x01quiet"))


async def test_status_switches_service_and_back(stations: tuple[Station, Station]) -> None:
    a, b = stations
    await a.driver.send_status("1002", 0x8003)
    assert await b.driver.next_event(5) == StatusReceived("1001", 0x8003)
    await a.driver.send_sdstl("1002", pei.Transfer(PID, 6, b"x"))
    assert isinstance(await b.driver.next_event(5), SdsReceived)
    assert a.radio.commands[-4:] == ["AT+CTSDS=13,0", "AT+CMGS=1002,16", "AT+CTSDS=12,0", "AT+CMGS=1002,32"]


async def test_unregistered_destination_comes_back_as_failure_report(
    stations: tuple[Station, Station],
) -> None:
    a, b = stations
    b.radio.registered = False
    await a.driver.send_sdstl("1002", pei.Transfer(PID, 9, b"\x01lost"))
    report = await a.driver.next_event(5)
    assert report == ReportReceived("1002", pei.Report(PID, 9, pei.DeliveryStatus.DESTINATION_NOT_REGISTERED))
    assert pei.outcome(report.report.status) is pei.Outcome.FAILED


async def test_other_pids_are_skipped(stations: tuple[Station, Station]) -> None:
    a, b = stations
    b.radio.routed_pids.add(0xC9)
    a.driver.pid = 0xC9
    await a.driver.send_sdstl("1002", pei.Transfer(0xC9, 1, b"other"))
    a.driver.pid = PID
    await a.driver.send_sdstl("1002", pei.Transfer(PID, 2, b"ours"))
    got = await b.driver.next_event(5)
    assert isinstance(got, SdsReceived) and got.pdu.data == b"ours"


async def test_control_channel_refusal_is_not_sent(
    network: TetraNetwork, stations: tuple[Station, Station]
) -> None:
    a, _ = stations
    network.max_per_window = 1
    assert await (await a.driver.send_sdstl("1002", pei.Transfer(PID, 1, b"1"))).sent
    refused = await a.driver.send_sdstl("1002", pei.Transfer(PID, 2, b"2"))
    assert await refused.sent is False
    assert network.refused == 1


async def test_cme_error_carries_the_code(stations: tuple[Station, Station]) -> None:
    a, _ = stations
    a.radio.fail["AT+CMGS="] = 35
    with pytest.raises(CmeError) as info:
        await a.driver.send_sdstl("1002", pei.Transfer(PID, 1, b"x"))
    assert info.value.code == 35 and "AT+CMGS=1002" in info.value.command


async def test_no_answer_is_a_command_timeout(stations: tuple[Station, Station]) -> None:
    a, _ = stations
    a.driver.deadline = 0.5
    a.radio.silent.add("AT+CTSDS")
    with pytest.raises(CommandTimeout):
        await a.driver.send_status("1002", 0x8001)


async def test_unplug_mid_command_then_reopen_when_the_radio_returns(
    stations: tuple[Station, Station],
) -> None:
    a, b = stations
    a.pty.unplug_on(b"AT+CMGS=")
    with pytest.raises(DeviceGone):
        await a.driver.send_sdstl("1002", pei.Transfer(PID, 1, b"x"))
    assert a.driver.gone.is_set()
    with pytest.raises(DeviceGone):
        await a.driver.next_event(5)
    asyncio.get_running_loop().call_later(0.3, a.pty.replug)
    info = await a.driver.reopen(deadline=10)
    assert info.issi == "1001" and not a.driver.gone.is_set()
    # The radio stayed powered: its routing answered 38 (already registered), which is not a failure.
    assert a.radio.commands.count("AT+CTSP=1,3,200") == 2
    assert await (await a.driver.send_sdstl("1002", pei.Transfer(PID, 2, b"back"))).sent
    got = await b.driver.next_event(5)
    assert isinstance(got, SdsReceived) and got.pdu.data == b"back"


async def test_baud_probing_finds_the_radio_rate(network: TetraNetwork, tmp_path: Path) -> None:
    radio = network.add_radio("1003")
    pty = PtyDevice(radio, tmp_path / "tty1003", baud=9600)
    pty.start()
    driver = TetraDriver(str(pty.link_path), None, rates=(115200, 38400, 9600), deadline=1.0)
    try:
        info = await driver.open()
        assert (info.baud, info.issi) == (9600, "1003")
    finally:
        await driver.aclose()
        await pty.aclose()


async def test_private_pid_range_is_enforced() -> None:
    with pytest.raises(ValueError, match="private"):
        TetraDriver("/dev/null", 9600, pid=0x82)


async def test_radio_variants_from_the_simulator(stations: tuple[Station, Station]) -> None:
    a, b = stations
    a.radio.two_stage = False
    a.radio.own_refs = True
    b.radio.calling_party = False
    a.radio.result_delay = 0.0
    sent = await a.driver.send_sdstl("1002", pei.Transfer(PID, 5, b"\x01x"))
    assert sent.sent.done() and sent.sent.result() and sent.ref == 1  # the radio's own reference
    assert await b.driver.next_event(5) == SdsReceived(None, pei.Transfer(PID, 1, b"\x01x"))


async def test_delayed_over_the_air_result(stations: tuple[Station, Station]) -> None:
    a, b = stations
    a.radio.result_delay = 0.2
    sent = await a.driver.send_sdstl("1002", pei.Transfer(PID, 5, b"\x01x"))
    assert not sent.sent.done()
    assert await asyncio.wait_for(sent.sent, 5)
    assert isinstance(await b.driver.next_event(5), SdsReceived)
