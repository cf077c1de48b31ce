"""Iridium Short Burst Data over AT commands, as pure builders and parsers (sans-IO).

Theory of operation (Iridium "ISU AT Command Reference", sections on the SBD command set, as used by the
9602/9603 transceivers and the RockBLOCK 9603). The host writes one mobile-originated (MO) message of 1-340
bytes into the modem's MO buffer with ``AT+SBDWB=<n>``: the modem answers ``READY``, the host sends the n
bytes followed by a 2-byte checksum (the low 16 bits of the byte sum, big-endian) and the modem answers a
one-digit write result (0 ok, 1 timeout, 2 bad checksum, 3 bad size) and ``OK``. ``AT+SBDIX`` (or
``AT+SBDIXA`` when answering a ring alert) then runs one satellite session that sends the MO buffer and
fetches at most one mobile-terminated (MT) message; its answer ``+SBDIX: <MO status>, <MOMSN>, <MT
status>, <MTMSN>, <MT length>, <MT queued>`` says what happened. ``AT+SBDRB`` returns the MT buffer in
binary: a 2-byte big-endian length, the message (at most 270 bytes) and the same checksum, read by length
and never by line. ``SBDRING`` arrives unsolicited when the gateway holds MT traffic and ring alerts are on
(``AT+SBDMTA=1``, registration ``AT+SBDAREG=1``); ``AT+SBDSX`` tells whether a ring alert is still
unanswered, so a ring already served by another session costs no second one. ``AT-MSSTM`` reports
network time as a hex count of 90 ms frames since the current Iridium era's epoch, or ``no network
service``. The count has 32 bits (12.2 years), and Iridium moves the epoch before it runs out ("re-epoch"):
ERA2 began 2014-05-11T14:23:55Z, ERA3 2025-02-14T18:14:17Z (broadcast from 2026, before ERA2's count ran
out on 2026-08-10). The epoch is not broadcast, so ``msstm_time`` reads a count against every known era
and keeps the earliest reading that is not before a floor (the build date): an ERA3 count read against
ERA2 lands before 2017, an ERA2 count read against ERA3 lands after 2035.

Nothing here reads a port or a clock; every parser either returns a value or raises ``ProtocolError``.
The provider's billing rule (credits per started 50 bytes, one per message at least) and the ``RB`` +
7-digit serial prefix that makes the provider forward an MO message to another modem live here too,
because the simulator, the driver and the transport must agree on them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from hub.core.errors import ProtocolError

MO_MAX = 340
MT_MAX = 270
CREDIT_BYTES = 50
IRIDIUM_EPOCH = 1_399_818_235  # 2014-05-11T14:23:55Z, ERA2
ERA3_EPOCH = 1_739_556_857  # 2025-02-14T18:14:17Z
IRIDIUM_ERAS = (IRIDIUM_EPOCH, ERA3_EPOCH)
TICK_SECONDS = 0.09
RB_PREFIX_SIZE = 9  # b"RB" + 7 decimal digits


def checksum(data: bytes) -> bytes:
    """The SBD checksum: the low 16 bits of the byte sum, big-endian."""
    return (sum(data) & 0xFFFF).to_bytes(2, "big")


def credits_for(size: int) -> int:
    """Credits one message of ``size`` bytes costs: one per started 50 bytes, and an empty one costs one."""
    return max(1, -(-size // CREDIT_BYTES))


# -- writing the MO buffer -------------------------------------------------------------------------


def sbdwb_command(size: int) -> bytes:
    """``AT+SBDWB=<size>``; the modem answers ``READY`` and then expects ``sbdwb_payload(data)``."""
    if not 1 <= size <= MO_MAX:
        raise ProtocolError(f"an MO message is 1-{MO_MAX} bytes, not {size}")
    return b"AT+SBDWB=%d\r" % size


def sbdwb_payload(data: bytes) -> bytes:
    """The bytes sent after ``READY``: the message and its checksum."""
    if not 1 <= len(data) <= MO_MAX:
        raise ProtocolError(f"an MO message is 1-{MO_MAX} bytes, not {len(data)}")
    return data + checksum(data)


class WriteResult(enum.IntEnum):
    """The digit ``AT+SBDWB`` answers after the payload."""

    OK = 0
    TIMEOUT = 1  # fewer bytes than announced arrived within 60 s
    BAD_CHECKSUM = 2
    BAD_SIZE = 3  # announced size outside 1-340


def parse_write_result(line: str) -> WriteResult:
    text = line.strip()
    if len(text) != 1 or text not in "0123":
        raise ProtocolError(f"not an SBDWB write result: {line!r}")
    return WriteResult(int(text))


# -- the session ----------------------------------------------------------------------------------


class RetryClass(enum.Enum):
    """What a failed MO status means for the next attempt."""

    NONE = "none"  # the session succeeded
    SOON = "soon"  # a transient radio failure: retry after seconds, with back-off
    LATER = "later"  # no service, registration hold-off or traffic management: retry after minutes
    FAULT = "fault"  # the modem or the account needs a person (antenna, radio disabled, access denied)
    NEVER = "never"  # this message can never go as it is (size or segmentation rejected)


_MO_STATUS: dict[int, tuple[str, RetryClass]] = {
    0: ("MO transferred", RetryClass.NONE),
    1: ("MO transferred, MT message too big for the MT buffer", RetryClass.NONE),
    2: ("MO transferred, location update not accepted", RetryClass.NONE),
    10: ("call did not complete in the allowed time", RetryClass.SOON),
    11: ("MO queue at the gateway is full", RetryClass.LATER),
    12: ("MO message has too many segments", RetryClass.NEVER),
    13: ("session did not complete", RetryClass.SOON),
    14: ("invalid segment size", RetryClass.NEVER),
    15: ("access is denied", RetryClass.FAULT),
    16: ("modem is locked and may not make SBD calls", RetryClass.FAULT),
    17: ("gateway not responding (local session timeout)", RetryClass.SOON),
    18: ("connection lost (RF drop)", RetryClass.SOON),
    19: ("link failure (protocol error)", RetryClass.SOON),
    32: ("no network service", RetryClass.LATER),
    33: ("antenna fault", RetryClass.FAULT),
    34: ("radio is disabled", RetryClass.FAULT),
    35: ("modem is busy", RetryClass.SOON),
    36: ("must wait 3 minutes since the last registration", RetryClass.LATER),
    37: ("SBD service is temporarily disabled", RetryClass.LATER),
    38: ("traffic management period", RetryClass.LATER),
    64: ("band violation", RetryClass.FAULT),
    65: ("PLL lock failure", RetryClass.FAULT),
}


def mo_status_meaning(code: int) -> tuple[str, RetryClass]:
    """A description of an MO status and how to retry it; reserved codes 3-4 succeed, others fail."""
    known = _MO_STATUS.get(code)
    if known is not None:
        return known
    if 3 <= code <= 4:
        return (f"reserved success code {code}", RetryClass.NONE)
    return (f"reserved failure code {code}", RetryClass.SOON)


class MtStatus(enum.IntEnum):
    NONE = 0  # no MT message waiting
    RECEIVED = 1  # an MT message is now in the MT buffer: read it with AT+SBDRB
    ERROR = 2  # the mailbox check failed


@dataclass(frozen=True, slots=True)
class SessionResult:
    """One ``+SBDIX`` / ``+SBDIXA`` answer."""

    mo_status: int
    momsn: int
    mt_status: MtStatus
    mtmsn: int
    mt_length: int
    mt_queued: int

    @property
    def mo_ok(self) -> bool:
        return self.retry_class is RetryClass.NONE

    @property
    def retry_class(self) -> RetryClass:
        return mo_status_meaning(self.mo_status)[1]

    @property
    def meaning(self) -> str:
        return mo_status_meaning(self.mo_status)[0]


_SBDIX = re.compile(r"\+SBDIX:\s*(\d{1,3}),\s*(\d{1,5}),\s*(\d),\s*(\d{1,5}),\s*(\d{1,3}),\s*(\d{1,5})")


def sbdix_command(answer_ring: bool = False) -> bytes:
    return b"AT+SBDIXA\r" if answer_ring else b"AT+SBDIX\r"


def parse_sbdix(line: str) -> SessionResult:
    match = _SBDIX.fullmatch(line.strip())
    if match is None:
        raise ProtocolError(f"not an SBDIX result: {line!r}")
    mo, momsn, mt, mtmsn, length, queued = (int(group) for group in match.groups())
    if mt > 2 or length > MT_MAX or momsn > 0xFFFF or mtmsn > 0xFFFF:
        raise ProtocolError(f"SBDIX field out of range: {line!r}")
    return SessionResult(mo, momsn, MtStatus(mt), mtmsn, length, queued)


@dataclass(frozen=True, slots=True)
class SbdStatus:
    """The ``+SBDSX`` answer: buffer flags, sequence numbers, whether a ring alert still needs answering
    and how many MT messages the gateway held at the last session."""

    mo_flag: bool
    momsn: int
    mt_flag: bool
    mtmsn: int
    ring_alert: bool
    waiting: int


_SBDSX = re.compile(r"\+SBDSX:\s*([01]),\s*(\d{1,5}),\s*([01]),\s*(-?\d{1,5}),\s*([01]),\s*(\d{1,5})")


def parse_sbdsx(line: str) -> SbdStatus:
    match = _SBDSX.fullmatch(line.strip())
    if match is None:
        raise ProtocolError(f"not an SBDSX answer: {line!r}")
    mo_flag, momsn, mt_flag, mtmsn, ring, waiting = match.groups()
    if int(momsn) > 0xFFFF or int(mtmsn) > 0xFFFF:
        raise ProtocolError(f"SBDSX sequence number out of range: {line!r}")
    return SbdStatus(mo_flag == "1", int(momsn), mt_flag == "1", int(mtmsn), ring == "1", int(waiting))


# -- reading the MT buffer ------------------------------------------------------------------------


def parse_sbdrb(buffer: bytes) -> tuple[bytes, int] | None:
    """The MT message at the start of ``buffer`` and the bytes it used, or None while incomplete.

    Raises ``ProtocolError`` for a length above 270 (so a reader never waits for bytes that will not
    come) and for a checksum that does not match. Bytes after the message (the final ``OK``) are left.
    """
    if len(buffer) < 2:
        return None
    size = int.from_bytes(buffer[:2], "big")
    if size > MT_MAX:
        raise ProtocolError(f"SBDRB length {size} exceeds the {MT_MAX}-byte MT maximum")
    end = 2 + size + 2
    if len(buffer) < end:
        return None
    message = bytes(buffer[2 : 2 + size])
    if buffer[2 + size : end] != checksum(message):
        raise ProtocolError(
            f"SBDRB checksum mismatch: got {bytes(buffer[2 + size : end]).hex()}, "
            f"computed {checksum(message).hex()}"
        )
    return message, end


# -- buffers, ring alerts, signal, time, identity -------------------------------------------------


class ClearBuffer(enum.IntEnum):
    MO = 0
    MT = 1
    BOTH = 2


def sbdd_command(which: ClearBuffer) -> bytes:
    return b"AT+SBDD%d\r" % which


def parse_sbdd_result(line: str) -> bool:
    """True when ``AT+SBDD<n>`` cleared the buffer(s) (``0``), False on ``1`` (an error)."""
    text = line.strip()
    if text not in ("0", "1"):
        raise ProtocolError(f"not an SBDD result: {line!r}")
    return text == "0"


def sbdmta_command(enabled: bool) -> bytes:
    """Ring-alert indication on (``SBDRING`` URCs) or off."""
    return b"AT+SBDMTA=%d\r" % int(enabled)


def sbdareg_command(mode: int) -> bytes:
    """Automatic registration: 0 off, 1 automatic, 2 ask; ring alerts need the gateway to know us."""
    if mode not in (0, 1, 2):
        raise ProtocolError(f"SBDAREG mode is 0, 1 or 2, not {mode}")
    return b"AT+SBDAREG=%d\r" % mode


def is_ring(line: str) -> bool:
    """Whether ``line`` is the unsolicited ring alert."""
    return line.strip() == "SBDRING"


@dataclass(frozen=True, slots=True)
class Registration:
    """The ``+AREG: <event>,<error>`` URC of automatic registration."""

    event: int  # 0 suggest, 1 detach, 2 registered, 3 failed, ...
    error: int


_AREG = re.compile(r"\+AREG:\s*(\d{1,2}),\s*(\d{1,3})")


def parse_areg(line: str) -> Registration:
    match = _AREG.fullmatch(line.strip())
    if match is None:
        raise ProtocolError(f"not an AREG URC: {line!r}")
    return Registration(int(match.group(1)), int(match.group(2)))


_CSQ = re.compile(r"\+CSQF?:\s*([0-5])")


def parse_csq(line: str) -> int:
    """Signal bars 0-5 from ``+CSQ:<n>`` (a fresh reading, slow) or ``+CSQF:<n>`` (the last one, fast)."""
    match = _CSQ.fullmatch(line.strip())
    if match is None:
        raise ProtocolError(f"not a CSQ answer: {line!r}")
    return int(match.group(1))


_MSSTM = re.compile(r"-MSSTM:\s*([0-9A-Fa-f]{1,8})")


def parse_msstm_frames(line: str) -> int | None:
    """The frame count of ``-MSSTM: <hex>``, or None for ``-MSSTM: no network service``."""
    text = line.strip()
    if re.fullmatch(r"-MSSTM:\s*no network service", text):
        return None
    match = _MSSTM.fullmatch(text)
    if match is None:
        raise ProtocolError(f"not an MSSTM answer: {line!r}")
    return int(match.group(1), 16)


def msstm_time(frames: int, *, epochs: tuple[float, ...] = IRIDIUM_ERAS, not_before: float) -> float:
    """Unix time of a frame count: the earliest reading against ``epochs`` that is not before
    ``not_before``; the latest epoch's reading when none is (a clock that old cannot be told apart)."""
    readings = sorted(epoch + frames * TICK_SECONDS for epoch in epochs)
    return next((reading for reading in readings if reading >= not_before), readings[-1])


