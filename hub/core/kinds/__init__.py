"""Payload codecs per message kind: JSON-shaped bodies from the API <-> compact bytes inside a frame.

``encode_payload`` takes what a client posted (a string for TEXT, an object for the structured kinds,
a list of hex ids for ACK and HOP_ACK) and returns the payload bytes; a bad body raises ``ValueError``
whose message names the bad field. ``decode_payload`` turns payload bytes back into a JSON-serialisable
value and raises ``hub.core.errors.ProtocolError`` for bytes that do not decode. TEXT is plain UTF-8; ACK and
HOP_ACK are concatenated 16-byte message ids (the core's format); ROSTER and ROUTE payloads belong to
their own modules and decode here only to hex; every other kind is a CBOR map described in
``hub.core.kinds.catalog``.
Both functions are pure: no clock, no I/O.
"""

from __future__ import annotations

from hub.core.errors import ProtocolError
from hub.core.frame import ID_SIZE, MAX_PAYLOAD, Kind
from hub.core.kinds import catalog, followup
from hub.core.kinds.citizen_alarm import CITIZEN_ALARM
from hub.core.kinds.fields import Schema

__all__ = ["NO_PERSONAL_DATA", "SCHEMAS", "decode_payload", "encode_payload", "sealed_by_default"]

SCHEMAS: dict[Kind, Schema] = {
    Kind.SITREP: catalog.SITREP,
    Kind.STATUS: catalog.STATUS,
    Kind.ROLLCALL: catalog.ROLLCALL,
    Kind.ALERT: catalog.ALERT,
    Kind.RESOURCE_REQUEST: catalog.RESOURCE_REQUEST,
    Kind.COMMITMENT: catalog.COMMITMENT,
    Kind.READ_RECEIPT: catalog.READ_RECEIPT,
    Kind.EXERCISE_CONTROL: catalog.EXERCISE_CONTROL,
    Kind.FOLLOWUP_LIST: followup.FOLLOWUP_LIST,
    Kind.VISIT: followup.VISIT,
    Kind.CITIZEN_ALARM: CITIZEN_ALARM,
    Kind.LOGBOOK_HEAD: catalog.LOGBOOK_HEAD,
    Kind.EXERCISE_SUMMARY: catalog.EXERCISE_SUMMARY,
}

_ID_LIST_KINDS = (Kind.ACK, Kind.HOP_ACK)

# The kinds that cannot carry personal data: message ids and public cards, made by the hubs themselves.
# Every other kind, including any added later, may name a citizen and is sealed unless marked public.
NO_PERSONAL_DATA = frozenset(
    {
        Kind.ACK,
        Kind.HOP_ACK,
        Kind.ROSTER,
        Kind.EXERCISE_CONTROL,
        Kind.EXERCISE_SUMMARY,
        Kind.LOGBOOK_HEAD,
        Kind.ROUTE,
    }
)


def sealed_by_default(kind: Kind, *, public: bool = False) -> bool:
    """Whether a message of ``kind`` is sealed to its recipients: yes unless it cannot carry personal
    data or its sender marked it ``public`` (an alert for everyone, a drill notice)."""
    return kind not in NO_PERSONAL_DATA and not public


def encode_payload(kind: Kind, body: object) -> bytes:
    """Validate ``body`` for ``kind`` and return the compact payload; ``ValueError`` names the bad field."""
    if kind == Kind.TEXT:
        if not isinstance(body, str):
            raise ValueError("body: en tekstbesked er en tekst")
        try:
            payload = body.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("body: ikke gyldig Unicode-tekst") from None
    elif kind in _ID_LIST_KINDS:
        payload = _encode_ids(body)
    elif kind in SCHEMAS:
        payload = SCHEMAS[kind].encode(body)
    else:
        raise ValueError(f"kind: {kind.name.lower()}-beskeder laves ikke ud fra JSON")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"body: fylder {len(payload)} bytes, mere end grænsen på {MAX_PAYLOAD} bytes")
    return payload


def decode_payload(kind: Kind, payload: bytes) -> object:
    """Decode a payload of ``kind`` into a JSON-serialisable value; ``ProtocolError`` if undecodable."""
    if kind == Kind.TEXT:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"text payload is not UTF-8: {exc.reason} at byte {exc.start}") from None
    if kind in _ID_LIST_KINDS:
        if not payload or len(payload) % ID_SIZE:
            raise ProtocolError(f"{kind.name.lower()} payload of {len(payload)} bytes is not a list of ids")
        return [payload[i : i + ID_SIZE].hex() for i in range(0, len(payload), ID_SIZE)]
    if kind in SCHEMAS:
        return SCHEMAS[kind].decode(payload)
    return payload.hex()


def _encode_ids(body: object) -> bytes:
    if not isinstance(body, list) or not body:
        raise ValueError("body: en kvittering er en ikke-tom liste af besked-id'er (32 hex-cifre)")
    out = bytearray()
    for index, item in enumerate(body):
        try:
            raw = bytes.fromhex(item) if isinstance(item, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != ID_SIZE:
            raise ValueError(f"body[{index}]: forventede et besked-id på 32 hex-cifre, fik {item!r}")
        out += raw
    return bytes(out)
