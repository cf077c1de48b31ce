"""Reading the care system's CSV export: good rows in, every bad row reported by line and field."""

from __future__ import annotations

import pytest

from hub.citizens.records import normalise_cpr, parse_csv, to_csv
from hub.citizens.sample import sample_citizens

HEADER = "navn;cpr;adresse;distrikt;udstyr;batteritimer;nødplan;kontaktperson\n"
GOOD = "Karen Jensen;000150-1234;Skovvej 3, Nord;Nord;ilt+sug;4,5;ilt-flasker;Jens Jensen 20304050\n"


def test_good_and_bad_rows_are_sorted_out_with_reasons() -> None:
    text = (
        HEADER
        + GOOD
        + (
            "Poul Hansen;321350-1111;Engvej 1;Syd;ilt;3;;\n"  # line 3: no such date
            "Inge Nielsen;000250-2222;Engvej 2;Syd;brødrister;3;;\n"  # line 4: unknown equipment
            "Erik Larsen;000350-3333;;Syd;dialyse;-1;;\n"  # line 5: no address, negative hours
            "Ruth Madsen;000150-1234;Engvej 9;Syd;respirator;2;;\n"  # line 6: same CPR as line 2
            "Ole Berg;3105501234;Kirkevej 1;Syd;respirator;12;;\n"  # line 7: good, dash left out
        )
    )
    parsed = parse_csv(text)
    assert [(line, c.name) for line, c in parsed.accepted] == [(2, "Karen Jensen"), (7, "Ole Berg")]
    karen = parsed.accepted[0][1]
    assert karen.equipment == ("oxygen", "suction") and karen.battery_hours == 4.5
    assert parsed.accepted[1][1].cpr == "310550-1234"
    reasons = {r.line: r.problems for r in parsed.rejected}
    assert set(reasons) == {3, 4, 5, 6}
    assert reasons[3][0].startswith("cpr:")
    assert reasons[4][0].startswith("udstyr:")
    assert [p.split(":")[0] for p in reasons[5]] == ["adresse", "batteritimer"]
    assert "linje 2" in reasons[6][0]
    # the report never repeats a value: no name, CPR number or address in it
    report = " ".join(str(r) for r in parsed.rejected)
    for value in ("Poul", "321350", "Engvej", "brødrister"):
        assert value not in report


def test_comma_separated_file_and_missing_columns() -> None:
    line = 'Karen Jensen,000150-1234,"Skovvej 3, Nord",Nord,ilt sug,"4,5",,\n'
    parsed = parse_csv(HEADER.replace(";", ",") + line)
    assert len(parsed.accepted) == 1 and not parsed.rejected
    with pytest.raises(ValueError, match="mangler kolonne"):
        parse_csv("navn;cpr\nKaren;000150-1234\n")


def test_cpr_forms() -> None:
    assert normalise_cpr("290200-1234") == "290200-1234"  # 2000 was a leap year
    assert normalise_cpr("000000-1234") is None  # day 00 needs a real month
    assert normalise_cpr("12345") is None


def test_sample_register_is_fictitious_and_imports_cleanly() -> None:
    people = sample_citizens(40, ["Nord", "Syd"])
    assert all(p.cpr.startswith("00") for p in people)  # day 00: no real person has it
    parsed = parse_csv(to_csv(people))
    assert not parsed.rejected
    assert [c for _, c in parsed.accepted] == people
