"""The SINE driver against literal PEI transcripts (ETSI EN 300 392-5 as terminals answer it), over a pty.

Every byte the radio says is written out here; every byte the driver must write is too. Each test is one
way real terminals differ from the simplest reading of the standard.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hardware import tetra_pei as pei
from hardware.tetra_driver import PidStep, SdsReceived, TetraDriver
from hub.core.errors import CmeError
from simulators.pty_device import PtyDevice
from tests.hardware.transcript import Transcript

PID = 0xC8
OK = b"\r\nOK\r\n"
SETUP = [
    (b"ATE0\r", b"ATE0\r" + OK),
    (b"AT+CTSP=1,3,200\r", OK),
    (b"AT+CTSP=1,2,20\r", OK),
    (b"AT+CTSDS=12,0\r", OK),
    (b"AT+CNUMF?\r", b"\r\n+CNUMF: 6,02380000100001001\r\n" + OK),
    (b"AT+CMGS=?\r", b"\r\n+CMGS: (0-99999999),(1-1120)\r\n" + OK),
]
HELLO = pei.Transfer(PID, 5, b"\x01hi")  # C8 04 05 01 68 69: 48 bits
HELLO_TEXT = b"C80405016869\x1a"


class Bench:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.made: list[tuple[TetraDriver, PtyDevice]] = []

    async def open(
        self, steps: list[tuple[bytes, bytes]], *, pid_fallback: tuple[PidStep, ...] = ("range",)
    ) -> tuple[TetraDriver, Transcript]:
        transcript = Transcript(steps)
        pty = PtyDevice(transcript, self.tmp_path / f"tty{len(self.made)}", baud=38400)
        pty.start()
        driver = TetraDriver(
            str(pty.link_path), 38400, pid=PID, pid_fallback=pid_fallback, fallback_bits=800, deadline=3.0
        )
        self.made.append((driver, pty))
        await driver.open()
        return driver, transcript


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    made = Bench(tmp_path)
    yield made
    for driver, pty in made.made:
        await driver.aclose()
        await pty.aclose()


async def test_send_is_accepted_first_and_sent_when_the_unsolicited_result_comes(bench: Bench) -> None:
    driver, radio = await bench.open(SETUP)
    radio.extend([(b"AT+CMGS=1002,48\r", b"\r\n> "), (HELLO_TEXT, b"\r\n+CMGS: 1,5\r\n" + OK)])
    submission = await driver.send_sdstl("1002", HELLO)
    assert (submission.instance, submission.ref) == (1, 5)
    assert not submission.sent.done()  # only accepted: the SDS is not on the air yet
    radio.push(b"\r\n+CMGS: 1,4,5\r\n")
    assert await asyncio.wait_for(submission.sent, 5) is True
    radio.extend([(b"AT+CMGS=1002,48\r", b"\r\n> "), (HELLO_TEXT, b"\r\n+CMGS: 2,6\r\n" + OK)])
    failed = await driver.send_sdstl("1002", HELLO)
    radio.push(b"\r\n+CMGS: 2,5,6\r\n")
    assert await asyncio.wait_for(failed.sent, 5) is False
    assert radio.finished


async def test_a_late_result_is_never_taken_for_the_next_commands_answer(bench: Bench) -> None:
    driver, radio = await bench.open(SETUP)
    radio.extend([(b"AT+CMGS=1002,48\r", b"\r\n> "), (HELLO_TEXT, b"\r\n+CMGS: 1,5\r\n" + OK)])
    first = await driver.send_sdstl("1002", HELLO)
    # The first SDS's result arrives in the middle of handing over the second.
    radio.extend(
        [(b"AT+CMGS=1002,48\r", b"\r\n+CMGS: 1,4,5\r\n\r\n> "), (HELLO_TEXT, b"\r\n+CMGS: 2,6\r\n" + OK)]
    )
    second = await driver.send_sdstl("1002", HELLO)
    assert (second.instance, second.ref) == (2, 6)
    assert await asyncio.wait_for(first.sent, 5) is True
    assert not second.sent.done()
    # And while another command runs, it is a URC, not that command's information.
    radio.extend([(b"AT+CTSDS=13,0\r", b"\r\n+CMGS: 2,4,6\r\n" + OK), (b"AT+CMGS=1002,16\r", b"\r\n> ")])
    radio.extend([(b"8002\x1a", b"\r\n+CMGS: 3,4,0\r\n" + OK)])
    status = await driver.send_status("1002", 0x8002)
    assert await asyncio.wait_for(second.sent, 5) is True
    assert status.sent.result() is True  # this radio reported the status inline
    assert radio.finished


async def test_already_registered_on_reopen_is_tolerated(bench: Bench) -> None:
    steps = list(SETUP)
    steps[1] = (b"AT+CTSP=1,3,200\r", b"\r\n+CME ERROR: 38\r\n")
    steps[2] = (b"AT+CTSP=1,2,20\r", b"\r\n+CME ERROR: 38\r\n")
    driver, radio = await bench.open(steps)
    assert driver.info is not None and driver.info.issi == "1001" and driver.send_pid == PID
    assert radio.finished


async def test_a_refused_private_pid_falls_back_to_the_range_selector(bench: Bench) -> None:
    steps = list(SETUP)
    steps[1:2] = [(b"AT+CTSP=1,3,200\r", b"\r\n+CME ERROR: 4\r\n"), (b"AT+CTSP=1,3,25\r", OK)]
    driver, radio = await bench.open(steps)
    assert driver.send_pid == PID and radio.finished


async def test_then_to_a_standard_pid_when_configured(bench: Bench) -> None:
    steps = list(SETUP)
    steps[1:2] = [
        (b"AT+CTSP=1,3,200\r", b"\r\n+CME ERROR: 4\r\n"),
        (b"AT+CTSP=1,3,25\r", b"\r\n+CME ERROR: 4\r\n"),
        (b"AT+CTSP=1,3,130\r", OK),
    ]
    driver, radio = await bench.open(steps, pid_fallback=("range", 130))
    assert driver.send_pid == 130 and driver.info is not None and driver.info.pid == 130
    radio.extend([(b"AT+CMGS=1002,48\r", b"\r\n> "), (b"820405016869\x1a", b"\r\n+CMGS: 1,4,5\r\n" + OK)])
    await driver.send_sdstl("1002", pei.Transfer(driver.send_pid, 5, b"\x01hi"))
    assert radio.finished


async def test_without_any_fallback_a_refusal_fails_the_open(bench: Bench) -> None:
    steps = [*SETUP[:1], (b"AT+CTSP=1,3,200\r", b"\r\n+CME ERROR: 4\r\n")]
    with pytest.raises(CmeError) as info:
        await bench.open(steps, pid_fallback=())
    assert info.value.code == 4


async def test_no_cmgs_test_form_uses_the_configured_size(bench: Bench) -> None:
    steps = list(SETUP)
    steps[-1] = (b"AT+CMGS=?\r", b"\r\nERROR\r\n")
    driver, radio = await bench.open(steps)
    assert driver.info is not None and (driver.info.max_bits, driver.info.max_bits_reported) == (800, False)
    assert radio.finished


async def test_ctsdsr_without_the_calling_party(bench: Bench) -> None:
    driver, radio = await bench.open(SETUP)
    radio.push(b"\r\n+CTSDSR: 12,02380000100001001,1,48\r\nC80405016869\r\n")
    radio.push(b"\r\n+CTSDSR: 12,02380000100001002,1,02380000100001001,1,48,0\r\nC80406016869\r\n")
    assert await driver.next_event(5) == SdsReceived(None, HELLO)
    assert await driver.next_event(5) == SdsReceived("1002", pei.Transfer(PID, 6, b"\x01hi"))


@pytest.mark.parametrize(
    ("line", "registered"),
    [
        (b"+CREG: 1,1001,023800001", True),  # TETRA: stat, location area, MNI
        (b"+CREG: 5,1001,023800001", True),
        (b"+CREG: 0,1001,023800001", False),
        (b"+CREG: 0,1", True),  # GSM: n, stat
        (b"+CREG: 2,0", False),
        (b"+CREG: 0,1,1001,023800001", True),
    ],
)
async def test_both_creg_forms(bench: Bench, line: bytes, registered: bool) -> None:
    driver, radio = await bench.open(SETUP)
    radio.extend([(b"AT+CREG?\r", b"\r\n" + line + b"\r\n" + OK)])
    assert await driver.registered() is registered


async def test_busy_answers_are_retried_with_back_off(bench: Bench) -> None:
    driver, radio = await bench.open(SETUP)
    # After an error the driver cannot know whether the radio took the hex as text or as half a command
    # line, so it writes ESC and CR (leave text entry, end the line) before trying again.
    radio.extend(
        [
            (b"AT+CMGS=1002,48\r", b"\r\n+CME ERROR: 42\r\n"),
            (HELLO_TEXT + b"\x1b\r", b"\r\nERROR\r\n"),
            (b"AT+CMGS=1002,48\r", b"\r\n> "),
            (HELLO_TEXT, b"\r\n+CME ERROR: 36\r\n"),
            (b"\x1b\r", b""),
            (b"AT+CMGS=1002,48\r", b"\r\n> "),
            (HELLO_TEXT, b"\r\n+CMGS: 1,5\r\n" + OK),
        ]
    )
    submission = await driver.send_sdstl("1002", HELLO)
    assert submission.instance == 1 and driver.busy_retries == 2 and radio.finished


async def test_a_radio_that_stays_busy_raises_the_busy_code(bench: Bench) -> None:
    driver, radio = await bench.open(SETUP)
    driver.busy_seconds = 0.0
    radio.extend(
        [(b"AT+CMGS=1002,48\r", b"\r\n> "), (HELLO_TEXT, b"\r\n+CME ERROR: 42\r\n"), (b"\x1b\r", b"")]
    )
    with pytest.raises(CmeError) as info:
        await driver.send_sdstl("1002", HELLO)
    assert info.value.code in pei.BUSY_ERRORS


async def test_a_tsi_is_sent_with_the_tsi_address_type(bench: Bench) -> None:
    driver, radio = await bench.open(SETUP)
    radio.extend(
        [
            (b"AT+CTSDS=12,1\r", OK),
            (b"AT+CMGS=02380000100001002,48\r", b"\r\n> "),
            (HELLO_TEXT, b"\r\n+CMGS: 1,5\r\n" + OK),
            (b"AT+CTSDS=12,0\r", OK),
            (b"AT+CMGS=1002,48\r", b"\r\n> "),
            (HELLO_TEXT, b"\r\n+CMGS: 2,5\r\n" + OK),
        ]
    )
    await driver.send_sdstl("02380000100001002", HELLO)
    await driver.send_sdstl("1002", HELLO)
    assert radio.finished
    with pytest.raises(ValueError, match="TSI"):
        await driver.send_sdstl("123456789", HELLO)


async def test_the_radios_own_message_reference_is_reported(bench: Bench) -> None:
    driver, radio = await bench.open(SETUP)
    radio.extend([(b"AT+CMGS=1002,48\r", b"\r\n> "), (HELLO_TEXT, b"\r\n+CMGS: 1,77\r\n" + OK)])
    assert (await driver.send_sdstl("1002", HELLO)).ref == 77
