"""Pure builders and parsers for the TETRA PEI (ETSI EN 300 392-5) and SDS-TL (ETSI EN 300 392-2 §29).

Theory of operation. A SINE radio's Peripheral Equipment Interface is an AT command set (see
``hardware.at``). ``AT+CTSP=<profile>,<layer>,<pid>`` routes SDS of one protocol identifier to the PEI; a
radio that stayed powered answers ``+CME ERROR: 38`` (already registered) when it is asked again, and a
radio whose programming refuses a private PID may still accept the range selectors 24 (PIDs 0-127) and 25
(128-255). ``AT+CTSDS=<AI service>,<called type>`` selects what ``AT+CMGS`` sends next: service 12 is SDS
type 4 (here always carrying an SDS-TL PDU), 13 is a status message; the called party type is 0 for an
SSI (up to 8 digits) and 1 for a 17-digit TSI (MCC+MNC+SSI). ``AT+CMGS=<called>,<bits>`` followed by the
user data in hex and Ctrl-Z hands the SDS to the radio in *two stages*: the answer ``+CMGS: <instance>[,
<message ref>]`` only says the radio took it; the over-the-air result follows unsolicited as ``+CMGS:
<instance>,<sds status>[,<message ref>]`` (status 4 = sent, 5 = failed). Some radios answer with the
status at once (``+CMGS: <instance>,<status>,<ref>``). The message reference is the radio's own SDS-TL
reference when it gives one: reports coming back carry it. ``+CME ERROR: 42`` (signalling in progress),
36 and 37 (user data refused around a timed-out send) mean "busy, retry shortly". ``AT+CMGS=?`` gives the
maximum user-data length in bits as the upper bound of its last ``(min-max)`` range; not every terminal
implements it. ``AT+CREG?`` answers ``+CREG: <n>,<stat>`` (the GSM form) or ``+CREG: <stat>,<LA>,<MNI>``
(the TETRA form). Incoming SDS arrive as the two-line URC ``+CTSDSR: <AI service>,[<calling>,<calling
type>,]<called>,<called type>,<bits>[,<e2ee>]`` then hex data; the calling party is optional and the
identities may be 17-digit TSIs, of which the last 8 digits are the SSI.

SDS-TL (§29.4.2) is octet aligned: PID, then a 4-bit message type. SDS-TRANSFER (type 0) continues with
delivery-report request (2 bits: none, received, consumed, both), short-form-report (1), storage (1),
message reference (8), [storage fields], user data. SDS-REPORT (type 1) continues with ack-required (1),
reserved (2), storage (1), delivery status (8), message reference (8), [storage fields], optional user
data. Delivery status (table 29.16): 0x00-0x1F success (0x00 received, 0x02 consumed), 0x20-0x3F
temporary error (the network keeps trying), 0x40-0x5F failed for good (0x4B destination not registered,
0x4D too long, 0x5A destination not reachable), 0x60-0x7F flow control. Status SDS carry one 16-bit
value; 0x8000-0xFFFF are free for a network's user status plan.

Text messages typed on a terminal's keypad travel as SDS-TL under PID 0x82 (text messaging, §29.5.4):
the TRANSFER's user data starts with one octet, timestamp-used (1 bit) and text coding scheme (7 bits;
1 is ISO/IEC 8859-1 Latin 1, table 29.29), then a 24-bit timestamp when used, then the text.

Every parser raises ``ProtocolError`` for input it cannot read, and nothing else.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from hub.core.errors import ProtocolError

SDS_TYPE4 = 12
STATUS = 13
CALLED_SSI = 0
CALLED_TSI = 1
TSI_DIGITS = 17
SSI_DIGITS = 8
SENT = 4
FAILED = 5
ALREADY_REGISTERED = 38
BUSY_ERRORS = frozenset({36, 37, 42})
"""``+CME ERROR`` codes that mean "the radio is busy, send again shortly", not "the link is down"."""
PRIVATE_PIDS = range(0xC0, 0xFF)
USER_STATUS = range(0x8000, 0x10000)
SDSTL_HEADER = 3  # PID, message type + flags, message reference
TEXT_PID = 0x82
LATIN_1 = 0x01  # text coding scheme


class ReportRequest(enum.IntEnum):
    NONE = 0
    RECEIVED = 1
    CONSUMED = 2
    BOTH = 3


class DeliveryStatus(enum.IntEnum):
    """The delivery status codes Beredt acts on; any other byte is still classified by ``outcome``."""

    RECEIVED = 0x00
    RECEIPT_REPORT_ACK = 0x01
    CONSUMED = 0x02
    CONSUMED_REPORT_ACK = 0x03
    CONGESTION = 0x20
    STORED = 0x21
    NETWORK_OVERLOAD = 0x40
    SERVICE_UNAVAILABLE = 0x41
    DESTINATION_NOT_REGISTERED = 0x4B
    TOO_LONG = 0x4D
    DESTINATION_NOT_REACHABLE = 0x5A
    MEMORY_FULL = 0x60


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    TEMPORARY = "temporary"
    FAILED = "failed"
    FLOW_CONTROL = "flow-control"


def outcome(status: int) -> Outcome:
    """What a delivery status byte means for the sender."""
    match status >> 5:
        case 0:
            return Outcome.DELIVERED
        case 1:
            return Outcome.TEMPORARY
        case 2:
            return Outcome.FAILED
        case _:
            return Outcome.FLOW_CONTROL


def status_name(status: int) -> str:
    try:
        return DeliveryStatus(status).name.lower().replace("_", "-")
    except ValueError:
        return f"0x{status:02X}"


@dataclass(frozen=True, slots=True)
class Transfer:
    """SDS-TRANSFER: user data under a protocol id, with a message reference for reports."""

    pid: int
    ref: int
    data: bytes
    report: ReportRequest = ReportRequest.RECEIVED


@dataclass(frozen=True, slots=True)
class Report:
    """SDS-REPORT: the fate of the transfer with reference ``ref``."""

    pid: int
    ref: int
    status: int


SdsTl = Transfer | Report


@dataclass(frozen=True, slots=True)
class Indication:
    """One received SDS (the ``+CTSDSR`` URC and its data line)."""

    ai_service: int
    calling: str | None
    """None when the radio left out the optional calling-party fields."""
    called: str
    bits: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class CmgsLine:
    """One ``+CMGS`` line: the radio's instance number, the over-the-air status when known (``SENT`` or
    ``FAILED``; None while only accepted) and the radio's SDS-TL message reference when it gives one."""

    instance: int
    status: int | None
    ref: int | None


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{name} must fit a byte, got {value}")


