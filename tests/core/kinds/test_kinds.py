"""Payload codecs: round trips of every kind, size budgets on real signed frames, and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.errors import ProtocolError
from hub.core.frame import BROADCAST, Kind, Priority, decode_frame
from hub.core.identity import Identity
from hub.core.kinds import SCHEMAS, decode_payload, encode_payload
from hub.core.kinds.catalog import STATUS_TEXT_MAX

NOW = 1_795_000_000

FULL_STATUS = {
    "facility": "Compromised",
    "staffing": "Insufficient",
    "operations": "Adequate",
    "power": "generator",
    "fuel_hours": 9999,
    "water_days": 99,
    "food_days": 99,
    "medicine_days": 99,
    "residents": {"total": 9999, "present": 9999, "power_dependent": 9999, "needing_help": 9999},
    "needs": ["oxygen", "dialysis", "heat", "water", "food", "medicine", "transport", "staff"],
    # the text limit is in bytes; Danish letters cost two, so fill it with them
    "text": "ø" * (STATUS_TEXT_MAX // 2),
    "rollcall": "a1b2c3d4",
}

BODIES: dict[Kind, object] = {
    Kind.TEXT: "Strømmen er gået i hele Aarhus N. Mødes kl. 14 på rådhuset.",
    Kind.SITREP: {
        "number": 3,
        "phase": "Update",
        "incident": "AAR-2026-storm",
        "period_from": NOW - 3600,
        "period_to": NOW,
        "summary": "Stormflod; 40 husstande evakueret.",
        "severity": "Severe",
        "casualties": {"fatalities": 0, "hospitalised": 2, "injured": 5, "missing": 1, "evacuated": 120,
                       "sheltering": 80},
        "actions": ["Sandsække udleveret", "Bus til Ceres Park"],
        "next_contact": NOW + 7200,
    },
    Kind.STATUS: FULL_STATUS,
    Kind.ROLLCALL: {"request": "00ff10ab", "deadline": NOW + 1800, "question": "Meld status inden 30 min"},
    Kind.ALERT: {
        "event": "Stormflod",
        "urgency": "Immediate",
        "severity": "Extreme",
        "certainty": "Observed",
        "headline": "Evakuér kælderetager",
        "description": "Vandstanden stiger 2 m over normal.",
        "area": "Aarhus Ø",
        "instruction": "Gå til 2. sal eller højere.",
        "msg_type": "Update",
        "references": ["00112233445566778899aabbccddeeff"],
        "category": "Met",
        "expires": NOW + 86400,
    },
    Kind.ACK: ["00112233445566778899aabbccddeeff", "ffeeddccbbaa99887766554433221100"],
    Kind.HOP_ACK: ["00112233445566778899aabbccddeeff"],
    Kind.RESOURCE_REQUEST: {"request": "0000beef", "resource": "diesel", "quantity": 400, "unit": "l",
                            "needed_by": NOW + 3 * 3600, "text": "Generator går tør kl. 18"},
    Kind.COMMITMENT: {"request": "0000beef", "resource": "diesel", "quantity": 400, "unit": "l",
                      "arrives_by": NOW + 2 * 3600},
    Kind.READ_RECEIPT: {"message": "00112233445566778899aabbccddeeff", "read_at": NOW, "by": "Vagtleder"},
    Kind.EXERCISE_CONTROL: {"exercise": "0a1b2c3d", "action": "outage", "name": "Strømsvigt",
                            "until": NOW + 5400, "node": "0011223344556677", "link": "internet"},
    Kind.FOLLOWUP_LIST: {"outage": "0000cafe", "started": NOW, "part": 1, "parts": 1,
                         "citizens": [{"id": "0a0b0c0d", "minutes": 90, "equipment": ["oxygen"]},
                                      {"id": "0a0b0c0e", "minutes": 600,
                                       "equipment": ["dialysis", "suction"]}]},
    Kind.VISIT: {"citizen": "0a0b0c0d", "outcome": "needs_oxygen", "at": NOW, "outage": "0000cafe"},
    Kind.CITIZEN_ALARM: {"handheld": "a1b2c3d4", "key": "0011223344556677", "heard": NOW, "port": "text",
                         "text": "Jeg er faldet og kan ikke rejse mig"},
    Kind.LOGBOOK_HEAD: {"seq": 74_112, "hash": "9f" * 32, "at": NOW},
    Kind.EXERCISE_SUMMARY: {
        "exercise": "0a1b2c3d", "from": NOW - 3600, "until": NOW, "final": 1,
        "changes": [{"at": NOW - 1800, "link": "internet", "peer": "00112233aabbccdd", "old": "up",
                     "new": "down", "reason": "simulated"},
                    {"at": NOW - 1700, "link": "mqtt", "old": "down", "new": "up"}],
        "left_out": 3,
        "use": [{"link": "mqtt", "messages": 4, "sends": 5, "bytes": 1320},
                {"link": "lora", "messages": 1, "sends": 1, "bytes": 180, "airtime_ms": 1483},
                {"link": "iridium", "credits": 2}],
    },
}  # fmt: skip


@pytest.mark.parametrize("kind", list(BODIES), ids=lambda k: k.name)
def test_round_trip_every_kind(kind: Kind) -> None:
    payload = encode_payload(kind, BODIES[kind])
    decoded = decode_payload(kind, payload)
    assert decoded == BODIES[kind]
    json.dumps(decoded)  # the API serves it as is
    assert encode_payload(kind, decoded) == payload


def test_every_structured_kind_is_covered() -> None:
    assert set(SCHEMAS) <= set(BODIES)


@pytest.mark.parametrize("kind", [k for k in BODIES if k in SCHEMAS], ids=lambda k: k.name)
def test_truncated_or_padded_payloads_are_refused(kind: Kind) -> None:
    payload = encode_payload(kind, BODIES[kind])
    for cut in range(len(payload)):
        with pytest.raises(ProtocolError):
            decode_payload(kind, payload[:cut])
    with pytest.raises(ProtocolError, match="trailing"):
        decode_payload(kind, payload + b"\x00")


def test_full_status_frame_fits_one_lora_packet() -> None:
    sender = Identity.generate("Plejecenter Lindely", "care-home")
    payload = encode_payload(Kind.STATUS, FULL_STATUS)
    frame = sender.sign(
        Kind.STATUS, BROADCAST, payload, created=NOW, ttl_minutes=720, priority=Priority.URGENT
    )
    wire = frame.encode()
    assert len(wire) <= 200, f"full status frame is {len(wire)} bytes"
    assert decode_payload(Kind.STATUS, decode_frame(wire).payload) == FULL_STATUS


def test_minimal_status_frame_fits_one_sds() -> None:
    sender = Identity.generate("Plejecenter Lindely", "care-home")
    payload = encode_payload(Kind.STATUS, {"facility": "Normal", "rollcall": "a1b2c3d4"})
    frame = sender.sign(Kind.STATUS, BROADCAST, payload, created=NOW, ttl_minutes=60)
    assert len(frame.encode()) <= 140


def test_status_text_limit_counts_bytes_not_characters() -> None:
    with pytest.raises(ValueError, match=r"status\.text: 50 bytes UTF-8 er over grænsen på 48"):
        encode_payload(Kind.STATUS, {"facility": "Normal", "text": "æ" * 25})


def test_enum_and_flag_names_match_without_case_and_decode_canonical() -> None:
    payload = encode_payload(Kind.STATUS, {"facility": "evacuating", "needs": ["Water", "OXYGEN"]})
    assert decode_payload(Kind.STATUS, payload) == {"facility": "Evacuating", "needs": ["oxygen", "water"]}


def test_iso_times_with_offset_are_accepted() -> None:
    payload = encode_payload(Kind.ROLLCALL, {"request": "00000001", "deadline": "2026-11-24T12:00:00+01:00"})
    assert decode_payload(Kind.ROLLCALL, payload) == {
        "request": "00000001",
        "deadline": int(datetime(2026, 11, 24, 11, 0, tzinfo=UTC).timestamp()),
    }


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        (Kind.TEXT, {"text": "hej"}, r"body: en tekstbesked er en tekst"),
        (Kind.TEXT, "\ud800", r"body: ikke gyldig Unicode"),
        (Kind.STATUS, {}, r"status\.facility: feltet mangler"),
        (Kind.STATUS, "OK", r"status: forventede et objekt"),
        (Kind.STATUS, {"facility": "Fine"}, r"status\.facility: 'Fine' er ikke en af Normal"),
        (Kind.STATUS, {"facility": "Normal", "fuel_hours": -1}, r"fuel_hours: -1 ligger uden for 0\.\.9999"),
        (Kind.STATUS, {"facility": "Normal", "fuel_hours": True}, r"fuel_hours: forventede et heltal"),
        (Kind.STATUS, {"facility": "Normal", "fuel_hours": 1.5}, r"fuel_hours: forventede et heltal"),
        (Kind.STATUS, {"facility": "Normal", "needs": ["beer"]}, r"status\.needs: 'beer' er ikke en af"),
        (Kind.STATUS, {"facility": "Normal", "needs": "water"}, r"status\.needs: forventede en liste"),
        (Kind.STATUS, {"facility": "Normal", "residents": {"total": "many"}},
         r"status\.residents\.total: forventede et heltal"),
        (Kind.STATUS, {"facility": "Normal", "colour": "red"}, r"status: ukendte felter colour"),
        (Kind.STATUS, {"facility": "Normal", "rollcall": "xyz"}, r"status\.rollcall: forventede 8 hex-cifre"),
        (Kind.ROLLCALL, {"request": "00000001", "deadline": "tomorrow"},
         r"rollcall\.deadline: 'tomorrow' er ikke et ISO 8601-tidspunkt"),
        (Kind.ROLLCALL, {"request": "00000001", "deadline": "2026-11-24T12:00:00"},
         r"rollcall\.deadline: .* mangler forskydning fra UTC"),
        (Kind.SITREP, {"number": 1, "phase": "Initial", "summary": "x", "actions": ["ok", 3]},
         r"sitrep\.actions\[1\]: forventede tekst"),
        (Kind.ALERT, {"event": "x", "urgency": "Now", "severity": "Minor", "certainty": "Likely"},
         r"alert\.urgency: 'Now' er ikke en af"),
        (Kind.ALERT, {"event": "x", "urgency": "Past", "severity": "Minor", "certainty": "Likely",
                      "references": ["00"]}, r"alert\.references\[0\]: forventede 32 hex-cifre"),
        (Kind.ACK, [], r"ikke-tom liste"),
        (Kind.ACK, ["zz"], r"body\[0\]: forventede et besked-id"),
        (Kind.ROSTER, {}, r"roster-beskeder laves ikke ud fra JSON"),
        (Kind.SITREP, {"number": 1, "phase": "Initial", "summary": "x" * 1501}, r"summary: 1501 bytes"),
    ],
)  # fmt: skip
def test_bad_bodies_name_the_field(kind: Kind, body: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_payload(kind, body)


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        (Kind.TEXT, b"\xff\xfe", "not UTF-8"),
        (Kind.ACK, b"", "is not a list of ids"),
        (Kind.HOP_ACK, b"\x00" * 17, "is not a list of ids"),
        (Kind.STATUS, b"", "not valid CBOR"),
        (Kind.STATUS, cbor2.dumps([1, 2]), "expected a map"),
        (Kind.STATUS, cbor2.dumps({2: 0}), r"facility: required field is missing"),
        (Kind.STATUS, cbor2.dumps({1: 9}), r"facility: unknown value 9"),
        (Kind.STATUS, cbor2.dumps({1: 0, 10: 256}), "bad flag mask"),
        (Kind.STATUS, cbor2.dumps({1: 0, 5: 1.5}), "unexpected CBOR item of type float"),
        (Kind.STATUS, cbor2.dumps({1: 0, 11: "x" * 49}), "text of at most 48 bytes"),
        (Kind.STATUS, cbor2.dumps({1: 0, 12: b"abc"}), "4-byte identifier"),
        (Kind.STATUS, cbor2.dumps({1: True}), "simple value"),
        (Kind.STATUS, cbor2.dumps({"facility": 0}), "not an integer"),
        (Kind.STATUS, b"\xa2\x01\x00\x01\x01", "not valid CBOR"),  # duplicate key
        (Kind.STATUS, b"\xbf\x01\x00\xff", "not valid CBOR"),  # indefinite-length map
        (Kind.STATUS, b"\xa1\x01\xc1\x00", "unexpected CBOR item"),  # tagged date
        (Kind.STATUS, b"\x81" * 50, "not valid CBOR"),  # nesting bomb
        (Kind.STATUS, b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff", "not valid CBOR"),  # absurd length
    ],
)
def test_bad_payloads_raise_protocol_error(kind: Kind, payload: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_payload(kind, payload)


def test_unknown_wire_keys_from_newer_hubs_are_skipped() -> None:
    assert decode_payload(Kind.STATUS, cbor2.dumps({1: 0, 23: "future field"})) == {"facility": "Normal"}


def test_roster_payloads_decode_to_hex() -> None:
    assert decode_payload(Kind.ROSTER, b"\x01\x02") == "0102"


@given(kind=st.sampled_from(list(Kind)), payload=st.binary(max_size=300))
def test_any_bytes_decode_or_raise_protocol_error(kind: Kind, payload: bytes) -> None:
    try:
        value = decode_payload(kind, payload)
    except ProtocolError:
        return
    json.dumps(value)


@given(
    kind=st.sampled_from(sorted(SCHEMAS)),
    wire=st.recursive(
        st.integers(min_value=-(2**64), max_value=2**64) | st.text(max_size=20) | st.binary(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.integers(0, 24), inner, max_size=6),
        max_leaves=12,
    ),
)
def test_any_well_formed_cbor_decodes_or_raises_protocol_error(kind: Kind, wire: object) -> None:
    # random bytes are rarely a CBOR map; this reaches the schema checks with plausible structures
    try:
        value = decode_payload(kind, cbor2.dumps(wire))
    except ProtocolError:
        return
    assert encode_payload(kind, value) is not None
