"""The coded visit a nurse types on a handheld: every code of the table, the spellings allowed, and the
Danish answers to what is not a code."""

from __future__ import annotations

import pytest

from hub.citizens.followup import OUTCOME_DANISH
from hub.citizens.visit_codes import CODES, CodedVisit, parse_code
from hub.core.errors import UsageError
from hub.core.kinds.followup import OUTCOME


def test_every_code_is_an_outcome_and_every_outcome_has_a_code() -> None:
    assert set(CODES.values()) == set(OUTCOME.names) == set(OUTCOME_DANISH)


@pytest.mark.parametrize(
    ("text", "visit"),
    [
        ("B 0a1b2c3d OK", CodedVisit("0a1b2c3d", "seen_ok")),
        ("b 0A1B2C3D ilt", CodedVisit("0a1b2c3d", "needs_oxygen")),
        ("B 0042 STROEM", CodedVisit("00000042", "needs_power")),
        ("B 42 strøm", CodedVisit("00000042", "needs_power")),
        ("B C-0042 TRANSPORT", CodedVisit("00000042", "needs_transport")),
        ("B0042 flyttet  plejehjem", CodedVisit("00000042", "moved_care_home")),
        ("  B 0042 PLEJEHJEM ", CodedVisit("00000042", "moved_care_home")),
        ("B 0042 HOSPITAL", CodedVisit("00000042", "moved_hospital")),
        ("B 0042 Flyttet Hospital", CodedVisit("00000042", "moved_hospital")),
        ("B 0042 IKKE HJEMME", CodedVisit("00000042", "not_home")),
        ("B 0042 ikkehjemme", CodedVisit("00000042", "not_home")),
    ],
)
def test_codes_are_read_whatever_the_case_spacing_and_leading_zeros(text: str, visit: CodedVisit) -> None:
    assert parse_code(text) == visit


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Hej", "Ukendt besked. Skriv: B <borger-id> <kode>, fx B 0a1b2c3d OK"),
        ("B 0042", "Ukendt besked. Skriv: B <borger-id> <kode>, fx B 0a1b2c3d OK"),
        ("X 0042 OK", "Ukendt besked. Skriv: B <borger-id> <kode>, fx B 0a1b2c3d OK"),
        (
            "B 0x42 OK",
            "0X42 er ikke et borger-id (8 hex-cifre). Skriv: B <borger-id> <kode>, fx B 0a1b2c3d OK",
        ),
        (
            "B 123456789 OK",
            "123456789 er ikke et borger-id (8 hex-cifre). Skriv: B <borger-id> <kode>, fx B 0a1b2c3d OK",
        ),
        (
            "B 0042 FOO",
            "Ukendt kode FOO. Koder: OK, STROEM, ILT, TRANSPORT, PLEJEHJEM, HOSPITAL, IKKE HJEMME",
        ),
        (
            "B 0042 OK TAK",
            "Ukendt kode OK TAK. Koder: OK, STROEM, ILT, TRANSPORT, PLEJEHJEM, HOSPITAL, IKKE HJEMME",
        ),
    ],
)
def test_what_is_not_a_code_gets_a_short_danish_answer(text: str, answer: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_code(text)
    assert str(caught.value) == answer
    assert len(answer.encode()) <= 100  # one Meshtastic text, one SDS