# --- commands ----------------------------------------------------------------------------------------------


def ctsp_sdstl(pid: int) -> str:
    """Route SDS-TL of ``pid`` to the PEI (profile 1 = terminal equipment, layer 3 = SDS-TL)."""
    _check_byte("pid", pid)
    return f"AT+CTSP=1,3,{pid}"


CTSP_STATUS = "AT+CTSP=1,2,20"
CNUMF_QUERY = "AT+CNUMF?"
CMGS_TEST = "AT+CMGS=?"
CREG_QUERY = "AT+CREG?"


def ctsp_range(pid: int) -> str:
    """Route the whole PID range holding ``pid`` to the PEI: selector 24 is PIDs 0-127, 25 is 128-255."""
    _check_byte("pid", pid)
    return f"AT+CTSP=1,3,{25 if pid >= 0x80 else 24}"


def called_type(identity: str) -> int:
    """The called party type for ``identity``: an SSI of up to 8 digits or a 17-digit TSI."""
    if identity.isdigit() and len(identity) <= SSI_DIGITS:
        return CALLED_SSI
    if identity.isdigit() and len(identity) == TSI_DIGITS:
        return CALLED_TSI
    raise ValueError(f"not an SSI (1-8 digits) or TSI (17 digits): {identity!r}")


def ctsds(ai_service: int, called: int = CALLED_SSI) -> str:
    if ai_service not in (SDS_TYPE4, STATUS):
        raise ValueError(f"unsupported AI service {ai_service}")
    if called not in (CALLED_SSI, CALLED_TSI):
        raise ValueError(f"unsupported called party type {called}")
    return f"AT+CTSDS={ai_service},{called}"


def cmgs(called: str, bits: int) -> str:
    if not 1 <= bits <= 2047:
        raise ValueError(f"SDS length {bits} bits outside 1..2047")
    called_type(called)
    return f"AT+CMGS={called},{bits}"


