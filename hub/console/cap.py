"""CAP 1.2 (OASIS Common Alerting Protocol) export of Beredt alerts and receipts, and import of outside CAP.

Beredt carries an alert between hubs as a compact ALERT payload (``hub.core.kinds.catalog.ALERT``); at the
edge it becomes a full CAP 1.2 document so any CAP-aware system (a national alert gateway, a media feed, a
regional staff's tool) can take it. The frame's own header supplies what the payload leaves out: the
message id is the CAP ``identifier``, the signing node the ``sender``, the frame's creation time the
``sent`` (with a UTC offset and no fractions, as CAP requires) and the frame's Status the CAP ``status``,
so an exercise is never exported as Actual. A read receipt becomes the standard CAP receipt: msgType Ack
with ``references`` naming the original (``sender,identifier,sent``). Import reads a CAP document from
outside (first ``info`` in the preferred language) into an ALERT body ready for ``encode_payload``; texts
longer than the compact limits are cut at a character boundary and reported, never silently. Documents
with a DTD are refused outright: CAP needs none, and entity expansion is an attack surface."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from hub.core.errors import ProtocolError
from hub.core.frame import Status
from hub.core.kinds import catalog
from hub.core.kinds.fields import Text

NS = "urn:oasis:names:tc:emergency:cap:1.2"
_Q = "{" + NS + "}"
_STATUS_NAMES = {Status.ACTUAL: "Actual", Status.EXERCISE: "Exercise", Status.TEST: "Test"}
SCOPES = ("Public", "Restricted", "Private")


@dataclass(frozen=True, slots=True)
class CapReference:
    """One CAP reference: the referenced message's sender, identifier and sent time (Unix seconds)."""

    sender: str
    identifier: str
    sent: int

    def render(self, tz: tzinfo) -> str:
        return f"{self.sender},{self.identifier},{format_time(self.sent, tz)}"


@dataclass(frozen=True, slots=True)
class CapHeader:
    """What a CAP ``alert`` needs beyond the ALERT payload; Beredt fills it from the signed frame."""

    identifier: str
    sender: str
    sent: int
    status: Status
    scope: str = "Public"
    restriction: str | None = None
    sender_name: str | None = None
    language: str = "da-DK"


@dataclass(frozen=True, slots=True)
class ImportedCap:
    """An outside CAP document read into Beredt terms; ``body`` is a valid ALERT body."""

    identifier: str
    sender: str
    sent: int
    status: Status
    body: dict[str, Any]
    references: tuple[CapReference, ...] = ()
    truncated: tuple[str, ...] = field(default=())


def format_time(unix: int, tz: tzinfo = UTC) -> str:
    """CAP dateTime: ``2026-11-24T10:00:00+01:00`` (offset always, ``-00:00`` never, no fractions)."""
    return datetime.fromtimestamp(unix, tz).isoformat(timespec="seconds")


