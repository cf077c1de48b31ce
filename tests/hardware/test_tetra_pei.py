"""TETRA PEI builders/parsers and SDS-TL PDUs: whole, byte by byte through the AT codec, trailing bytes,
and a property that any bytes decode or raise ProtocolError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hardware import tetra_pei as pei
from hardware.at import AtParser, Urc
from hub.core.errors import ProtocolError

TRANSFER = pei.Transfer(0xC8, 7, b"\x01frame", pei.ReportRequest.RECEIVED)
TRANSFER_BYTES = bytes([0xC8, 0x04, 7]) + b"\x01frame"


def test_transfer_and_report_round_trip() -> None:
    assert pei.encode_transfer(TRANSFER) == TRANSFER_BYTES
    assert pei.decode_sdstl(TRANSFER_BYTES) == TRANSFER
    report = pei.Report(0xC8, 7, pei.DeliveryStatus.DESTINATION_NOT_REGISTERED)
    assert pei.encode_report(report) == bytes([0xC8, 0x10, 0x4B, 7])
    assert pei.decode_sdstl(pei.encode_report(report)) == report


def test_trailing_bytes_are_user_data_of_a_transfer_and_ignored_after_a_report() -> None:
    assert pei.decode_sdstl(TRANSFER_BYTES + b"\xff") == pei.Transfer(0xC8, 7, b"\x01frame\xff")
    assert pei.decode_sdstl(bytes([0xC8, 0x10, 0x00, 7, 0xAA])) == pei.Report(0xC8, 7, 0)


def test_stored_transfer_skips_validity_and_forward_address() -> None:
    stored = bytes([0xC8, 0x05, 9, 0b00000_001, 0, 0x03, 0xE9]) + b"data"
    assert pei.decode_sdstl(stored) == pei.Transfer(0xC8, 9, b"data", pei.ReportRequest.RECEIVED)
    with pytest.raises(ProtocolError, match="forward address type"):
        pei.decode_sdstl(bytes([0xC8, 0x01, 9, 0b00000_011]) + b"x")
    with pytest.raises(ProtocolError, match="truncated"):
        pei.decode_sdstl(bytes([0xC8, 0x01, 9, 0b00000_001, 0]))


@pytest.mark.parametrize("bad", [b"", b"\xc8\x04", b"\xc8\x10\x00", b"\xc8\x20\x00\x01"])
def test_short_or_unknown_pdus_are_protocol_errors(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        pei.decode_sdstl(bad)


def test_delivery_status_outcomes() -> None:
    assert pei.outcome(0x00) is pei.Outcome.DELIVERED
    assert pei.outcome(0x02) is pei.Outcome.DELIVERED
    assert pei.outcome(0x21) is pei.Outcome.TEMPORARY
    assert pei.outcome(0x4B) is pei.Outcome.FAILED
    assert pei.outcome(0x5A) is pei.Outcome.FAILED
    assert pei.outcome(0x60) is pei.Outcome.FLOW_CONTROL
    assert pei.status_name(0x4B) == "destination-not-registered"
    assert pei.status_name(0x55) == "0x55"


def test_command_builders() -> None:
    assert pei.ctsp_sdstl(0xC8) == "AT+CTSP=1,3,200"
    assert pei.ctsp_range(0xC8) == "AT+CTSP=1,3,25" and pei.ctsp_range(0x20) == "AT+CTSP=1,3,24"
    assert pei.ctsds(pei.STATUS) == "AT+CTSDS=13,0"
    assert pei.ctsds(pei.SDS_TYPE4, pei.called_type("02380000100001002")) == "AT+CTSDS=12,1"
    assert pei.called_type("1002") == pei.CALLED_SSI
    assert pei.cmgs("1002", 88) == "AT+CMGS=1002,88"
    assert pei.cmgs("02380000100001002", 88) == "AT+CMGS=02380000100001002,88"
    assert pei.status_hex(0x8002) == "8002"
    with pytest.raises(ValueError):
        pei.ctsp_sdstl(256)
    with pytest.raises(ValueError):
        pei.ctsds(11)
    with pytest.raises(ValueError):
        pei.cmgs("10a2", 8)
    with pytest.raises(ValueError):
        pei.cmgs("1002", 2048)
    with pytest.raises(ValueError):
        pei.cmgs("123456789", 8)  # neither an SSI nor a TSI
    with pytest.raises(ValueError):
        pei.status_hex(0x7FFF)


def test_response_parsers() -> None:
    assert pei.parse_cmgs_test(("+CMGS: (0-99999999),(1-1120)",)) == 1120
    assert pei.parse_cnumf(("+CNUMF: 6,02380000100001001",)) == "1001"
    assert pei.parse_cnumf(("+CNUMF: 0,4711",)) == "4711"
    assert pei.parse_cmgs_answer("+CMGS: 3,4,7") == pei.CmgsLine(3, 4, 7)
    assert pei.parse_cmgs_answer("+CMGS: 3") == pei.CmgsLine(3, None, None)
    assert pei.parse_cmgs_answer("+CMGS: 3,7") == pei.CmgsLine(3, None, 7)
    assert pei.parse_cmgs_result("+CMGS: 3,5") == pei.CmgsLine(3, 5, None)
    assert pei.parse_cmgs_result("+CMGS: 3,4,7") == pei.CmgsLine(3, 4, 7)
    assert pei.parse_creg(("+CREG: 1,1001,023800001",)) and pei.parse_creg(("+CREG: 5",))
    assert pei.parse_creg(("+CREG: 0,1",)) and pei.parse_creg(("+CREG: 0,5,1001,023800001",))
    assert not pei.parse_creg(("+CREG: 0,0",)) and not pei.parse_creg(("+CREG: 0,1001,023800001",))
    for parse, info in (
        (pei.parse_cmgs_test, ("+CMGS: 1120",)),
        (pei.parse_cnumf, ("+CNUMF: 6,abc",)),
        (pei.parse_creg, ("+CREG: 0,x",)),
        (pei.parse_creg, ()),
    ):
        with pytest.raises(ProtocolError):
            parse(info)
    for line_parser, line in (
        (pei.parse_cmgs_answer, "+CMGS: x,4"),
        (pei.parse_cmgs_answer, "+CMGS: 1,2,3,4"),
        (pei.parse_cmgs_result, "+CMGS: 3"),
        (pei.parse_cmgs_result, "+CMGS: 3,,7"),
    ):
        with pytest.raises(ProtocolError):
            line_parser(line)


CTSDSR = b"\r\n+CTSDSR: 12,02380000100001001,0,02380000100001002,0,72\r\nC8040701667261\r\n"


def test_ctsdsr_through_the_at_codec_byte_by_byte() -> None:
    parser = AtParser(urc_with_data=("+CTSDSR:",))
    events = []
    for byte in CTSDSR + b"\r\n+CTSDSR: 13,1003,0,1002,0,16\r\n8002\r\n":
        parser.receive_data(bytes([byte]))
        while (event := parser.next_event()) is not None:
            events.append(event)
    assert len(events) == 2 and all(isinstance(e, Urc) for e in events)
    first = pei.parse_ctsdsr(events[0].line, events[0].data)  # type: ignore[union-attr]
    assert first == pei.Indication(12, "1001", "1002", 72, bytes.fromhex("C8040701667261"))
    status = pei.parse_ctsdsr(events[1].line, events[1].data)  # type: ignore[union-attr]
    assert pei.parse_status(status) == 0x8002


def test_ctsdsr_leniency_and_errors() -> None:
    extra = pei.parse_ctsdsr("+CTSDSR: 12,1001,0,1002,0,24,0,9", "C80407F")
    assert extra.payload == bytes.fromhex("C80407")  # odd hex: the half byte is dropped
    anonymous = pei.parse_ctsdsr("+CTSDSR: 12,02380000100001002,1,24", "C80407")
    assert (anonymous.calling, anonymous.called, anonymous.bits) == (None, "1002", 24)
    assert pei.parse_ctsdsr("+CTSDSR: 12,1002,1,24,0", "C80407").calling is None
    assert pei.parse_ctsdsr("+CTSDSR: 12,,,1002,1,24", "C80407").calling is None
    for line, data in (
        ("+CTSDSR: 12,1001,0", "00"),
        ("+CTSDSR: 12,1001,0,1002,0,x", "00"),
        ("+CTSDSR: 12,1001,0,1002,0,8", "ZZ"),
        ("+CTSDSR: 12,123456789012345678,0,1002,0,8", "00"),
        ("+CMGS: 1", "00"),
    ):
        with pytest.raises(ProtocolError):
            pei.parse_ctsdsr(line, data)
    with pytest.raises(ProtocolError):
        pei.parse_status(pei.Indication(13, "1", "2", 8, b"\x80"))


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    try:
        pdu = pei.decode_sdstl(data)
    except ProtocolError:
        return
    assert pdu.pid == data[0]


@given(st.text(max_size=80), st.one_of(st.none(), st.text(max_size=80)))
def test_any_urc_text_parses_or_raises_protocol_error(line: str, data: str | None) -> None:
    try:
        indication = pei.parse_ctsdsr("+CTSDSR: " + line, data)
    except ProtocolError:
        return
    assert indication.ai_service >= 0 and (indication.calling is None or indication.calling.isdigit())


@given(st.binary(max_size=40), st.integers(0, 255), st.sampled_from(list(pei.ReportRequest)))
def test_transfer_round_trip_property(data: bytes, ref: int, report: pei.ReportRequest) -> None:
    pdu = pei.Transfer(0xC0, ref, data, report)
    assert pei.decode_sdstl(pei.encode_transfer(pdu)) == pdu


def test_text_messages_read_latin_1_with_or_without_a_timestamp() -> None:
    assert pei.encode_text("B 42 STRØM") == b"\x01B 42 STR\xd8M"
    assert pei.decode_text(b"\x01B 42 STR\xd8M") == "B 42 STRØM"
    assert pei.decode_text(b"\x81\x12\x34\x56B 42 OK") == "B 42 OK"  # timestamp used: three octets skipped
    assert pei.encode_text("OK ☺") == b"\x01OK ?"  # outside Latin 1
    for bad in (b"", b"\x00B 42 OK", b"\x1aB", b"\x81\x12"):  # empty, 7-bit or other schemes, short timestamp
        with pytest.raises(ProtocolError):
            pei.decode_text(bad)