def status_hex(value: int) -> str:
    if value not in USER_STATUS:
        raise ValueError(f"status value 0x{value:X} is outside the user plan range 0x8000-0xFFFF")
    return f"{value:04X}"


# --- SDS-TL PDUs -------------------------------------------------------------------------------------------


def encode_transfer(pdu: Transfer) -> bytes:
    _check_byte("pid", pdu.pid)
    _check_byte("ref", pdu.ref)
    return bytes([pdu.pid, pdu.report << 2, pdu.ref]) + pdu.data


def encode_report(pdu: Report) -> bytes:
    for name, value in (("pid", pdu.pid), ("ref", pdu.ref), ("status", pdu.status)):
        _check_byte(name, value)
    return bytes([pdu.pid, 0x10, pdu.status, pdu.ref])


def _storage_fields(data: bytes, at: int) -> int:
    """Skip the validity period and forward address a stored (store-and-forward) PDU carries."""
    if len(data) <= at:
        raise ProtocolError("SDS-TL storage fields truncated")
    match data[at] & 0x07:  # 5 bits validity period, 3 bits forward address type
        case 0b111:
            return at + 1
        case 0b000:
            size = 2
        case 0b001 | 0b010:
            size = 4
        case kind:
            raise ProtocolError(f"unsupported SDS-TL forward address type {kind}")
    if len(data) < at + size:
        raise ProtocolError("SDS-TL forward address truncated")
    return at + size


def decode_sdstl(data: bytes) -> SdsTl:
    """An SDS-TL TRANSFER or REPORT; ``ProtocolError`` for anything else or truncated input."""
    if len(data) < 3:
        raise ProtocolError(f"SDS-TL PDU of {len(data)} bytes is too short")
    pid, flags = data[0], data[1]
    match flags >> 4:
        case 0:
            report = ReportRequest((flags >> 2) & 0x03)
            at = 3 if not flags & 0x01 else _storage_fields(data, 3)
            return Transfer(pid, data[2], data[at:], report)
        case 1:
            if len(data) < 4:
                raise ProtocolError("SDS-TL REPORT truncated")
            return Report(pid, data[3], data[2])
        case other:
            raise ProtocolError(f"unsupported SDS-TL message type {other}")


def encode_text(text: str) -> bytes:
    """A text message's user data: no timestamp, Latin 1 (a character outside it becomes ``?``)."""
    return bytes([LATIN_1]) + text.encode("latin-1", errors="replace")


def decode_text(data: bytes) -> str:
    """The text of a text message's user data; ``ProtocolError`` for a coding scheme other than Latin 1."""
    if not data:
        raise ProtocolError("text SDS without its coding scheme")
    start = 4 if data[0] & 0x80 else 1  # after the timestamp, when one is used
    if data[0] & 0x7F != LATIN_1:
        raise ProtocolError(f"text coding scheme {data[0] & 0x7F} not supported (Latin 1 only)")
    if len(data) < start:
        raise ProtocolError("text SDS timestamp truncated")
    return data[start:].decode("latin-1")


# --- responses and URCs ------------------------------------------------------------------------------------

_RANGE = re.compile(r"\((\d+)-(\d+)\)")


def _fields(line: str, prefix: str) -> list[str]:
    if not line.startswith(prefix):
        raise ProtocolError(f"expected {prefix!r}, got {line[:60]!r}")
    return [part.strip().strip('"') for part in line[len(prefix) :].split(",")]


def _int(text: str, what: str) -> int:
    if not text.isdigit():
        raise ProtocolError(f"{what} is not a number: {text[:30]!r}")
    return int(text)


def parse_cmgs_test(info: tuple[str, ...]) -> int:
    """The maximum SDS user-data length in bits from the answer to ``AT+CMGS=?``."""
    for line in info:
        if line.startswith("+CMGS:"):
            ranges = _RANGE.findall(line)
            if ranges:
                return int(ranges[-1][1])
    raise ProtocolError(f"no length range in the AT+CMGS=? answer {info!r}")


def parse_cnumf(info: tuple[str, ...]) -> str:
    """Our own ISSI from ``+CNUMF: <type>,<TSI or ISSI>[,...]`` (a TSI is cut to its 8-digit SSI)."""
    for line in info:
        if line.startswith("+CNUMF:"):
            fields = _fields(line, "+CNUMF:")
            if len(fields) >= 2 and fields[1].isdigit():
                return ssi_of(fields[1])
    raise ProtocolError(f"no own identity in the AT+CNUMF? answer {info!r}")


