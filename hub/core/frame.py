"""The one binary frame every Beredt transport carries (sans-IO: bytes in, frames out).

Theory of operation. A frame is a fixed 30-byte header, a varint payload length, the payload and a
64-byte Ed25519 signature. Only the hop counter (byte 1) sits outside the signature, so relays can
count hops and still forward the original signed bytes unchanged. The message id is the first 16
bytes of SHA-256 over the signed bytes, so it cannot be chosen by anyone but the signer.

    offset size field
    0      1    version (1); also the envelope type: fragments start with 2 (see hub/core/fragment.py), and
                0 is reserved for link-level status data that is not a frame (a SINE status SDS)
    1      1    hops travelled (mutable, not signed)
    2      1    flags: bits 0-1 priority, 2-3 status, 4 sealed payload, 5-7 zero
    3      1    kind (a Kind value)
    4      8    sender node id
    12     8    recipient node or group id (BROADCAST = all ones)
    20     4    created, Unix seconds, big-endian
    24     2    time to live in minutes (expiry = created + ttl)
    26     4    nonce (random; makes otherwise equal messages distinct)
    30     1-2  payload length, unsigned LEB128 varint (at most MAX_PAYLOAD)
    ..     n    payload
    ..     64   Ed25519 signature over byte 0 and bytes 2..end of payload

Header plus signature is 95 bytes for payloads under 128 bytes and 96 above: within the 96-byte budget.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass, field

from hub.core.errors import ProtocolError

VERSION = 1
HEADER_SIZE = 30
SIGNATURE_SIZE = 64
ID_SIZE = 16
NODE_ID_SIZE = 8
MAX_PAYLOAD = 4096
MAX_FRAME = HEADER_SIZE + 2 + MAX_PAYLOAD + SIGNATURE_SIZE
MAX_TTL_MINUTES = 0xFFFF
BROADCAST = b"\xff" * NODE_ID_SIZE

_HEADER = struct.Struct(">BBBB8s8sIHI")
assert _HEADER.size == HEADER_SIZE


class Priority(enum.IntEnum):
    """Queue order and link policy; higher goes first and may use costly links."""

    ROUTINE = 0
    NORMAL = 1
    URGENT = 2
    LIFE_SAFETY = 3


class Status(enum.IntEnum):
    """CAP-style status: exercises and tests must never be mistaken for the real thing."""

    ACTUAL = 0
    EXERCISE = 1
    TEST = 2


class Kind(enum.IntEnum):
    """What the payload is. Transports never look at this; the hub and the edges do."""

    TEXT = 1
    SITREP = 2
    STATUS = 3
    ROLLCALL = 4
    ALERT = 5
    ACK = 6
    ROSTER = 7
    HOP_ACK = 8
    RESOURCE_REQUEST = 9
    COMMITMENT = 10
    READ_RECEIPT = 11
    EXERCISE_CONTROL = 12
    """A coordinator starts, pauses, resumes or ends an exercise, or simulates a link outage in it."""
    FOLLOWUP_LIST = 13
    VISIT = 14
    CITIZEN_ALARM = 15
    LOGBOOK_HEAD = 16
    """The newest entry of the sender's log book (seq and hash), for a witness to keep (docs/security.md)."""
    EXERCISE_SUMMARY = 17
    """A participating hub tells the coordinator's hub its own link changes and link use in an exercise."""
    ROUTE = 20
    """What a hub can reach, told to its direct neighbours only (``hub.core.kinds.routes``)."""


_SEALED_FLAG = 0x10
_RESERVED_FLAGS = 0xE0


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128."""
    if value < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(
    data: bytes | bytearray | memoryview, offset: int, max_bytes: int = 3
) -> tuple[int, int] | None:
    """Decode a varint at ``offset``; return (value, next offset), or None if more bytes are needed."""
    value = 0
    for i in range(max_bytes):
        if offset + i >= len(data):
            return None
        byte = data[offset + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if i > 0 and byte == 0:
                raise ProtocolError("non-minimal varint")
            return value, offset + i + 1
    raise ProtocolError("varint too long")


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded (or freshly signed) frame. Build new ones with ``hub.core.identity.Identity.sign``."""

    kind: Kind
    sender: bytes
    recipient: bytes
    created: int
    ttl_minutes: int
    nonce: int
    payload: bytes
    signature: bytes
    priority: Priority = Priority.NORMAL
    status: Status = Status.ACTUAL
    sealed: bool = False
    hops: int = 0
    _signed: bytes | None = field(default=None, init=False, repr=False, compare=False)
    """``signed_bytes``, kept once computed (or once decoded): a relay reads them several times per frame."""
    _id: bytes | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def expires(self) -> int:
        return self.created + self.ttl_minutes * 60

    @property
    def signed_bytes(self) -> bytes:
        signed = self._signed
        if signed is None:
            signed = signed_part(
                kind=self.kind,
                sender=self.sender,
                recipient=self.recipient,
                created=self.created,
                ttl_minutes=self.ttl_minutes,
                nonce=self.nonce,
                payload=self.payload,
                priority=self.priority,
                status=self.status,
                sealed=self.sealed,
            )
            object.__setattr__(self, "_signed", signed)  # a cache: the frame's fields never change
        return signed

    @property
    def id(self) -> bytes:
        found = self._id
        if found is None:
            found = message_id(self.signed_bytes)
            object.__setattr__(self, "_id", found)
        return found

    def encode(self) -> bytes:
        signed = self.signed_bytes
        return signed[:1] + bytes([self.hops]) + signed[1:] + self.signature

    def with_hops(self, hops: int) -> Frame:
        if not 0 <= hops <= 255:
            raise ValueError("hops out of range")
        moved = Frame(
            self.kind,
            self.sender,
            self.recipient,
            self.created,
            self.ttl_minutes,
            self.nonce,
            self.payload,
            self.signature,
            self.priority,
            self.status,
            self.sealed,
            hops,
        )
        object.__setattr__(moved, "_signed", self._signed)  # the hop counter is outside the signature
        object.__setattr__(moved, "_id", self._id)
        return moved


