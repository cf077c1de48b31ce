"""The simulated 9603, byte for byte against the ISU AT Command Reference, then driven by two independent
RockBLOCK client libraries from PyPI (``adafruit-circuitpython-rockblock`` and ``pyRockBlock``) over a
real pty, as they would drive the modem on a Raspberry Pi."""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import adafruit_rockblock
import pyRockBlock
import pytest
import serial

from simulators.iridium_cloud import IridiumCloud
from simulators.iridium_modem import ERA2, ERA3, Iridium9603, SessionOutcome
from simulators.pty_device import PtyDevice

IMEI = "300234010753370"
NOW = 1_760_000_000.0  # 2025-10-09: the network still counts ERA2
LATER = 1_800_000_000.0  # 2027-01-15: the network counts ERA3
T = TypeVar("T")


class Sky:
    """A constellation that records sessions and is finished by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now: float | None = now
        self.sessions: list[bytes | None] = []

    def signal_bars(self) -> int:
        return 5

    def network_time(self) -> float | None:
        return self.now

    def start_session(self, modem: Iridium9603, mo: bytes | None) -> None:
        self.sessions.append(mo)


def talk(model: Iridium9603, data: bytes) -> bytes:
    model.receive_data(data)
    return model.data_to_send()


def test_echo_line_ends_and_result_code_forms() -> None:
    model = Iridium9603(IMEI, Sky())
    assert talk(model, b"AT\r") == b"AT\r\r\nOK\r\n"  # echo on after power-up, verbose results
    assert talk(model, b"AT\n") == b""  # LF is not a line end
    assert talk(model, b"\r") == b"AT\r\r\nOK\r\n"
    assert talk(model, b"ATE0\r") == b"ATE0\r\r\nOK\r\n"
    assert talk(model, b"ATV0\r") == b"0\r"  # numeric: the code and CR
    assert talk(model, b"AT+CSQ\r") == b"+CSQ:5\r\n0\r"
    assert talk(model, b"AT+NOPE\r") == b"4\r"
    assert talk(model, b"ATQ1\r") == b""
    assert talk(model, b"ATE1V1Q0\r") == b"\r\nOK\r\n"  # typed while echo was off
    assert talk(model, b"AT&F0\r") == b"AT&F0\r\r\nOK\r\n"
    assert talk(model, b"ATE9\r") == b"ATE9\r\r\nERROR\r\n"


def test_identification_commands() -> None:
    model = Iridium9603(IMEI, Sky())
    talk(model, b"ATE0\r")
    assert talk(model, b"AT+CGMI\r") == talk(model, b"AT+GMI\r") == b"\r\nIridium\r\n\r\nOK\r\n"
    model_line = b"\r\nIRIDIUM 9600 Family SBD Transceiver\r\n\r\nOK\r\n"
    assert talk(model, b"AT+CGMM\r") == talk(model, b"AT+GMM\r") == model_line
    assert talk(model, b"AT+CGSN\r") == talk(model, b"AT+GSN\r") == b"\r\n300234010753370\r\n\r\nOK\r\n"
    revision = talk(model, b"AT+CGMR\r")
    assert revision == talk(model, b"AT+GMR\r")
    assert (
        revision.startswith(b"\r\nCall Processor Version: TA19002\r\n\r\n")
        and revision.count(b"Version") == 7
    )


def test_mo_buffer_in_binary_and_text_then_a_session() -> None:
    sky = Sky()
    model = Iridium9603(IMEI, sky)
    assert talk(model, b"AT+SBDWB=2\r") == b"AT+SBDWB=2\r\r\nREADY\r\n"  # READY on its own line
    assert talk(model, b"hi\x00\xd1") == b"\r\n0\r\n\r\nOK\r\n"
    assert talk(model, b"AT+SBDWB=2\r") == b"AT+SBDWB=2\r\r\nREADY\r\n"
    assert talk(model, b"hi\x00\x00") == b"\r\n2\r\n\r\nOK\r\n"  # bad checksum
    assert talk(model, b"AT+SBDWB=341\r") == b"AT+SBDWB=341\r\r\n3\r\n\r\nOK\r\n"
    talk(model, b"ATE0\r")
    assert talk(model, b"AT+SBDS\r") == b"\r\n+SBDS: 1, 0, 0, -1\r\n\r\nOK\r\n"
    assert talk(model, b"AT+SBDIX\r") == b""
    assert talk(model, b"AT\r") == b""  # nothing is taken while the session runs
    model.finish_session(SessionOutcome(0, b"hello", 7))
    assert model.data_to_send() == b"\r\n+SBDIX: 0, 1, 1, 7, 5, 0\r\n\r\nOK\r\n"
    assert talk(model, b"AT+SBDRB\r") == b"\x00\x05hello\x02\x14\r\nOK\r\n"  # binary, then OK
    assert talk(model, b"AT+SBDRT\r") == b"\r\n+SBDRT:\r\nhello\r\n\r\nOK\r\n"
    assert talk(model, b"AT+SBDIX=5609.432,01012.642\r") == b""
    assert sky.sessions == [b"hi", b"hi"]  # the MO buffer is kept after a successful session
    model.finish_session(SessionOutcome(32))
    assert model.data_to_send() == b"\r\n+SBDIX: 32, 1, 2, 0, 0, 0\r\n\r\nOK\r\n"
    assert talk(model, b"AT+SBDWT=Generator ok\r") == b"\r\nOK\r\n"
    assert talk(model, b"AT+SBDWT\r") == b"\r\nREADY\r\n"
    assert talk(model, b"Brug for diesel\r") == b"\r\n0\r\n\r\nOK\r\n"
    assert (
        talk(model, b"AT+SBDTC\r")
        == b"\r\nSBDTC: Outbound SBD Copied to Inbound SBD: size = 15\r\n\r\nOK\r\n"
    )
    assert talk(model, b"AT+SBDD2\r") == b"\r\n0\r\n\r\nOK\r\n"
    assert talk(model, b"AT+SBDRB\r") == b"\x00\x00\x00\x00\r\nOK\r\n"
    assert talk(model, b"AT+SBDSX\r") == b"\r\n+SBDSX: 0, 1, 0, 7, 0, 0\r\n\r\nOK\r\n"
    assert talk(model, b"AT+SBDD7\r") == b"\r\nERROR\r\n"


def test_ring_alerts_indicators_time_position_and_energy() -> None:
    sky = Sky(LATER)
    model = Iridium9603(IMEI, sky)
    talk(model, b"ATE0\r")
    model.ring()
    assert model.data_to_send() == b""  # not registered for ring alerts
    assert talk(model, b"AT+SBDMTA=1\r") + talk(model, b"AT+SBDAREG=1\r") == b"\r\nOK\r\n" * 2
    model.ring()
    assert model.data_to_send() == b"\r\nSBDRING\r\n"
    frames = int((LATER - ERA3) / 0.09)
    assert talk(model, b"AT-MSSTM\r") == f"\r\n-MSSTM: {frames:x}\r\n\r\nOK\r\n".encode()
    assert talk(model, b"AT+CRIS\r") == b"\r\n+CRIS:000,1\r\n\r\nOK\r\n"
    assert talk(model, b"AT+CRISX\r") == f"\r\n+CRISX:000,1,{frames:x}\r\n\r\nOK\r\n".encode()
    assert talk(model, b"AT-MSGEO\r") == f"\r\n-MSGEO: 3496,628,5296,{frames:x}\r\n\r\nOK\r\n".encode()
    assert talk(model, b"AT+CIER=1,1,1\r") == b"\r\nOK\r\n\r\n+CIEV:0,5\r\n\r\n+CIEV:1,1\r\n"
    assert (
        talk(model, b"AT+GEMON=12\r") + talk(model, b"AT+GEMON\r") == b"\r\nOK\r\n\r\n+GEMON:12\r\n\r\nOK\r\n"
    )
    sky.now = NOW
    assert talk(model, b"AT-MSSTM\r") == f"\r\n-MSSTM: {int((NOW - ERA2) / 0.09):x}\r\n\r\nOK\r\n".encode()
    sky.now = None
    assert talk(model, b"AT-MSSTM\r") == b"\r\n-MSSTM: no network service\r\n\r\nOK\r\n"


# -- third-party clients over a pty ---------------------------------------------------------------


@dataclass
class Bench:
    cloud: IridiumCloud
    model: Iridium9603
    pty: PtyDevice

    async def run(self, client: Callable[[str], T]) -> T:
        """Run a blocking client in a thread; unplugging the pty ends a client stuck on a read."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(client, str(self.pty.link_path)), 60)
        finally:
            self.pty.unplug()


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    cloud = IridiumCloud(session_delay=0.05, network_time=lambda: NOW, seed=5)
    model = Iridium9603(IMEI, cloud)
    cloud.attach(model, 1)
    pty = PtyDevice(model, tmp_path / "rockblock", baud=19200)
    pty.start()
    yield Bench(cloud, model, pty)
    await pty.aclose()
    await cloud.aclose()