def _parse_time(text: str, where: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ProtocolError(f"CAP {where}: {text!r} is not a dateTime") from None
    if moment.tzinfo is None:
        raise ProtocolError(f"CAP {where}: {text!r} has no UTC offset")
    return int(moment.timestamp())


def _sub(parent: ET.Element, tag: str, text: str | None) -> None:
    if text is not None:
        ET.SubElement(parent, _Q + tag).text = text


def _alert_element(
    header: CapHeader, msg_type: str, references: Sequence[CapReference], tz: tzinfo
) -> ET.Element:
    if header.scope not in SCOPES:
        raise ValueError(f"scope: {header.scope!r} is not one of {', '.join(SCOPES)}")
    if header.scope == "Restricted" and not header.restriction:
        raise ValueError("restriction: CAP requires a restriction text when scope is Restricted")
    root = ET.Element(_Q + "alert")
    _sub(root, "identifier", header.identifier)
    _sub(root, "sender", header.sender)
    _sub(root, "sent", format_time(header.sent, tz))
    _sub(root, "status", _STATUS_NAMES[header.status])
    _sub(root, "msgType", msg_type)
    _sub(root, "scope", header.scope)
    _sub(root, "restriction", header.restriction if header.scope == "Restricted" else None)
    if references:
        _sub(root, "references", " ".join(ref.render(tz) for ref in references))
    return root


def _serialise(root: ET.Element) -> str:
    ET.register_namespace("", NS)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def export_alert(
    body: Mapping[str, Any],
    header: CapHeader,
    *,
    known: Mapping[str, CapReference] | None = None,
    tz: tzinfo = UTC,
) -> str:
    """CAP 1.2 XML for a decoded ALERT body. ``known`` resolves referenced message ids to CAP references."""
    catalog.ALERT.to_wire("alert", dict(body))  # the same validation, and the same messages, as the API
    references = []
    for index, message_id in enumerate(body.get("references", [])):
        ref = (known or {}).get(message_id)
        if ref is None:
            raise ValueError(f"alert.references[{index}]: message {message_id} is unknown to this hub")
        references.append(ref)
    root = _alert_element(header, body.get("msg_type", "Alert"), references, tz)
    info = ET.SubElement(root, _Q + "info")
    _sub(info, "language", header.language)
    _sub(info, "category", body.get("category", "Other"))
    _sub(info, "event", body["event"])
    _sub(info, "urgency", body["urgency"])
    _sub(info, "severity", body["severity"])
    _sub(info, "certainty", body["certainty"])
    if "expires" in body:
        _sub(info, "expires", format_time(body["expires"], tz))
    _sub(info, "senderName", header.sender_name)
    _sub(info, "headline", body.get("headline"))
    _sub(info, "description", body.get("description"))
    _sub(info, "instruction", body.get("instruction"))
    if "area" in body:
        area = ET.SubElement(info, _Q + "area")
        _sub(area, "areaDesc", body["area"])
    return _serialise(root)


def export_receipt(
    original: CapReference, header: CapHeader, *, note: str | None = None, tz: tzinfo = UTC
) -> str:
    """A CAP receipt: msgType Ack referencing ``original`` (Beredt's READ_RECEIPT, "læst og forstået")."""
    root = _alert_element(header, "Ack", [original], tz)
    if note is not None:
        # note sits before references in the CAP sequence
        references = root.find(_Q + "references")
        assert references is not None  # _alert_element always writes the one reference we gave it
        element = ET.Element(_Q + "note")
        element.text = note
        root.insert(list(root).index(references), element)
    return _serialise(root)


def _text(parent: ET.Element, tag: str) -> str | None:
    element = parent.find(_Q + tag)
    return None if element is None or element.text is None else element.text.strip()


def _required(parent: ET.Element, tag: str, where: str) -> str:
    value = _text(parent, tag)
    if not value:
        raise ProtocolError(f"CAP {where}: required element <{tag}> is missing or empty")
    return value


def _fit(value: str, limit: Text) -> str:
    data = value.encode("utf-8")
    if len(data) <= limit.max_bytes:
        return value
    cut = data[: limit.max_bytes - 3].decode("utf-8", "ignore")
    return cut + "…"


def _parse_references(text: str | None) -> tuple[CapReference, ...]:
    refs = []
    for item in (text or "").split():
        parts = item.split(",")
        if len(parts) != 3:
            raise ProtocolError(f"CAP references: {item!r} is not sender,identifier,sent")
        refs.append(CapReference(parts[0], parts[1], _parse_time(parts[2], "references")))
    return tuple(refs)


def _choose_info(root: ET.Element, language: str) -> ET.Element:
    infos = root.findall(_Q + "info")
    if not infos:
        raise ProtocolError("CAP alert has no <info>: nothing for Beredt to relay")
    for info in infos:
        if (_text(info, "language") or "en-US").lower().startswith(language.lower()):
            return info
    return infos[0]


def import_cap(document: bytes | str, *, language: str = "da") -> ImportedCap:
    """Read an outside CAP 1.2 document; ``ProtocolError`` names what is missing or malformed."""
    raw = document.encode() if isinstance(document, str) else document
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise ProtocolError("CAP document with a DTD refused: CAP needs none and entities are unsafe")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ProtocolError(f"CAP document is not well-formed XML: {exc}") from exc
    if root.tag != _Q + "alert":
        raise ProtocolError(f"not a CAP 1.2 alert: root element is {root.tag}")
    status_text = _required(root, "status", "alert")
    names = {name: status for status, name in _STATUS_NAMES.items()}
    if status_text not in names:
        raise ProtocolError(f"CAP status {status_text!r} is not relayed (only Actual, Exercise, Test)")
    info = _choose_info(root, language)
    candidate: dict[str, Any] = {
        "event": _required(info, "event", "info"),
        "urgency": _required(info, "urgency", "info"),
        "severity": _required(info, "severity", "info"),
        "certainty": _required(info, "certainty", "info"),
        "msg_type": _required(root, "msgType", "alert"),
        "category": _required(info, "category", "info"),
    }
    for tag in ("headline", "description", "instruction"):
        if (value := _text(info, tag)) is not None:
            candidate[tag] = value
    areas = [_required(area, "areaDesc", "area") for area in info.findall(_Q + "area")]
    if areas:
        candidate["area"] = "; ".join(areas)
    if (expires := _text(info, "expires")) is not None:
        candidate["expires"] = _parse_time(expires, "expires")
    references = _parse_references(_text(root, "references"))
    ours = [ref.identifier for ref in references if _is_message_id(ref.identifier)]
    if ours:
        candidate["references"] = ours[:16]
    truncated = []
    for entry in catalog.ALERT.entries:
        value = candidate.get(entry.name)
        if isinstance(entry.type, Text) and isinstance(value, str):
            candidate[entry.name] = _fit(value, entry.type)
            if candidate[entry.name] != value:
                truncated.append(entry.name)
    try:
        # a wire round trip also canonicalises the spelling of enumerations ("met" -> "Met")
        body = catalog.ALERT.from_wire("alert", catalog.ALERT.to_wire("alert", candidate))
    except ValueError as exc:
        raise ProtocolError(f"CAP document does not map to a Beredt alert: {exc}") from exc
    return ImportedCap(
        identifier=_required(root, "identifier", "alert"),
        sender=_required(root, "sender", "alert"),
        sent=_parse_time(_required(root, "sent", "alert"), "sent"),
        status=names[status_text],
        body=body,
        references=references,
        truncated=tuple(truncated),
    )


def _is_message_id(text: str) -> bool:
    try:
        return len(bytes.fromhex(text)) == 16
    except ValueError:
        return False
