"""CAP 1.2 (OASIS Common Alerting Protocol) export of Beredt alerts and receipts, and import of outside CAP.

Beredt carries an alert between hubs as a compact ALERT payload (``hub.core.kinds.catalog.ALERT``); at the
edge it becomes a full CAP 1.2 document so any CAP-aware system (a national alert gateway, a media feed, a
regional staff's tool) can take it. The frame's own header supplies what the payload leaves out: the
message id is the CAP ``identifier``, the signing node the ``sender``, the frame's creation time the
``sent`` (with a UTC offset and no fractions; UTC itself as ``-00:00``, as CAP requires) and the frame's
Status the CAP ``status``, so an exercise is never exported as Actual. A read receipt becomes the
standard CAP receipt: msgType Ack with ``references`` naming the original (``sender,identifier,sent``).

Import reads a CAP document from outside into an ALERT body ready for ``encode_payload``, keeping what
changes its meaning if lost: scope and restriction, msgType and the original's references (verbatim, so
a relayed Cancel still names what it cancels), the original's identifier, sender and sent time, each
info's language, response types, event codes, onset/effective/expires, parameters and the area geometry
(polygons, circles, geocodes). The info in the preferred language leads; every other info keeps its own
wording (event, headline, description, instruction, area names, parameters) as a translation. Texts
longer than the compact limits are cut at a character boundary, and elements Beredt does not carry are
named; both are reported, never silently dropped. A Private alert is refused (its addressees cannot
follow it through a relay). Documents with a DTD are refused outright: CAP needs none, and entity
expansion is an attack surface."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from hub.core.errors import ProtocolError
from hub.core.frame import MAX_PAYLOAD, Status
from hub.core.kinds import catalog
from hub.core.kinds.fields import Text

NS = "urn:oasis:names:tc:emergency:cap:1.2"
_Q = "{" + NS + "}"
_STATUS_NAMES = {Status.ACTUAL: "Actual", Status.EXERCISE: "Exercise", Status.TEST: "Test"}
SCOPES = ("Public", "Restricted", "Private")
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


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
    """An outside CAP document read into Beredt terms; ``body`` is a valid ALERT body.

    ``truncated`` names the texts cut to fit; ``not_kept`` names what the document had and Beredt does
    not carry (an unsupported element, an info whose shared fields differ from the first's)."""

    identifier: str
    sender: str
    sent: int
    status: Status
    body: dict[str, Any]
    references: tuple[CapReference, ...] = ()
    truncated: tuple[str, ...] = field(default=())
    not_kept: tuple[str, ...] = field(default=())


def format_time(unix: int, tz: tzinfo = UTC) -> str:
    """CAP dateTime: ``2026-11-24T10:00:00+01:00``; an offset always, UTC as ``-00:00``, no fractions."""
    text = datetime.fromtimestamp(unix, tz).isoformat(timespec="seconds")
    return text[:-6] + "-00:00" if text.endswith("+00:00") else text


def _parse_time(text: str, where: str) -> int:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ProtocolError(f"CAP {where}: {text!r} er ikke et dateTime-tidspunkt") from None
    if moment.tzinfo is None:
        raise ProtocolError(f"CAP {where}: {text!r} mangler forskydning fra UTC")
    return int(moment.timestamp())


def _sub(parent: ET.Element, tag: str, text: str | None) -> None:
    if text is not None:
        if _XML_ILLEGAL.search(text):
            raise ValueError(f"{tag}: et kontroltegn, som et CAP-dokument (XML 1.0) ikke kan bære")
        ET.SubElement(parent, _Q + tag).text = text


def _pairs(parent: ET.Element, tag: str, pairs: Sequence[Sequence[str]]) -> None:
    for name, value in pairs:
        element = ET.SubElement(parent, _Q + tag)
        _sub(element, "valueName", name)
        _sub(element, "value", value)


def _alert_element(
    header: CapHeader,
    msg_type: str,
    references: Sequence[str],
    tz: tzinfo,
    *,
    note: str | None = None,
) -> ET.Element:
    if header.scope not in SCOPES:
        raise ValueError(f"scope: {header.scope!r} er ikke en af {', '.join(SCOPES)}")
    if header.scope == "Restricted" and not header.restriction:
        raise ValueError("restriction: CAP kræver en begrænsningstekst, når scope er Restricted")
    root = ET.Element(_Q + "alert")
    _sub(root, "identifier", header.identifier)
    _sub(root, "sender", header.sender)
    _sub(root, "sent", format_time(header.sent, tz))
    _sub(root, "status", _STATUS_NAMES[header.status])
    _sub(root, "msgType", msg_type)
    _sub(root, "scope", header.scope)
    _sub(root, "restriction", header.restriction if header.scope == "Restricted" else None)
    _sub(root, "note", note)
    if references:
        _sub(root, "references", " ".join(references))
    return root


def _serialise(root: ET.Element) -> str:
    ET.register_namespace("", NS)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _area_elements(info: ET.Element, body: Mapping[str, Any], names: Sequence[str] | None) -> None:
    areas = body.get("areas")
    if areas is None:
        if "area" in body:
            _sub(ET.SubElement(info, _Q + "area"), "areaDesc", body["area"])
        return
    for index, item in enumerate(areas):
        area = ET.SubElement(info, _Q + "area")
        _sub(area, "areaDesc", names[index] if names and index < len(names) else item["desc"])
        for polygon in item.get("polygons", []):
            _sub(area, "polygon", polygon)
        for circle in item.get("circles", []):
            _sub(area, "circle", circle)
        _pairs(area, "geocode", item.get("geocodes", []))


def _info_element(
    root: ET.Element,
    body: Mapping[str, Any],
    words: Mapping[str, Any],
    header: CapHeader,
    tz: tzinfo,
) -> None:
    """One <info>: shared fields from ``body``, wording (texts, area names, parameters) from ``words``."""
    info = ET.SubElement(root, _Q + "info")
    _sub(info, "language", words.get("language", header.language))
    _sub(info, "category", body.get("category", "Other"))
    _sub(info, "event", words.get("event", body["event"]))
    for response in body.get("response", []):
        _sub(info, "responseType", response)
    _sub(info, "urgency", body["urgency"])
    _sub(info, "severity", body["severity"])
    _sub(info, "certainty", body["certainty"])
    _pairs(info, "eventCode", body.get("event_codes", []))
    for tag in ("effective", "onset", "expires"):
        if tag in body:
            _sub(info, tag, format_time(body[tag], tz))
    origin = body.get("origin", {})
    _sub(info, "senderName", words.get("sender_name", origin.get("sender_name", header.sender_name)))
    for tag in ("headline", "description", "instruction"):
        _sub(info, tag, words.get(tag))
    _sub(info, "web", words.get("web", origin.get("web")))
    _pairs(info, "parameter", words.get("parameters", body.get("parameters", [])))
    _area_elements(info, body, words.get("area_descs"))


def export_alert(
    body: Mapping[str, Any],
    header: CapHeader,
    *,
    known: Mapping[str, CapReference] | None = None,
    copies: Sequence[CapReference] = (),
    tz: tzinfo = UTC,
) -> str:
    """CAP 1.2 XML for a decoded ALERT body. ``known`` resolves referenced message ids to CAP references.

    The body's own scope, restriction and language (an imported alert's) win over ``header``'s; an
    imported alert names its original in ``<note>`` and keeps the original's references after Beredt's
    and after ``copies``: this hub's Beredt messages that relayed those originals, so a consumer that
    only ever saw Beredt's documents can still tell what an Update or Cancel refers to."""
    catalog.ALERT.to_wire("alert", dict(body))  # the same validation, and the same messages, as the API
    references = []
    for index, message_id in enumerate(body.get("references", [])):
        ref = (known or {}).get(message_id)
        if ref is None:
            raise ValueError(f"alert.references[{index}]: beskeden {message_id} kendes ikke af denne hub")
        references.append(ref.render(tz))
    references += [copy.render(tz) for copy in copies]
    note = None
    if (origin := body.get("origin")) is not None:
        references += origin.get("references", [])
        note = f"Relayed by Beredt. Original: {origin['sender']},{origin['identifier']},"
        note += format_time(origin["sent"], tz)
    if "scope" in body:
        header = replace(header, scope=body["scope"], restriction=body.get("restriction"))
    root = _alert_element(header, body.get("msg_type", "Alert"), references, tz, note=note)
    _info_element(root, body, body, header, tz)
    for translation in body.get("translations", []):
        _info_element(root, body, translation, header, tz)
    return _serialise(root)


def export_receipt(
    original: CapReference, header: CapHeader, *, note: str | None = None, tz: tzinfo = UTC
) -> str:
    """A CAP receipt: msgType Ack referencing ``original`` (Beredt's READ_RECEIPT, "læst og forstået")."""
    return _serialise(_alert_element(header, "Ack", [original.render(tz)], tz, note=note))


def _text(parent: ET.Element, tag: str) -> str | None:
    element = parent.find(_Q + tag)
    return None if element is None or element.text is None else element.text.strip()


def _texts(parent: ET.Element, tag: str) -> list[str]:
    return [" ".join((element.text or "").split()) for element in parent.findall(_Q + tag)]


def _required(parent: ET.Element, tag: str, where: str) -> str:
    value = _text(parent, tag)
    if not value:
        raise ProtocolError(f"CAP {where}: det krævede element <{tag}> mangler eller er tomt")
    return value


def _read_pairs(parent: ET.Element, tag: str) -> list[list[str]]:
    return [
        [_required(element, "valueName", tag), _text(element, "value") or ""]
        for element in parent.findall(_Q + tag)
    ]


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
            raise ProtocolError(f"CAP references: {item!r} har ikke formen sender,identifier,sent")
        refs.append(CapReference(parts[0], parts[1], _parse_time(parts[2], "references")))
    return tuple(refs)


# What Beredt carries; any other child element is named in ImportedCap.not_kept.
_ALERT_KEPT = {
    "identifier",
    "sender",
    "sent",
    "status",
    "msgType",
    "scope",
    "restriction",
    "references",
    "info",
}
_INFO_KEPT = {
    "language", "category", "event", "responseType", "urgency", "severity", "certainty", "eventCode",
    "effective", "onset", "expires", "senderName", "headline", "description", "instruction", "web",
    "parameter", "area",
}  # fmt: skip
_AREA_KEPT = {"areaDesc", "polygon", "circle", "geocode"}
# Fields every info of an alert shares in Beredt's form; only the first info's are carried.
_SHARED = ("category", "urgency", "severity", "certainty", "response", "event_codes", "effective", "onset",
           "expires")  # fmt: skip


def _unkept(element: ET.Element, kept: set[str], where: str) -> list[str]:
    names = {child.tag.removeprefix(_Q) for child in element} - kept
    return [f"{where}<{name}>" for name in sorted(names)]


def _read_area(area: ET.Element) -> dict[str, Any]:
    item: dict[str, Any] = {"desc": _required(area, "areaDesc", "area")}
    for key, tag in (("polygons", "polygon"), ("circles", "circle")):
        if values := _texts(area, tag):
            item[key] = values
    if geocodes := _read_pairs(area, "geocode"):
        item["geocodes"] = geocodes
    return item


def _read_info(info: ET.Element) -> dict[str, Any]:
    """One <info> in ALERT terms (translations are cut down from this later)."""
    body: dict[str, Any] = {
        "language": _text(info, "language") or "en-US",  # CAP's default when absent
        "category": _required(info, "category", "info"),
        "event": _required(info, "event", "info"),
        "urgency": _required(info, "urgency", "info"),
        "severity": _required(info, "severity", "info"),
        "certainty": _required(info, "certainty", "info"),
    }
    if responses := _texts(info, "responseType"):
        body["response"] = responses
    if event_codes := _read_pairs(info, "eventCode"):
        body["event_codes"] = event_codes
    for tag in ("effective", "onset", "expires"):
        if (value := _text(info, tag)) is not None:
            body[tag] = _parse_time(value, tag)
    for tag in ("headline", "description", "instruction"):
        if (value := _text(info, tag)) is not None:
            body[tag] = value
    for key, tag in (("sender_name", "senderName"), ("web", "web")):
        if (value := _text(info, tag)) is not None:
            body[key] = value
    if parameters := _read_pairs(info, "parameter"):
        body["parameters"] = parameters
    areas = [_read_area(area) for area in info.findall(_Q + "area")]
    if areas:
        body["areas"] = areas
        body["area"] = "; ".join(area["desc"] for area in areas)
    return body


def _canonical(schema_field: Any, name: str, value: object) -> object:
    """A value after a wire round trip, so "met" and "Met" compare equal."""
    try:
        return schema_field.from_wire(name, schema_field.to_wire(name, value))
    except ValueError as exc:
        raise ProtocolError(f"CAP-dokumentet kan ikke blive et Beredt-varsel: {exc}") from exc


def _translation(
    first: dict[str, Any], other: dict[str, Any], index: int
) -> tuple[dict[str, Any], list[str]]:
    """The wording of another info, and what about it differs from the first info and is not kept."""
    wording = ("language", "event", "headline", "description", "instruction")
    words: dict[str, Any] = {key: other[key] for key in wording if key in other}
    first_areas, other_areas = first.get("areas", []), other.get("areas", [])
    descs = [area["desc"] for area in other_areas]
    if descs and descs != [area["desc"] for area in first_areas]:
        words["area_descs"] = descs
    if other.get("parameters", []) != first.get("parameters", []):
        words["parameters"] = other.get("parameters", [])
    for key in ("sender_name", "web"):
        if key in other and other[key] != first.get(key):
            words[key] = other[key]
    lost = []
    entries = {entry.name: entry.type for entry in catalog.ALERT.entries}
    for key in _SHARED:
        if key in first or key in other:
            mine = _canonical(entries[key], f"alert.{key}", first[key]) if key in first else None
            theirs = _canonical(entries[key], f"info[{index}].{key}", other[key]) if key in other else None
            if mine != theirs:
                lost.append(f"info[{index}].{key}")
    geometry = [{k: v for k, v in area.items() if k != "desc"} for area in first_areas]
    if geometry != [{k: v for k, v in area.items() if k != "desc"} for area in other_areas]:
        lost.append(f"info[{index}].area")
    return words, lost


def _choose_info(infos: list[ET.Element], language: str) -> int:
    for index, info in enumerate(infos):
        if (_text(info, "language") or "en-US").lower().startswith(language.lower()):
            return index
    return 0


def _fit_texts(body: dict[str, Any], schema: Any, where: str) -> list[str]:
    """Cut every text of ``body`` (a ``schema`` map) to its limit; the names of those cut."""
    cut = []
    for entry in schema.entries:
        value = body.get(entry.name)
        if isinstance(entry.type, Text) and isinstance(value, str):
            body[entry.name] = _fit(value, entry.type)
            if body[entry.name] != value:
                cut.append(f"{where}{entry.name}")
    return cut


def _origin(root: ET.Element, references: Sequence[CapReference]) -> dict[str, Any]:
    """The pointer to the original message, with its references to outside messages kept verbatim."""
    origin: dict[str, Any] = {
        "identifier": _required(root, "identifier", "alert"),
        "sender": _required(root, "sender", "alert"),
        "sent": _parse_time(_required(root, "sent", "alert"), "sent"),
    }
    texts = (_text(root, "references") or "").split()
    theirs = [text for text, ref in zip(texts, references, strict=True) if not _is_message_id(ref.identifier)]
    if theirs:
        origin["references"] = theirs
    return origin


def import_cap(document: bytes | str, *, language: str = "da") -> ImportedCap:
    """Read an outside CAP 1.2 document; ``ProtocolError`` names what is missing or malformed."""
    raw = document.encode() if isinstance(document, str) else document
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise ProtocolError("CAP-dokument med DTD afvist: CAP bruger ingen, og entiteter er usikre")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ProtocolError(
            f"CAP-dokumentet er ikke velformet XML (linje {exc.position[0]}, kolonne {exc.position[1]})"
        ) from exc
    if root.tag != _Q + "alert":
        raise ProtocolError(f"ikke et CAP 1.2-varsel: rodelementet er {root.tag}")
    status_text = _required(root, "status", "alert")
    names = {name: status for status, name in _STATUS_NAMES.items()}
    if status_text not in names:
        raise ProtocolError(f"CAP-status {status_text!r} videresendes ikke (kun Actual, Exercise, Test)")
    scope = _required(root, "scope", "alert")
    if scope == "Private":
        raise ProtocolError(
            "CAP scope Private videresendes ikke: dens <addresses> kan ikke følge med gennem Beredt"
        )
    infos = root.findall(_Q + "info")
    if not infos:
        raise ProtocolError("CAP-varslet har ingen <info>: intet for Beredt at videresende")
    lead = _choose_info(infos, language)
    order = [lead] + [i for i in range(len(infos)) if i != lead]
    read = {i: _read_info(infos[i]) for i in order}
    candidate = read[lead]
    candidate["msg_type"] = _required(root, "msgType", "alert")
    candidate["scope"] = scope
    if scope == "Restricted":
        candidate["restriction"] = _required(root, "restriction", "alert")
    references = _parse_references(_text(root, "references"))
    ours = [ref.identifier for ref in references if _is_message_id(ref.identifier)]
    if ours:
        candidate["references"] = ours[:16]
    not_kept = _unkept(root, _ALERT_KEPT, "")
    translations = []
    for index in order:
        not_kept += _unkept(infos[index], _INFO_KEPT, f"info[{index}]")
        for area in infos[index].findall(_Q + "area"):
            not_kept += _unkept(area, _AREA_KEPT, f"info[{index}].area")
        if index != lead:
            words, lost = _translation(candidate, read[index], index)
            translations.append(words)
            not_kept += lost
    origin = candidate["origin"] = _origin(root, references)
    for key in ("sender_name", "web"):  # the first info's, about the original
        if key in candidate:
            origin[key] = candidate.pop(key)
    truncated = _fit_texts(candidate, catalog.ALERT, "") + _fit_texts(origin, catalog.CAP_ORIGIN, "origin.")
    for number, words in enumerate(translations):
        truncated += _fit_texts(words, catalog.CAP_TRANSLATION, f"translations[{number}].")
    body = _to_body(candidate, translations, not_kept)
    return ImportedCap(
        identifier=origin["identifier"],
        sender=origin["sender"],
        sent=origin["sent"],
        status=names[status_text],
        body=body,
        references=references,
        truncated=tuple(dict.fromkeys(truncated)),
        not_kept=tuple(dict.fromkeys(not_kept)),
    )


def _to_body(
    candidate: dict[str, Any], translations: list[dict[str, Any]], not_kept: list[str]
) -> dict[str, Any]:
    """A valid ALERT body; translations that do not fit the payload limit are left out (and named)."""
    if "area" in candidate:
        candidate["area"] = _fit(candidate["area"], Text(200))
    while True:
        if translations:
            candidate["translations"] = translations
        else:
            candidate.pop("translations", None)
        try:
            # a wire round trip also canonicalises the spelling of enumerations ("met" -> "Met")
            wire = catalog.ALERT.encode(candidate)
        except ValueError as exc:
            raise ProtocolError(f"CAP-dokumentet kan ikke blive et Beredt-varsel: {exc}") from exc
        if len(wire) <= MAX_PAYLOAD:
            return catalog.ALERT.decode(wire)
        if not translations:
            raise ProtocolError(
                f"CAP-varslet fylder {len(wire)} bytes som Beredt-varsel,"
                f" mere end grænsen på {MAX_PAYLOAD} bytes"
            )
        dropped = translations.pop()
        not_kept.append(f"translation {dropped['language']} (over the {MAX_PAYLOAD}-byte limit)")


def _is_message_id(text: str) -> bool:
    try:
        return len(bytes.fromhex(text)) == 16
    except ValueError:
        return False
