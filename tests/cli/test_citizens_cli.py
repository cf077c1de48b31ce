"""``beredt citizens`` on files a care system really exports: Windows-1252 from a Danish spreadsheet,
a file that is not there, a visit for someone on no list; each with a clear message and exit code."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hub.citizens.records import parse_csv, to_csv
from hub.citizens.sample import sample_citizens
from hub.cli.main import main


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "beredt.toml"
    path.write_text('[node]\nname = "Aarhus krisestab"\nrole = "staff"\ndata_dir = "data"\n')
    return path


def test_a_windows_1252_export_imports_with_a_note(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    people = sample_citizens(5, ["Nørre Sogn", "Århus Ø"])
    export = config.parent / "eksport.csv"
    export.write_bytes(to_csv(people).encode("cp1252"))
    assert main(["citizens", "import", str(export), "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "Importeret: 5 nye" in out and "Windows-1252" in err
    assert main(["citizens", "list", "--register", "-c", str(config)]) == 0
    listed = capsys.readouterr().out
    assert all(p.name in listed for p in people) and "Nørre Sogn" in listed


def test_sample_export_and_a_report_of_rejected_rows(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["citizens", "sample", "--count", "12", "--district", "Nord", "--district", "Syd"]) == 0
    sample = capsys.readouterr().out
    people = [c for _, c in parse_csv(sample).accepted]
    assert len(people) == 12 and all(p.cpr.startswith("00") for p in people)
    bad = config.parent / "fejl.csv"
    bad.write_text(sample + "Ny Person;999999-9999;Vej 1;Nord;ilt;3;;\n")
    assert main(["citizens", "import", str(bad), "-c", str(config)]) == 1  # the good rows are in
    out = capsys.readouterr().out
    assert "Importeret: 12 nye, 0 opdaterede, 1 afvist" in out and "linje 14: cpr:" in out
    assert main(["citizens", "export", "--district", "Nord", "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    assert [c for _, c in parse_csv(out).accepted] == [
        p for p in sorted(people, key=lambda p: p.id) if p.district == "Nord"
    ]
    assert "6 borgere eksporteret" in err


def test_mistakes_get_a_message_and_exit_2(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["citizens", "import", str(config.parent / "findes-ikke.csv"), "-c", str(config)]) == 2
    assert "kan ikke læse" in capsys.readouterr().err
    assert main(["citizens", "list", "-c", str(config)]) == 2  # no register yet: nothing to open
    assert "beredt citizens import" in capsys.readouterr().err
    export = config.parent / "eksport.csv"
    export.write_text(to_csv(sample_citizens(3, ["Nord"])))
    assert main(["citizens", "import", str(export), "-c", str(config)]) == 0
    assert main(["citizens", "visit", "0a0b0c0d", "seen_ok", "-c", str(config)]) == 2
    assert "ikke på nogen igangværende opfølgningsliste" in capsys.readouterr().err
    assert main(["citizens", "outage", "-c", str(config)]) == 2
    assert "mindst ét distrikt" in capsys.readouterr().err


def test_erasing_a_person_points_at_their_handheld(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    people = sample_citizens(2, ["Nord"])
    export = config.parent / "eksport.csv"
    export.write_text(to_csv(people))
    assert main(["citizens", "import", str(export), "-c", str(config)]) == 0
    key = base64.b64encode(bytes(range(32))).decode()
    (config.parent / "data" / "handhelds.toml").write_text(
        "".join(
            f'[[handheld]]\nnode = "!0000000{n}"\npublic_key = "{key}"\ncitizen = "{p.id}"\n'
            for n, p in enumerate(people)
        )
    )
    capsys.readouterr()
    assert main(["citizens", "erase", people[1].id, "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "er slettet" in out
    assert "håndsenderen !00000001" in err and "!00000000" not in err


def test_an_evacuation_needs_a_list_a_centre_and_the_running_hub(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    people = sample_citizens(2, ["Nord"])
    export = config.parent / "eksport.csv"
    export.write_text(to_csv(people))
    assert main(["citizens", "import", str(export), "-c", str(config)]) == 0
    assert main(["citizens", "evacuate", people[0].id, "-c", str(config)]) == 2
    assert "ingen af de valgte borgere er på en opfølgningsliste" in capsys.readouterr().err
    assert main(["citizens", "outage", "--district", "Nord", "-c", str(config)]) == 0
    assert main(["citizens", "evacuate", people[0].id, "-c", str(config)]) == 2
    assert "intet evakueringscenter er sat op for Nord" in capsys.readouterr().err
    centre = "0123456789abcdef"
    assert main(["citizens", "evacuate", people[0].id, "--centre", centre, "-c", str(config)]) != 0
    assert "hub" in capsys.readouterr().err  # no hub runs here: it says so, and nothing is logged as sent
    assert main(["citizens", "log", "-c", str(config)]) == 0
    assert "evakuering anmodet" not in capsys.readouterr().out


def test_an_outage_says_who_no_team_will_be_sent_and_a_district_with_nobody(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config.write_text(config.read_text() + '[citizens.teams]\n"Nord" = ["0123456789abcdef"]\n')
    people = sample_citizens(6, ["Nord", "Syd"])
    export = config.parent / "eksport.csv"
    export.write_text(to_csv(people))
    assert main(["citizens", "import", str(export), "-c", str(config)]) == 0
    capsys.readouterr()
    assert main(["citizens", "outage", "--district", "nord", "--district", "Syd", "--district", "Nort",
                 "-c", str(config)]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    assert "6 borgere på opfølgningslisten" in out
    assert "intet hold for distrikt Syd i [citizens.teams]: 3 borgere får ingen liste sendt" in err
    assert "ingen borgere i registret i distrikt Nort" in err  # a misspelling finds nobody
    assert "Nord" not in err and "distrikt nord" not in err  # a district with its team: nothing to say
    syd = next(p for p in people if p.district == "Syd")
    assert main(["citizens", "outage", "--address", syd.address, "-c", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "1 borger på opfølgningslisten" in out and ": 1 borger får ingen liste sendt" in err