def message_id(signed: bytes) -> bytes:
    return hashlib.sha256(signed).digest()[:ID_SIZE]


def wire_id(wire: bytes) -> bytes:
    """The message id of an encoded frame, without decoding it: every byte but the hop counter and the
    signature is hashed, so a stored copy whose bytes changed no longer matches its id."""
    return message_id(wire[:1] + wire[2:-SIGNATURE_SIZE])


def signed_part(
    *,
    kind: Kind,
    sender: bytes,
    recipient: bytes,
    created: int,
    ttl_minutes: int,
    nonce: int,
    payload: bytes,
    priority: Priority,
    status: Status,
    sealed: bool,
) -> bytes:
    """The bytes the sender signs: the whole frame less the hop counter and the signature."""
    if len(sender) != NODE_ID_SIZE or len(recipient) != NODE_ID_SIZE:
        raise ValueError("node ids are 8 bytes")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    if not 0 < ttl_minutes <= MAX_TTL_MINUTES:
        raise ValueError("ttl_minutes must be 1..65535")
    flags = int(priority) | (int(status) << 2) | (_SEALED_FLAG if sealed else 0)
    header = _HEADER.pack(VERSION, 0, flags, int(kind), sender, recipient, created, ttl_minutes, nonce)
    return header[:1] + header[2:] + encode_varint(len(payload)) + payload


def frame_length(data: bytes | bytearray | memoryview) -> int | None:
    """Total length of the frame at the start of ``data``, or None if the header is incomplete."""
    if len(data) < 1:
        return None
    if data[0] != VERSION:
        raise ProtocolError(f"unknown frame version {data[0]}")
    if len(data) < HEADER_SIZE + 1:
        return None
    decoded = decode_varint(data, HEADER_SIZE)
    if decoded is None:
        return None
    length, payload_at = decoded
    if length > MAX_PAYLOAD:
        raise ProtocolError(f"payload length {length} exceeds {MAX_PAYLOAD}")
    return payload_at + length + SIGNATURE_SIZE


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame; trailing bytes are an error (use FrameDecoder for streams)."""
    total = frame_length(data)
    if total is None:
        raise ProtocolError(f"truncated frame ({len(data)} bytes)")
    if len(data) != total:
        raise ProtocolError(f"frame length {len(data)} does not match declared {total}")
    return _parse(bytes(data), total)


def _parse(data: bytes, total: int) -> Frame:
    _, hops, flags, kind, sender, recipient, created, ttl, nonce = _HEADER.unpack_from(data)
    if flags & _RESERVED_FLAGS:
        raise ProtocolError(f"reserved flag bits set: {flags:#04x}")
    try:
        kind_value = Kind(kind)
        status = Status((flags >> 2) & 0x03)
    except ValueError as exc:
        raise ProtocolError(str(exc)) from exc
    if ttl == 0:
        raise ProtocolError("ttl of zero")
    decoded = decode_varint(data, HEADER_SIZE)
    assert decoded is not None  # frame_length already checked
    length, payload_at = decoded
    frame = Frame(
        kind=kind_value,
        sender=sender,
        recipient=recipient,
        created=created,
        ttl_minutes=ttl,
        nonce=nonce,
        payload=data[payload_at : payload_at + length],
        signature=data[payload_at + length : total],
        priority=Priority(flags & 0x03),
        status=status,
        sealed=bool(flags & _SEALED_FLAG),
        hops=hops,
    )
    # The signed bytes are the frame less its hop counter and signature; decoding accepts only the minimal
    # length varint, so they are exactly what ``signed_part`` would build from the fields.
    object.__setattr__(frame, "_signed", data[:1] + data[2 : payload_at + length])
    return frame


class FrameDecoder:
    """Incremental decoder for a byte stream of concatenated frames (h11-style: feed, then pull)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> Frame | None:
        """Return the next complete frame, None if more bytes are needed; ProtocolError if garbage."""
        total = frame_length(self._buffer)
        if total is None or len(self._buffer) < total:
            return None
        raw = bytes(self._buffer[:total])
        del self._buffer[:total]
        return _parse(raw, total)

    @property
    def pending(self) -> int:
        return len(self._buffer)
