"""CAP that keeps its meaning: outside alerts shaped like MeteoAlarm/DMI, NWS and Canada's NAAD are imported,
carried as a signed ALERT frame, exported, validated against the OASIS XSD and compared field by field."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import cbor2
import pytest
from lxml import etree

from hub.console.cap import CapHeader, export_alert, format_time, import_cap
from hub.core.errors import ProtocolError
from hub.core.frame import BROADCAST, Kind, Status, decode_frame
from hub.core.identity import Identity
from hub.core.kinds import decode_payload, encode_payload
from tests.console.test_cap import assert_valid_cap

FIXTURES = Path(__file__).parent / "cap"
_NS = {"c": "urn:oasis:names:tc:emergency:cap:1.2"}
SENT = 1_795_000_000
RESTRICTION = "Kun til kommunale beredskaber; må ikke offentliggøres"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def restricted(document: str) -> str:
    """The same alert, Restricted: the kind a relay must never turn Public."""
    return document.replace(
        "<scope>Public</scope>", f"<scope>Restricted</scope><restriction>{RESTRICTION}</restriction>"
    )


# Each case: the document, and what Beredt names as not carried (never silently dropped).
CASES = {
    "meteoalarm-dmi": (fixture("meteoalarm_dmi.xml"), ()),
    "meteoalarm-dmi-restricted": (restricted(fixture("meteoalarm_dmi.xml")), ()),
    "nws-update": (fixture("nws_update.xml"), ("<code>",)),
    "naad-cancel": (fixture("naad_cancel.xml"), ("<code>", "<source>")),
}


def _instant(text: str | None) -> int | None:
    return None if text is None else int(datetime.fromisoformat(text).timestamp())


def _one(element: Any, tag: str) -> str | None:
    found = element.find(f"c:{tag}", _NS)
    return None if found is None or found.text is None else " ".join(found.text.split())


def _pairs(element: Any, tag: str) -> list[tuple[str | None, str | None]]:
    return [(_one(item, "valueName"), _one(item, "value")) for item in element.findall(f"c:{tag}", _NS)]


def _all(element: Any, tag: str) -> list[str]:
    return [" ".join(str(item.text).split()) for item in element.findall(f"c:{tag}", _NS)]


def _reference(text: str) -> tuple[str, str, int | None]:
    sender, identifier, sent = text.split(",")
    return sender, identifier, _instant(sent)


def cap_fields(doc: Any) -> dict[str, Any]:
    """What a CAP consumer acts on, normalised: times as instants, infos by language, whitespace folded.

    Left out: the message's own identifier, sender and sent (a relay issues its own message and names the
    original in <note>), and the elements Beredt reports as not carried (alert <code>, <source>)."""
    infos = {}
    for info in doc.findall("c:info", _NS):
        infos[_one(info, "language")] = {
            "category": _all(info, "category"),
            "event": _one(info, "event"),
            "response": sorted(_all(info, "responseType")),
            **{tag: _one(info, tag) for tag in ("urgency", "severity", "certainty")},
            "event_codes": _pairs(info, "eventCode"),
            **{tag: _instant(_one(info, tag)) for tag in ("effective", "onset", "expires")},
            **{
                tag: _one(info, tag)
                for tag in ("senderName", "headline", "description", "instruction", "web")
            },
            "parameters": _pairs(info, "parameter"),
            "areas": [
                {
                    "desc": _one(area, "areaDesc"),
                    "polygons": _all(area, "polygon"),
                    "circles": _all(area, "circle"),
                    "geocodes": _pairs(area, "geocode"),
                }
                for area in info.findall("c:area", _NS)
            ],
        }
    references = _one(doc, "references")
    return {
        **{tag: _one(doc, tag) for tag in ("status", "msgType", "scope", "restriction")},
        "references": sorted(_reference(item) for item in (references or "").split()),
        "infos": infos,
    }


def assert_same_meaning(original: str, exported: str) -> None:
    """``exported`` (a relay's CAP) says what ``original`` said, and points at it."""
    source = etree.fromstring(original.encode())
    relayed = assert_valid_cap(exported)
    assert cap_fields(relayed) == cap_fields(source)
    sent = _instant(_one(source, "sent"))
    assert sent is not None
    pointer = f"{_one(source, 'sender')},{_one(source, 'identifier')},{format_time(sent)}"
    assert _one(relayed, "note") == f"Relayed by Beredt. Original: {pointer}"


def _over_the_wire(body: dict[str, Any], status: Status) -> tuple[dict[str, Any], CapHeader]:
    """``body`` as a signed ALERT frame decoded by another hub, and the CAP header that hub would use."""
    node = Identity.generate("Aarhus krisestab", "staff")
    frame = node.sign(
        Kind.ALERT, BROADCAST, encode_payload(Kind.ALERT, body), created=SENT, ttl_minutes=360, status=status
    )
    received = decode_frame(frame.encode())
    decoded = decode_payload(Kind.ALERT, received.payload)
    assert isinstance(decoded, dict)
    header = CapHeader(received.id.hex(), f"beredt:{node.node_id.hex()}", received.created, received.status,
                       sender_name=node.name)  # fmt: skip
    return decoded, header


@pytest.mark.parametrize("case", list(CASES))
def test_imported_alert_exports_with_the_same_meaning(case: str) -> None:
    document, not_kept = CASES[case]
    assert_valid_cap(document)  # the fixtures themselves are CAP 1.2
    imported = import_cap(document)
    assert imported.truncated == ()
    assert imported.not_kept == not_kept
    payload = encode_payload(Kind.ALERT, imported.body)
    assert len(payload) < len(document.encode()) / 2  # compact: CBOR keys and enum indices, not XML
    body, header = _over_the_wire(imported.body, imported.status)
    assert body == imported.body
    assert_same_meaning(document, export_alert(body, header))


def test_restricted_stays_restricted_and_a_cancel_names_both_alerts_it_cancels() -> None:
    body = import_cap(restricted(fixture("meteoalarm_dmi.xml"))).body
    assert (body["scope"], body["restriction"]) == ("Restricted", RESTRICTION)
    cancel = import_cap(fixture("naad_cancel.xml")).body
    assert cancel["msg_type"] == "Cancel"
    assert [ref.split(",")[1] for ref in cancel["origin"]["references"]] == [
        "urn:oid:2.49.0.1.124.1940312093.2026",
        "urn:oid:2.49.0.1.124.2060719374.2026",
    ]


def test_the_danish_info_leads_and_english_keeps_its_own_language() -> None:
    body = import_cap(fixture("meteoalarm_dmi.xml")).body
    assert (body["language"], body["event"]) == ("da-DK", "Stormflod")
    (english,) = body["translations"]
    assert (english["language"], english["event"], english["area_descs"]) == (
        "en-GB", "Storm surge", ["Aarhus Bay and Kalø Cove"]
    )  # fmt: skip
    # an alert without Danish keeps its first info first
    assert import_cap(fixture("naad_cancel.xml")).body["language"] == "en-CA"


def test_exports_write_utc_as_minus_zero() -> None:
    body, header = _over_the_wire(import_cap(fixture("naad_cancel.xml")).body, Status.ACTUAL)
    doc = assert_valid_cap(export_alert(body, header))
    times = [doc.find("c:sent", _NS).text, *(e.text for e in doc.iterfind("c:info/c:effective", _NS))]
    assert times and all(str(t).endswith("-00:00") for t in times)


def test_a_private_alert_is_refused_not_widened() -> None:
    document = fixture("nws_update.xml").replace(
        "<scope>Public</scope>", "<scope>Private</scope><addresses>ops@example.org</addresses>"
    )
    with pytest.raises(ProtocolError, match="scope Private videresendes ikke"):
        import_cap(document)


def test_infos_that_differ_beyond_wording_are_named_and_translations_over_the_limit_dropped() -> None:
    document = fixture("meteoalarm_dmi.xml")
    english_start = document.index("<language>en-GB</language>")
    differing = document[:english_start] + document[english_start:].replace(
        "<severity>Severe</severity>", "<severity>Moderate</severity>", 1
    )
    assert import_cap(differing).not_kept == ("info[1].severity",)
    long_english = document[:english_start] + document[english_start:].replace(
        "Water levels are expected", "x" * 1900 + " water levels are expected", 1
    ).replace("Protect basements", "y" * 900 + " protect basements", 1)
    bloated = long_english.replace("</alert>", long_english[long_english.index("<info>", english_start - 40):]
                                   .replace("en-GB", "en-US"))  # fmt: skip
    imported = import_cap(bloated)
    assert [t["language"] for t in imported.body["translations"]] == ["en-GB"]
    assert "translation en-US (over the 4096-byte limit)" in imported.not_kept


def test_named_values_are_pairs_in_json_and_a_flat_list_on_the_wire() -> None:
    body = {"event": "x", "urgency": "Past", "severity": "Minor", "certainty": "Likely",
            "parameters": [["VTEC", "/O.NEW/"]],
            "areas": [{"desc": "A", "geocodes": [["SAME", "025027"]]}]}  # fmt: skip
    wire = cbor2.loads(encode_payload(Kind.ALERT, body))
    assert wire[18] == ["VTEC", "/O.NEW/"] and wire[17] == [{1: "A", 4: ["SAME", "025027"]}]
    assert decode_payload(Kind.ALERT, encode_payload(Kind.ALERT, body)) == body
    with pytest.raises(ValueError, match=r"alert\.parameters\[0\]: forventede et par \[navn, værdi\]"):
        encode_payload(Kind.ALERT, {**body, "parameters": [["VTEC"]]})
    with pytest.raises(ValueError, match=r"alert\.areas\[0\]\.geocodes\[0\]\[1\]: forventede tekst"):
        encode_payload(Kind.ALERT, {**body, "areas": [{"desc": "A", "geocodes": [["SAME", 25027]]}]})
    wire[18] = ["VTEC"]  # a name without its value
    with pytest.raises(ProtocolError, match=r"alert\.parameters: expected a flat list"):
        decode_payload(Kind.ALERT, cbor2.dumps(wire, canonical=True))
