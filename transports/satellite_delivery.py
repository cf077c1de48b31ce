"""The provider's MO webhook form, validated: fields, payload and the optional HS256 token, sans-IO.

An Iridium SBD provider (RockBLOCK and others of its kind) reports each MO message as a form of
``imei`` (15 digits), ``momsn`` (0-65535), ``transmit_time`` (``YY-MM-DD HH:MM:SS`` UTC),
``iridium_latitude``/``iridium_longitude``/``iridium_cep`` (the gateway's rough fix) and ``data`` (the
payload as hex), and, when the account has a signing secret, ``JWT``: an HS256 token whose claims repeat
those fields. ``parse_delivery`` turns such a form into an ``MoDelivery`` or raises ``ProtocolError``
(malformed) or ``TrustError`` (token missing, not HS256, or not signed with the secret). Nothing here
touches a socket; ``transports.satellite_webhook`` serves the POSTs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from hardware import iridium_sbd as sbd
from hub.core.errors import ProtocolError, RefusalReason, TrustError

_IMEI = re.compile(r"\d{15}")


@dataclass(frozen=True, slots=True)
class MoDelivery:
    """One MO message as the provider reported it."""

    imei: str
    momsn: int
    transmit_time: float
    """Unix time the gateway received it."""
    data: bytes
    latitude: float | None = None
    longitude: float | None = None
    cep_km: float | None = None


def is_imei(text: str) -> bool:
    return _IMEI.fullmatch(text) is not None


def _b64decode(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (ValueError, TypeError) as exc:
        raise TrustError(RefusalReason.BAD_SIGNATURE, "token is not base64url") from exc


def verify_hs256(token: str, secret: str) -> dict[str, object]:
    """The claims of an HS256 JWT signed with ``secret``; ``TrustError`` for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TrustError(RefusalReason.BAD_SIGNATURE, "token is not a JWT")
    head_raw, body_raw, mac = (_b64decode(part) for part in parts)
    try:
        head = json.loads(head_raw)
        claims = json.loads(body_raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrustError(RefusalReason.BAD_SIGNATURE, "token is not JSON") from exc
    # Only HS256 is accepted: taking "alg" from the token itself is the classic JWT downgrade.
    if not isinstance(head, dict) or head.get("alg") != "HS256" or not isinstance(claims, dict):
        raise TrustError(RefusalReason.BAD_SIGNATURE, "token is not HS256")
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise TrustError(RefusalReason.BAD_SIGNATURE, "token signature does not match the shared secret")
    return claims


def _optional_float(fields: Mapping[str, str], key: str, low: float, high: float) -> float | None:
    raw = fields.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ProtocolError(f"{key} is not a number: {raw!r}") from exc
    if not low <= value <= high:
        raise ProtocolError(f"{key} {value} is outside {low}..{high}")
    return value


def parse_delivery(fields: Mapping[str, str], *, secret: str | None = None) -> MoDelivery:
    """Validate one webhook form; ``ProtocolError`` when malformed, ``TrustError`` when the token fails."""
    imei = fields.get("imei", "")
    if not is_imei(imei):
        raise ProtocolError(f"imei must be 15 digits, got {imei!r}")
    momsn_text = fields.get("momsn", "")
    if not momsn_text.isdigit() or int(momsn_text) > 0xFFFF:
        raise ProtocolError(f"momsn must be 0-65535, got {momsn_text!r}")
    try:
        sent = datetime.strptime(fields.get("transmit_time", ""), "%y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ProtocolError(
            f"transmit_time must be YY-MM-DD HH:MM:SS, got {fields.get('transmit_time')!r}"
        ) from exc
    hex_data = fields.get("data", "")
    try:
        data = bytes.fromhex(hex_data)
    except ValueError as exc:
        raise ProtocolError("data is not hex") from exc
    if not 1 <= len(data) <= sbd.MO_MAX:
        raise ProtocolError(f"data must be 1-{sbd.MO_MAX} bytes, got {len(data)}")
    delivery = MoDelivery(
        imei,
        int(momsn_text),
        sent.timestamp(),
        data,
        _optional_float(fields, "iridium_latitude", -90, 90),
        _optional_float(fields, "iridium_longitude", -180, 180),
        _optional_float(fields, "iridium_cep", 0, 20_000),
    )
    if secret is not None:
        token = fields.get("JWT")
        if not token:
            raise TrustError(RefusalReason.BAD_SIGNATURE, "the JWT field is missing")
        claims = verify_hs256(token, secret)
        for key in ("imei", "momsn", "transmit_time", "data"):
            if str(claims.get(key, "")).lower() != fields[key].lower():
                raise TrustError(RefusalReason.BAD_SIGNATURE, f"token claim {key} differs from the form")
    return delivery