_SBDTC = re.compile(r"SBDTC: Outbound SBD Copied to Inbound SBD: size = (\d{1,3})")


def parse_sbdtc(line: str) -> int:
    """The size ``AT+SBDTC`` (MO buffer copied to the MT buffer) reports."""
    match = _SBDTC.fullmatch(line.strip())
    if match is None:
        raise ProtocolError(f"not an SBDTC answer: {line!r}")
    return int(match.group(1))


def parse_imei(line: str) -> str:
    """The 15-digit IMEI ``AT+CGSN`` answers."""
    text = line.strip()
    if not re.fullmatch(r"\d{15}", text):
        raise ProtocolError(f"not an IMEI: {line!r}")
    return text


# -- provider addressing --------------------------------------------------------------------------


def rb_prefix(serial: int) -> bytes:
    """``RB`` + the 7-digit serial: a payload starting so is forwarded by the provider to that modem."""
    if not 0 <= serial <= 9_999_999:
        raise ProtocolError(f"a RockBLOCK serial has 7 digits, not {serial}")
    return b"RB%07d" % serial


def parse_rb_address(text: str) -> int:
    """The serial in an address like ``RB0012345`` (the form used in Beredt's peer tables)."""
    match = re.fullmatch(r"RB(\d{7})", text.strip())
    if match is None:
        raise ProtocolError(f"not a modem address of the form RB0012345: {text!r}")
    return int(match.group(1))


def split_rb_prefix(data: bytes) -> tuple[int, bytes] | None:
    """The serial and the rest of a payload that starts with ``RB`` + 7 digits, else None."""
    head = data[:RB_PREFIX_SIZE]
    if len(head) == RB_PREFIX_SIZE and head[:2] == b"RB" and head[2:].isdigit():
        return int(head[2:]), bytes(data[RB_PREFIX_SIZE:])
    return None