def adafruit_session(port: str) -> dict[str, Any]:
    with serial.Serial(port, 19200, timeout=5) as uart:
        rockblock = adafruit_rockblock.RockBlock(uart)  # AT&F0, AT&K0
        seen: dict[str, Any] = {
            "model": rockblock.model,
            "imei": rockblock.serial_number,
            "revision": rockblock.revision,
            "bars": rockblock.signal_quality,
            "time": rockblock.system_time,
            "position": rockblock.geolocation[:3],
            "ring_indication": rockblock.ring_indication,
        }
        rockblock.ring_alert = True
        seen["ring_alert"] = rockblock.ring_alert
        rockblock.energy_monitor = 0
        seen["energy"] = rockblock.energy_monitor
        rockblock.data_out = b"\x01Status: generator ok"
        seen["status_before"] = rockblock.status
        seen["session"] = rockblock.satellite_transfer()  # sends the MO and fetches the queued MT
        seen["data_in"] = rockblock.data_in
        rockblock.data_in = None
        rockblock.text_out = "Brug for diesel"
        rockblock._transfer_buffer()  # AT+SBDTC: loop the MO back into the MT buffer
        seen["text_in"] = rockblock.text_in
        seen["status_after"] = rockblock.status
        return seen


async def test_adafruit_rockblock_library_drives_the_simulator(bench: Bench) -> None:
    bench.cloud.queue_mt(IMEI, b"MT fra krisestaben")
    seen = await bench.run(adafruit_session)
    assert seen["model"] == "IRIDIUM 9600 Family SBD Transceiver" and seen["imei"] == IMEI
    assert len(seen["revision"]) == 7 and seen["revision"][0].startswith("Call Processor Version")
    assert seen["bars"] == 5 and seen["ring_alert"] is True and seen["energy"] == 0
    assert seen["ring_indication"] == ("000", "0", "0")
    # The library converts with the 2014 (ERA2) epoch, the one the network counts from at NOW.
    assert calendar.timegm(seen["time"]) == pytest.approx(NOW, abs=2)
    assert seen["position"] == (3496, 628, 5296)
    assert seen["status_before"][:2] == (1, 0)
    assert seen["session"] == (0, 1, 1, 4_114_651 & 0xFFFF, 18, 0)
    assert seen["data_in"] == b"MT fra krisestaben"
    assert seen["text_in"] == "Brug for diesel"
    assert seen["status_after"][:4] == (1, 1, 1, 4_114_651 & 0xFFFF)
    assert bench.cloud.mo_log == [(IMEI, b"\x01Status: generator ok")]
    assert bench.model.commands[:2] == ["AT&F0", "AT&K0"]


