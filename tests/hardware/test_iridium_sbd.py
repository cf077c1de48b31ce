from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware import iridium_sbd as sbd
from hub.core.errors import ProtocolError

# -- checksum and MO writes ------------------------------------------------------------------------


def test_checksum_is_low_16_bits_of_byte_sum_big_endian() -> None:
    assert sbd.checksum(b"hello") == (104 + 101 + 108 + 108 + 111).to_bytes(2, "big") == b"\x02\x14"
    assert sbd.checksum(b"\xff" * 300) == ((255 * 300) & 0xFFFF).to_bytes(2, "big")
    assert sbd.checksum(b"") == b"\x00\x00"


def test_sbdwb_command_and_payload() -> None:
    assert sbd.sbdwb_command(5) == b"AT+SBDWB=5\r"
    assert sbd.sbdwb_payload(b"hello") == b"hello\x02\x14"
    assert sbd.sbdwb_command(340) == b"AT+SBDWB=340\r"


@pytest.mark.parametrize("size", [0, 341, -1])
def test_sbdwb_refuses_sizes_outside_1_to_340(size: int) -> None:
    with pytest.raises(ProtocolError, match="1-340"):
        sbd.sbdwb_command(size)


def test_sbdwb_payload_refuses_empty_and_oversize() -> None:
    with pytest.raises(ProtocolError):
        sbd.sbdwb_payload(b"")
    with pytest.raises(ProtocolError):
        sbd.sbdwb_payload(b"x" * 341)


@pytest.mark.parametrize(
    ("line", "result"),
    [("0", sbd.WriteResult.OK), ("1\r\n", sbd.WriteResult.TIMEOUT), (" 2", sbd.WriteResult.BAD_CHECKSUM)],
)
def test_write_results(line: str, result: sbd.WriteResult) -> None:
    assert sbd.parse_write_result(line) is result


@pytest.mark.parametrize("line", ["", "4", "00", "OK", "READY"])
def test_write_result_garbage(line: str) -> None:
    with pytest.raises(ProtocolError):
        sbd.parse_write_result(line)


# -- SBDIX ----------------------------------------------------------------------------------------


def test_sbdix_success_with_mt_waiting() -> None:
    result = sbd.parse_sbdix("+SBDIX: 0, 12, 1, 7, 42, 3")
    assert result == sbd.SessionResult(0, 12, sbd.MtStatus.RECEIVED, 7, 42, 3)
    assert result.mo_ok
    assert result.retry_class is sbd.RetryClass.NONE


def test_sbdix_without_spaces_and_trailing_line_end() -> None:
    assert sbd.parse_sbdix("+SBDIX:32,5,0,0,0,0\r\n").mo_status == 32


@pytest.mark.parametrize(
    ("code", "retry"),
    [
        (0, sbd.RetryClass.NONE),
        (2, sbd.RetryClass.NONE),
        (4, sbd.RetryClass.NONE),
        (10, sbd.RetryClass.SOON),
        (18, sbd.RetryClass.SOON),
        (32, sbd.RetryClass.LATER),
        (36, sbd.RetryClass.LATER),
        (38, sbd.RetryClass.LATER),
        (33, sbd.RetryClass.FAULT),
        (34, sbd.RetryClass.FAULT),
        (12, sbd.RetryClass.NEVER),
        (25, sbd.RetryClass.SOON),
    ],
)
def test_mo_status_retry_classes(code: int, retry: sbd.RetryClass) -> None:
    result = sbd.SessionResult(code, 1, sbd.MtStatus.NONE, 0, 0, 0)
    assert result.retry_class is retry
    assert result.mo_ok is (retry is sbd.RetryClass.NONE)
    assert result.meaning


def test_mo_status_meanings_name_the_cause() -> None:
    assert sbd.mo_status_meaning(32)[0] == "no network service"
    assert "RF drop" in sbd.mo_status_meaning(18)[0]


def test_sbdix_failed_session() -> None:
    result = sbd.SessionResult(18, 65535, sbd.MtStatus.ERROR, 0, 0, 0)
    assert sbd.parse_sbdix("+SBDIX: 18, 65535, 2, 0, 0, 0") == result


@pytest.mark.parametrize(
    "line",
    [
        "+SBDIX: 0, 12, 1, 7, 42",  # a field missing
        "+SBDIX: 0, 12, 3, 7, 42, 0",  # MT status 3 does not exist
        "+SBDIX: 0, 12, 1, 7, 271, 0",  # MT longer than the 270-byte buffer
        "+SBDIX: 0, 70000, 0, 0, 0, 0",  # MOMSN is 16 bits
        "+SBDIX: 0, 12, 1, 7, 42, 3 junk",
        "OK",
    ],
)
def test_sbdix_malformed(line: str) -> None:
    with pytest.raises(ProtocolError):
        sbd.parse_sbdix(line)


