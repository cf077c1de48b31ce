"""The AT codec three ways plus a property, then the serial link and command runner over a real pty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware.at import AtEvent, AtParser, BinaryRead, Prompt, Response, Urc, encode_command, encode_text
from hardware.modem import AtModem
from hardware.serial_link import SerialLink, backoff_delays, probe_baud
from hub.core.errors import CmeError, CommandTimeout, DeviceGone, ProtocolError
from simulators.pty_device import PtyDevice

URC_PREFIXES = ("SBDRING", "+CTXG:")
URC_WITH_DATA = ("+CTSDSR:",)

TETRA_SESSION = (
    b"ATE0\r\r\nOK\r\n"
    b"\r\n+CNUMF: 6,2380000001234567\r\n\r\nOK\r\n"
    b"\r\n+CTSDSR: 12,1001,0,1002,0,32\r\n82040155\r\n"
    b"+CME ERROR: 35\r\n"
    b"SBDRING\r\n"
    b"ERROR\n"
)
TETRA_EVENTS: list[AtEvent] = [
    Response(("ATE0",), "OK"),
    Response(("+CNUMF: 6,2380000001234567",), "OK"),
    Urc("+CTSDSR: 12,1001,0,1002,0,32", "82040155"),
    Response((), "+CME ERROR", 35),
    Urc("SBDRING"),
    Response((), "ERROR"),
]


def drain(parser: AtParser) -> list[AtEvent]:
    events = []
    while (event := parser.next_event()) is not None:
        events.append(event)
    return events


def test_whole_input() -> None:
    parser = AtParser(urc_prefixes=URC_PREFIXES, urc_with_data=URC_WITH_DATA)
    parser.receive_data(TETRA_SESSION)
    assert drain(parser) == TETRA_EVENTS


def test_one_byte_at_a_time() -> None:
    parser = AtParser(urc_prefixes=URC_PREFIXES, urc_with_data=URC_WITH_DATA)
    events: list[AtEvent] = []
    for byte in TETRA_SESSION:
        parser.receive_data(bytes([byte]))
        events += drain(parser)
    assert events == TETRA_EVENTS


def test_trailing_partial_line_waits_for_more() -> None:
    parser = AtParser(urc_prefixes=URC_PREFIXES, urc_with_data=URC_WITH_DATA)
    parser.receive_data(TETRA_SESSION + b"\r\n+CMGS: 0,4,7")
    assert drain(parser) == TETRA_EVENTS
    parser.receive_data(b"\r\nOK\r")
    assert drain(parser) == [Response(("+CMGS: 0,4,7",), "OK")]


def test_urc_inside_an_answer_is_routed_apart_from_the_information_lines() -> None:
    parser = AtParser(urc_prefixes=URC_PREFIXES, urc_with_data=URC_WITH_DATA)
    parser.receive_data(b"\r\n+CMGS: 1,4,9\r\n+CTSDSR: 13,1,0,2,0,16\r\n8001\r\nSBDRING\r\nOK\r\n")
    assert drain(parser) == [
        Urc("+CTSDSR: 13,1,0,2,0,16", "8001"),
        Urc("SBDRING"),
        Response(("+CMGS: 1,4,9",), "OK"),
    ]


def test_prompt_without_line_end_and_verbose_cme() -> None:
    parser = AtParser()
    parser.receive_data(b"\r\n> ")
    assert drain(parser) == [Prompt()]
    parser.receive_data(b"\r\n+CME ERROR: SIM not inserted\r\n")
    (response,) = drain(parser)
    assert isinstance(response, Response)
    assert not response.ok and response.code is None and response.detail == "SIM not inserted"


def test_extra_final_word_ends_the_answer_for_one_command() -> None:
    parser = AtParser()
    parser.begin_command(finals=("READY",))
    parser.receive_data(b"READY\r\n")
    assert drain(parser) == [Response((), "READY")]
    parser.receive_data(b"READY\r\n0\r\n\r\nOK\r\n")  # READY is an information line again
    assert drain(parser) == [Response(("READY", "0"), "OK")]


SBDRB = b"\x00\x05hello\x02\x14"  # length 5, "hello", checksum 0x0214


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_binary_block_is_taken_by_count_even_with_line_ends_inside(chunk: int) -> None:
    block = b"\x00\x04\r\n\r\n\x00\x1a"
    stream = block + b"\r\nOK\r\nSBDRING\r\n" + b"trailing"
    parser = AtParser(urc_prefixes=URC_PREFIXES, urc_with_data=URC_WITH_DATA)
    parser.begin_command(binary=BinaryRead())
    events: list[AtEvent] = []
    for start in range(0, len(stream), chunk):
        parser.receive_data(stream[start : start + chunk])
        events += drain(parser)
    assert events == [Response((), "OK", binary=block), Urc("SBDRING")]
    parser.begin_command(binary=BinaryRead())  # "trailing" is now read as a length prefix: 0x7472 bytes
    parser.receive_data(b"OK\r\n")
    assert drain(parser) == []


def test_fixed_size_binary_block() -> None:
    parser = AtParser()
    parser.begin_command(binary=BinaryRead(fixed=3))
    parser.receive_data(b"\r\n\x00OK\r\n")
    assert drain(parser) == [Response((), "OK", binary=b"\r\n\x00")]


def test_noise_raises_protocol_error_and_parser_recovers() -> None:
    parser = AtParser()
    parser.receive_data(b"\xf0\x00\xfe\r\nOK\r\n")
    with pytest.raises(ProtocolError, match="not text"):
        parser.next_event()
    assert drain(parser) == [Response((), "OK")]


def test_overlong_line_raises_protocol_error() -> None:
    parser = AtParser(max_line=16)
    parser.receive_data(b"A" * 17)
    with pytest.raises(ProtocolError, match="longer than 16"):
        parser.next_event()
    parser.receive_data(b"OK\r")
    assert drain(parser) == [Response((), "OK")]


def test_encoders_refuse_what_would_break_the_line() -> None:
    assert encode_command("AT+CNUMF?") == b"AT+CNUMF?\r"
    assert encode_text("0A1B") == b"0A1B\x1a"
    for bad in ("", "AT\rATZ", "AT+CMGS=1\x1a", "ATæ"):
        with pytest.raises(ValueError):
            encode_command(bad)
    with pytest.raises(ValueError):
        encode_text("AB\r")


@given(st.binary(max_size=300), st.booleans())
def test_any_bytes_give_events_or_protocol_error(data: bytes, binary: bool) -> None:
    parser = AtParser(max_line=64, urc_prefixes=URC_PREFIXES, urc_with_data=URC_WITH_DATA)
    if binary:
        parser.begin_command(binary=BinaryRead())
    parser.receive_data(data)
    for _ in range(len(data) + 2):
        try:
            if parser.next_event() is None:
                break
        except ProtocolError:
            continue


# --- the serial link and the runner against a small scripted device on a real pty -----------------------


class ScriptedDevice:
    """Answers each command line from a table; unknown commands get ERROR, silent ones nothing."""

    def __init__(self, answers: dict[bytes, bytes]) -> None:
        self.answers = answers
        self.wakeup: Callable[[], None] | None = None
        self._in = bytearray()
        self._out = bytearray()

    def receive_data(self, data: bytes) -> None:
        self._in += data
        while b"\r" in self._in:
            line, _, rest = bytes(self._in).partition(b"\r")
            self._in[:] = rest
            if line.strip():
                self._out += self.answers.get(line.strip(), b"\r\nERROR\r\n")

    def data_to_send(self) -> bytes:
        out, self._out[:] = bytes(self._out), b""
        return out

    def emit(self, data: bytes) -> None:
        self._out += data
        if self.wakeup is not None:
            self.wakeup()


ANSWERS = {
    b"AT": b"\r\nOK\r\n",
    b"AT+CNUMF?": b"\r\n+CNUMF: 6,1234\r\n\r\nOK\r\n",
    b"AT+BAD": b"\r\n+CME ERROR: 4\r\n",
    b"AT+SBDRB": SBDRB + b"\r\nOK\r\n",
    b"AT+SBDWB=5": b"READY\r\n",
    b"AT+SILENT": b"",
}


@pytest.fixture
async def device(tmp_path: Path) -> AsyncIterator[tuple[PtyDevice, ScriptedDevice]]:
    model = ScriptedDevice(dict(ANSWERS))
    server = PtyDevice(model, tmp_path / "ttyFAKE", baud=19200)
    server.start()
    yield server, model
    await server.aclose()


@pytest.fixture
async def modem(device: tuple[PtyDevice, ScriptedDevice]) -> AsyncIterator[AtModem]:
    link = SerialLink(str(device[0].link_path), 19200)
    modem = await AtModem.open(
        link, default_deadline=5.0, urc_prefixes=URC_PREFIXES, urc_with_data=URC_WITH_DATA
    )
    yield modem
    await modem.aclose()


async def test_commands_answers_and_urcs_over_a_pty(
    modem: AtModem, device: tuple[PtyDevice, ScriptedDevice]
) -> None:
    assert (await modem.command("AT+CNUMF?")).info == ("+CNUMF: 6,1234",)
    device[1].emit(b"\r\n+CTSDSR: 12,1,0,2,0,8\r\nAB\r\n")
    assert await modem.next_urc(5) == Urc("+CTSDSR: 12,1,0,2,0,8", "AB")
    with pytest.raises(CmeError) as info:
        await modem.command("AT+BAD")
    assert info.value.code == 4 and info.value.command == "AT+BAD"
    assert (await modem.command("AT+SBDRB", binary=BinaryRead())).binary == SBDRB
    assert (await modem.command("AT+SBDWB=5", finals=("READY",))).result == "READY"


async def test_no_answer_is_a_command_timeout_and_the_modem_stays_usable(modem: AtModem) -> None:
    with pytest.raises(CommandTimeout, match="AT\\+SILENT"):
        await modem.command("AT+SILENT", deadline=0.3)
    assert (await modem.command("AT")).result == "OK"
    with pytest.raises(CommandTimeout):
        await modem.next_urc(0.05)


async def test_unplug_mid_command_is_device_gone_then_reopen_after_replug(
    modem: AtModem, device: tuple[PtyDevice, ScriptedDevice]
) -> None:
    server, _ = device
    server.unplug_on(b"AT+CNUMF?")
    with pytest.raises(DeviceGone):
        await modem.command("AT+CNUMF?", deadline=10)
    assert modem.gone.is_set()
    with pytest.raises(DeviceGone):
        await modem.command("AT")
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, server.replug)
    await modem.reopen(deadline=10)
    assert (await modem.command("AT+CNUMF?")).info == ("+CNUMF: 6,1234",)


async def test_reopen_gives_up_at_its_deadline(tmp_path: Path) -> None:
    link = SerialLink(str(tmp_path / "absent"), 9600)
    with pytest.raises(DeviceGone, match="cannot open"):
        await link.open(deadline=1)
    with pytest.raises(DeviceGone, match="did not come back"):
        await link.reopen(deadline=0.5, delays=iter([0.05] * 100))
    await link.aclose()
    await link.aclose()


async def test_baud_probing_finds_the_device_rate(device: tuple[PtyDevice, ScriptedDevice]) -> None:
    path = str(device[0].link_path)
    assert await probe_baud(path, [115200, 38400, 19200, 9600], deadline=1.0) == 19200
    with pytest.raises(DeviceGone, match="no answer"):
        await probe_baud(path, [115200, 9600], deadline=0.3)


async def test_close_while_a_command_waits_fails_it_cleanly(device: tuple[PtyDevice, ScriptedDevice]) -> None:
    modem = await AtModem.open(SerialLink(str(device[0].link_path), 19200))
    pending = asyncio.create_task(modem.command("AT+SILENT", deadline=10))
    await asyncio.sleep(0.1)
    await modem.aclose()
    with pytest.raises(DeviceGone):
        await pending
    await modem.aclose()
    with pytest.raises(DeviceGone):
        await modem.command("AT")


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    delays = backoff_delays(initial=1.0, cap=8.0)
    got = [next(delays) for _ in range(8)]
    assert 0.5 <= got[0] <= 1.0
    assert all(4.0 <= d <= 8.0 for d in got[4:])
    assert len(set(got)) > 1


async def test_commands_from_several_tasks_run_one_at_a_time(modem: AtModem) -> None:
    answers = await asyncio.gather(
        *(modem.command(cmd) for cmd in ["AT+CNUMF?", "AT", "AT+CNUMF?", "AT"] * 3)
    )
    assert [a.info for a in answers] == [("+CNUMF: 6,1234",), ()] * 6


async def test_a_cancelled_command_leaves_the_modem_usable(modem: AtModem) -> None:
    task = asyncio.create_task(modem.command("AT+SILENT", deadline=10))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await modem.command("AT+CNUMF?")).info == ("+CNUMF: 6,1234",)


async def test_link_closes_cleanly_while_a_read_waits(device: tuple[PtyDevice, ScriptedDevice]) -> None:
    link = SerialLink(str(device[0].link_path), 19200)
    await link.open()
    reader = asyncio.create_task(link.read())
    await asyncio.sleep(0.05)
    await link.aclose()
    with pytest.raises(DeviceGone):
        await reader
    with pytest.raises(DeviceGone):
        await link.write(b"AT\r")
    second = SerialLink(str(device[0].link_path), 19200)  # the port was released: it opens again
    await second.open()
    await second.aclose()


def test_a_urc_prefix_can_be_a_commands_own_answer_until_its_final_result() -> None:
    parser = AtParser(urc_prefixes=("+CMGS:",))
    parser.begin_command(solicited=("+CMGS:",))
    parser.receive_data(b"\r\n+CMGS: 2,6\r\n\r\nOK\r\n\r\n+CMGS: 2,4,6\r\n")
    assert drain(parser) == [Response(("+CMGS: 2,6",), "OK"), Urc("+CMGS: 2,4,6")]