def pyrockblock_session(port: str) -> dict[str, Any]:
    rockblock = pyRockBlock.RockBlock(port)
    assert rockblock.connect()  # AT, checked by its echo
    try:
        seen: dict[str, Any] = {"imei": rockblock.imei, "modem": rockblock.modem}
        # These two return after the information line and leave the modem's OK unread; take it here.
        seen["time"] = rockblock.get_iridium_datetime()
        assert rockblock.read_next() == "OK"
        seen["bars"] = rockblock.signal_quality
        assert rockblock.read_next() == "OK"
        assert rockblock.queue_text("Alt vel paa Solgaarden")
        seen["session"] = rockblock.initiate_session()
        seen["status"] = rockblock.get_status()
        assert rockblock.queue_bytes("abc")
        rockblock.clear_buffer(pyRockBlock.RockBlock.BufferClear.MO_MT)
        rockblock.set_energy_used(42)
        seen["energy"] = rockblock.get_energy_used()
        return seen
    finally:
        rockblock.disconnect()


async def test_pyrockblock_library_drives_the_simulator(bench: Bench) -> None:
    seen = await bench.run(pyrockblock_session)
    assert (seen["imei"], seen["modem"], seen["bars"]) == (IMEI, "IRIDIUM 9600 Family SBD Transceiver", 5)
    assert calendar.timegm(seen["time"].timetuple()) == pytest.approx(NOW, abs=2)
    session = seen["session"]
    assert session.mo_success and (session.mo_status_code, session.momsn, session.mt_status_code) == (
        0,
        "1",
        0,
    )
    assert (seen["status"].buffer_mo, seen["status"].momsn) == (True, 1)
    assert seen["energy"] == 42
    assert bench.cloud.mo_log == [(IMEI, b"Alt vel paa Solgaarden")]
    assert bench.model.mo is None and bench.model.mt == b""