def test_sbdix_command() -> None:
    assert sbd.sbdix_command() == b"AT+SBDIX\r"
    assert sbd.sbdix_command(answer_ring=True) == b"AT+SBDIXA\r"


def test_sbdsx_status_and_round_trip() -> None:
    status = sbd.parse_sbdsx("+SBDSX: 1, 12, 0, -1, 1, 2\r\n")
    assert status == sbd.SbdStatus(True, 12, False, -1, True, 2)
    for line in ("+SBDSX: 1, 12, 0, -1, 1", "+SBDSX: 2, 12, 0, 0, 1, 0", "+SBDSX: 1, 99999, 0, 0, 1, 0"):
        with pytest.raises(ProtocolError):
            sbd.parse_sbdsx(line)


# -- SBDRB: the binary read, three ways -----------------------------------------------------------


def sbdrb_answer(message: bytes) -> bytes:
    """What a 9603 sends for AT+SBDRB before its OK: length, message, checksum."""
    return len(message).to_bytes(2, "big") + message + sbd.checksum(message)


MESSAGE = b"\x01\x02frame from the gateway\xff"
WIRE = sbdrb_answer(MESSAGE)


def test_sbdrb_whole() -> None:
    assert WIRE == b"\x00\x19\x01\x02frame from the gateway\xff\x09\x54"
    assert sbd.parse_sbdrb(WIRE) == (MESSAGE, len(WIRE))


def test_sbdrb_byte_at_a_time_is_incomplete_until_the_last_byte() -> None:
    for end in range(len(WIRE)):
        assert sbd.parse_sbdrb(WIRE[:end]) is None
    assert sbd.parse_sbdrb(WIRE) == (MESSAGE, len(WIRE))


def test_sbdrb_leaves_trailing_bytes() -> None:
    buffer = WIRE + b"\r\nOK\r\n"
    message, used = sbd.parse_sbdrb(buffer) or (b"", 0)
    assert message == MESSAGE
    assert buffer[used:] == b"\r\nOK\r\n"


def test_sbdrb_empty_buffer_and_full_size() -> None:
    assert sbd.parse_sbdrb(b"\x00\x00\x00\x00") == (b"", 4)
    full = b"z" * 270
    assert sbd.parse_sbdrb(sbdrb_answer(full)) == (full, 274)


def test_sbdrb_bad_checksum() -> None:
    corrupted = WIRE[:-1] + bytes([WIRE[-1] ^ 0x01])
    with pytest.raises(ProtocolError, match="checksum mismatch"):
        sbd.parse_sbdrb(corrupted)


def test_sbdrb_impossible_length_fails_before_waiting_for_bytes() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        sbd.parse_sbdrb(b"\x01\x0f")


@given(st.binary(max_size=300))
def test_sbdrb_any_bytes_parse_wait_or_raise_protocol_error(data: bytes) -> None:
    try:
        parsed = sbd.parse_sbdrb(data)
    except ProtocolError:
        return
    if parsed is not None:
        message, used = parsed
        assert data[:used] == sbdrb_answer(message)


@given(st.binary(max_size=270), st.binary(max_size=20))
def test_sbdrb_round_trip_property(message: bytes, trailing: bytes) -> None:
    assert sbd.parse_sbdrb(sbdrb_answer(message) + trailing) == (message, len(message) + 4)


# -- the line parsers -----------------------------------------------------------------------------


def test_sbdd() -> None:
    assert sbd.sbdd_command(sbd.ClearBuffer.BOTH) == b"AT+SBDD2\r"
    assert sbd.parse_sbdd_result("0") is True
    assert sbd.parse_sbdd_result("1\r\n") is False
    with pytest.raises(ProtocolError):
        sbd.parse_sbdd_result("2")


def test_ring_alert_commands_and_urcs() -> None:
    assert sbd.sbdmta_command(True) == b"AT+SBDMTA=1\r"
    assert sbd.sbdareg_command(1) == b"AT+SBDAREG=1\r"
    with pytest.raises(ProtocolError):
        sbd.sbdareg_command(3)
    assert sbd.is_ring("SBDRING\r\n")
    assert not sbd.is_ring("SBDRINGX")
    assert sbd.parse_areg("+AREG:2,0") == sbd.Registration(2, 0)
    with pytest.raises(ProtocolError):
        sbd.parse_areg("+AREG:")