def ssi_of(identity: str) -> str:
    """The ISSI of a decimal ISSI or 17-digit TSI, without leading zeros."""
    if not identity.isdigit() or len(identity) > 17:
        raise ProtocolError(f"not a TETRA identity: {identity[:30]!r}")
    return str(int(identity[-8:]))


def parse_creg(info: tuple[str, ...]) -> bool:
    """Whether the radio is registered (stat 1 home, 5 roaming). The fields tell the form apart: ``<stat>``,
    ``<n>,<stat>`` (GSM), ``<stat>,<LA>,<MNI>`` (TETRA) or ``<n>,<stat>,<LA>,<MNI>``."""
    for line in info:
        if line.startswith("+CREG:"):
            fields = _fields(line, "+CREG:")
            stat = fields[0] if len(fields) in (1, 3) else fields[1]
            return _int(stat, "+CREG status") in (1, 5)
    raise ProtocolError(f"no +CREG line in {info!r}")


def _cmgs_numbers(line: str) -> list[int | None]:
    fields = _fields(line, "+CMGS:")
    if len(fields) > 3 or not fields[0]:
        raise ProtocolError(f"malformed +CMGS: {line[:60]!r}")
    return [_int(f, "+CMGS field") if f else None for f in fields]


def parse_cmgs_answer(line: str) -> CmgsLine:
    """The solicited answer to ``AT+CMGS``: ``<instance>``, ``<instance>,<ref>`` or, from radios that
    report at once, ``<instance>,<status>,<ref>``."""
    numbers = _cmgs_numbers(line)
    instance = numbers[0]
    assert instance is not None
    match numbers:
        case [_]:
            return CmgsLine(instance, None, None)
        case [_, ref]:
            return CmgsLine(instance, None, ref)
        case [_, status, ref]:
            return CmgsLine(instance, status, ref)
    raise ProtocolError(f"malformed +CMGS: {line[:60]!r}")


def parse_cmgs_result(line: str) -> CmgsLine:
    """The unsolicited over-the-air result ``+CMGS: <instance>,<status>[,<ref>]``."""
    numbers = _cmgs_numbers(line)
    if len(numbers) < 2 or numbers[1] is None:
        raise ProtocolError(f"+CMGS result without a status: {line[:60]!r}")
    instance = numbers[0]
    assert instance is not None
    return CmgsLine(instance, numbers[1], numbers[2] if len(numbers) == 3 else None)


def parse_ctsdsr(line: str, data: str | None) -> Indication:
    """A received SDS from the ``+CTSDSR`` URC. The field count tells whether the optional calling party is
    there: 4 or 5 fields (``[,<e2ee>]``) without it, 6 or more with it; fields after the sixth are ignored.
    When the hex is shorter or longer than the declared bits, the hex as received is what counts."""
    fields = _fields(line, "+CTSDSR:")
    if len(fields) in (4, 5):
        ai_service, called, _, bits = fields[:4]
        calling = ""
    elif len(fields) >= 6:
        ai_service, calling, _, called, _, bits = fields[:6]
    else:
        raise ProtocolError(f"malformed +CTSDSR: {line[:80]!r}")
    if not all(f.isdigit() for f in (ai_service, called, bits)) or not (calling == "" or calling.isdigit()):
        raise ProtocolError(f"malformed +CTSDSR: {line[:80]!r}")
    text = (data or "").strip()
    if len(text) % 2:
        text = text[:-1]  # a half byte cannot be sent as SDS-TL; radios pad odd bit counts
    try:
        payload = bytes.fromhex(text)
    except ValueError as exc:
        raise ProtocolError(f"+CTSDSR data is not hex: {text[:40]!r}") from exc
    source = ssi_of(calling) if calling else None
    return Indication(_int(ai_service, "AI service"), source, ssi_of(called), int(bits), payload)


def parse_status(indication: Indication) -> int:
    """The 16-bit value of a status SDS indication."""
    if len(indication.payload) < 2:
        raise ProtocolError(f"status SDS of {len(indication.payload)} bytes")
    return int.from_bytes(indication.payload[:2], "big")
