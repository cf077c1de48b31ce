"""Log book summaries of received messages, one line per kind."""

from __future__ import annotations

import pytest

from hub.console.messages import received_line, summary, typed_text


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("text", "Strømmen er tilbage", "Strømmen er tilbage"),
        ("status", {"facility": "Compromised", "needs": ["oxygen", "heat"], "rollcall": "a1b2c3d4"},
         "påvirket, mangler ilt, varme (statusrunde a1b2c3d4)"),
        ("status", {"facility": "Normal"}, "alt OK"),
        ("rollcall", {"request": "a1b2c3d4", "deadline": 0, "question": "Meld status"},
         "Meld status (statusrunde a1b2c3d4)"),
        ("alert", {"event": "Stormflod", "headline": "Evakuér kældre"}, "Evakuér kældre"),
        ("alert", {"event": "Stormflod"}, "Stormflod"),
        ("sitrep", {"number": 2, "phase": "Update", "summary": "Rolig nat"}, "nr. 2 (opdatering): Rolig nat"),
        ("read_receipt", {"message": "00" * 16, "by": "Nattevagt"},
         f"læst og forstået af Nattevagt: {'00' * 16}"),
        ("resource_request", {"request": "0000beef", "resource": "diesel", "quantity": 400, "unit": "l"},
         "400 l diesel"),
        ("commitment", {"request": "0000beef", "resource": "staff", "quantity": 2}, "2 personale"),
        ("status", {"undecodable": "bad CBOR"}, "(kan ikke læses)"),
        ("roster", "0102", "0102"),
    ],
)  # fmt: skip
def test_summary(kind: str, body: object, expected: str) -> None:
    assert summary({"kind": kind, "body": body}) == expected


def test_reports_use_danish_time_with_its_offset() -> None:
    from datetime import datetime

    from hub.console.messages import local_zone

    winter = datetime(2026, 11, 24, 12, 0, tzinfo=local_zone()).isoformat()
    assert winter.endswith("+01:00")


@pytest.mark.parametrize(
    ("kind", "body", "logged", "kept_out"),
    [
        ("text", "Fru Jensen på stue 4 er faldet", "besked fra Lindely via internet: 30 tegn", "Jensen"),
        ("citizen_alarm", {"handheld": "a1b2c3d4", "port": "text", "text": "Jeg er faldet"},
         "håndsender !a1b2c3d4 (besked)", "faldet"),
        ("read_receipt", {"message": "ab" * 16, "by": "Nattevagt Birgit"}, "læst og forstået: " + "ab" * 16,
         "Birgit"),
        ("status", {"facility": "Compromised", "needs": ["heat"], "text": "Hr. Hansen har feber"},
         "påvirket, mangler varme", "Hansen"),
        ("sitrep", {"number": 3, "phase": "Update", "summary": "Karen Holm (CPR 010150-1234) på hjemmeilt"},
         "situationsrapport fra Lindely via internet: nr. 3 (opdatering), resumé på 41 tegn", "Holm"),
        ("rollcall", {"request": "a1b2c3d4", "deadline": 0, "question": "Er hr. Jensen kommet med?"},
         "spørgsmål på 25 tegn (statusrunde a1b2c3d4)", "Jensen"),
        ("alert", {"event": "Savnet person", "headline": "Eftersøgning: Karl Holm, 84 år"},
         "Savnet person: overskrift på 30 tegn", "Holm"),
    ],
)  # fmt: skip
def test_the_log_book_line_of_a_received_message_holds_no_personal_text(
    kind: str, body: object, logged: str, kept_out: str
) -> None:
    line = received_line(
        {"kind": kind, "from_name": "Lindely", "via_kind": "internet", "body": body, "id": "cd" * 16}
    )
    assert logged in line and kept_out not in line and line.endswith(f"[id {'cd' * 16}]")


def test_a_question_or_headline_kept_beside_the_book_stands_as_its_reference() -> None:
    item = {"kind": "alert", "from_name": "DMI", "via_kind": "internet", "id": "cd" * 16,
            "body": {"event": "Savnet person", "headline": "Eftersøgning: Karl Holm, 84 år"}}  # fmt: skip
    assert typed_text(item) == "Eftersøgning: Karl Holm, 84 år"
    kept = "tekst " + "ab" * 16 + " (30 tegn)"
    assert f"Savnet person: {kept} [id" in received_line(item, kept)
    quiet = {**item, "body": {"event": "Stormflod"}}
    assert typed_text(quiet) is None and "varsel fra DMI via internet: Stormflod" in received_line(quiet)