@pytest.mark.parametrize(("line", "bars"), [("+CSQ:5", 5), ("+CSQF:0", 0), ("+CSQ: 3\r\n", 3)])
def test_csq(line: str, bars: int) -> None:
    assert sbd.parse_csq(line) == bars


@pytest.mark.parametrize("line", ["+CSQ:6", "+CSQ:", "+CSQ:5,99", "CSQ:5"])
def test_csq_malformed(line: str) -> None:
    with pytest.raises(ProtocolError):
        sbd.parse_csq(line)


def test_msstm_counts_90_ms_frames() -> None:
    assert sbd.parse_msstm_frames("-MSSTM: 00000000") == 0
    assert sbd.parse_msstm_frames("-MSSTM: 10000000\r\n") == 0x10000000
    assert sbd.parse_msstm_frames("-MSSTM: 3b9ac9ff") == 999_999_999  # no leading zeros needed
    assert sbd.parse_msstm_frames("-MSSTM: no network service") is None


def test_msstm_time_picks_the_era_the_count_belongs_to() -> None:
    floor = 1_735_689_600.0  # 2025-01-01, the build's plausible floor
    # 2025-10-09, still counted from the 2014 epoch (ERA2): the ERA3 reading would be in 2036.
    era2_count = round((1_760_000_000 - sbd.IRIDIUM_EPOCH) / sbd.TICK_SECONDS)
    assert sbd.msstm_time(era2_count, not_before=floor) == pytest.approx(1_760_000_000, abs=0.05)
    # 2027-01-15, counted from the 2025-02-14 epoch (ERA3): the ERA2 reading would be in 2016.
    era3_count = round((1_800_000_000 - sbd.ERA3_EPOCH) / sbd.TICK_SECONDS)
    assert sbd.msstm_time(era3_count, not_before=floor) == pytest.approx(1_800_000_000, abs=0.05)
    # Nothing plausible: the latest epoch's reading, which the transport then refuses as too early.
    assert sbd.msstm_time(0, not_before=floor) == sbd.ERA3_EPOCH
    assert sbd.msstm_time(5, epochs=(1_000.0,), not_before=floor) == pytest.approx(1_000.45)


@pytest.mark.parametrize("line", ["-MSSTM: ", "-MSSTM: 123456789", "-MSSTM: xyz", "MSSTM: 00000001"])
def test_msstm_malformed(line: str) -> None:
    with pytest.raises(ProtocolError):
        sbd.parse_msstm_frames(line)


def test_sbdtc_and_imei() -> None:
    assert sbd.parse_sbdtc("SBDTC: Outbound SBD Copied to Inbound SBD: size = 12") == 12
    assert sbd.parse_imei("300234010753370\r\n") == "300234010753370"
    with pytest.raises(ProtocolError):
        sbd.parse_imei("30023401075337")
    with pytest.raises(ProtocolError):
        sbd.parse_sbdtc("SBDTC: size 12")


@given(st.text(max_size=60))
def test_line_parsers_return_or_raise_protocol_error(line: str) -> None:
    parsers = (
        sbd.parse_write_result,
        sbd.parse_sbdix,
        sbd.parse_sbdsx,
        sbd.parse_sbdd_result,
        sbd.parse_areg,
        sbd.parse_csq,
        sbd.parse_msstm_frames,
        sbd.parse_sbdtc,
        sbd.parse_imei,
        sbd.parse_rb_address,
    )
    for parse in parsers:
        with contextlib.suppress(ProtocolError):
            parse(line)


# -- credits and provider addressing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "credits"), [(0, 1), (1, 1), (50, 1), (51, 2), (100, 2), (270, 6), (340, 7)]
)
def test_credits_per_started_50_bytes(size: int, credits: int) -> None:
    assert sbd.credits_for(size) == credits


def test_rb_prefix_forms() -> None:
    assert sbd.rb_prefix(12345) == b"RB0012345"
    assert sbd.parse_rb_address("RB0012345") == 12345
    assert sbd.split_rb_prefix(b"RB0012345payload") == (12345, b"payload")
    assert sbd.split_rb_prefix(b"RB001234xpayload") is None
    assert sbd.split_rb_prefix(b"RB00123") is None
    with pytest.raises(ProtocolError):
        sbd.rb_prefix(10_000_000)
    with pytest.raises(ProtocolError):
        sbd.parse_rb_address("RB12345")


@given(st.binary(max_size=20))
def test_split_rb_prefix_never_raises(data: bytes) -> None:
    split = sbd.split_rb_prefix(data)
    if split is not None:
        assert sbd.rb_prefix(split[0]) + split[1] == data
