"""The handheld register: citizens' and teams' handhelds, teams' TETRA terminals, and what it refuses
(in Danish: the person who edits the file reads the error)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hub.core.errors import ConfigError
from hub.core.handhelds import Handheld, load_handhelds, parse_handhelds, parse_terminals

KEY = base64.b64encode(b"\x11" * 32).decode()


def test_a_handheld_is_a_citizens_or_a_teams_and_terminals_name_their_team() -> None:
    data = {
        "handheld": [
            {"node": "!000000d1", "public_key": KEY, "citizen": "0a0b0c0d"},
            {"node": "!000000e1", "public_key": KEY, "team": " Nord "},
        ],
        "terminal": [{"issi": "02001", "team": "Nord"}, {"issi": 2002, "team": "Syd"}],
    }
    assert parse_handhelds(data, file="h.toml") == {
        0xD1: Handheld(0xD1, b"\x11" * 32, citizen="0a0b0c0d"),
        0xE1: Handheld(0xE1, b"\x11" * 32, team="Nord"),
    }
    assert parse_terminals(data, file="h.toml") == {"2001": "Nord", "2002": "Syd"}
    assert parse_terminals({}, file="h.toml") == {}


@pytest.mark.parametrize(
    ("handhelds", "says"),
    [
        (
            [{"node": "!000000d1", "public_key": KEY, "citizen": "c", "team": "Nord"}],
            "et håndsæt hører til en borger \\(citizen\\) eller et team \\(team\\), ikke begge",
        ),
        ([{"node": "!000000d1", "public_key": KEY, "team": ""}], "team: forventede teamets distrikt"),
        ([{"node": "!000000d1", "public_key": KEY, "citizen": 7}], "citizen: forventede borgerens id"),
        ([{"node": "d1", "public_key": KEY}], "node: forventede et node-id som !a1b2c3d4"),
        ([{"node": "!000000d1", "public_key": "kort"}], "public_key: forventede håndsættets offentlige"),
        ([{"node": "!000000d1", "public_key": KEY, "telefon": "1"}], "ukendte nøgler \\['telefon'\\]"),
        ([{"node": "!000000d1", "public_key": KEY}] * 2, "!000000d1 står der to gange"),
        ("x", "forventede \\[\\[handheld\\]\\]-tabeller"),
    ],
)
def test_what_the_register_refuses_of_handhelds(handhelds: object, says: str) -> None:
    with pytest.raises(ConfigError, match=f"^h.toml: handheld.*: {says}"):
        parse_handhelds({"handheld": handhelds}, file="h.toml")


@pytest.mark.parametrize(
    ("terminals", "says"),
    [
        ([{"issi": "12345678901", "team": "Nord"}], "issi: forventede terminalens ISSI \\(1-8 cifre\\)"),
        ([{"issi": "0", "team": "Nord"}], "issi: forventede terminalens ISSI"),
        ([{"issi": "2001"}], "forventede en \\[\\[terminal\\]\\]-tabel med netop issi og team"),
        (
            [{"issi": "2001", "team": "Nord"}, {"issi": "02001", "team": "Syd"}],
            "ISSI 02001 står der to gange",
        ),
        ([{"issi": "2001", "team": " "}], "team: forventede teamets distrikt"),
    ],
)
def test_what_the_register_refuses_of_terminals(terminals: object, says: str) -> None:
    with pytest.raises(ConfigError, match=f"^h.toml: terminal.*: {says}"):
        parse_terminals({"terminal": terminals}, file="h.toml")


def test_an_unknown_table_or_a_broken_file_is_named_in_danish(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^h.toml: ukendte nøgler \['phone'\]; forventede"):
        parse_handhelds({"phone": []}, file="h.toml")
    broken = tmp_path / "handhelds.toml"
    broken.write_text('[[handheld]]\nnode = "!000000d1\n')
    with pytest.raises(ConfigError, match="ikke gyldig TOML i linje 2, kolonne"):
        load_handhelds(broken)
    assert load_handhelds(tmp_path / "absent.toml") == {}
    folder = tmp_path / "folder.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match="håndsætregistret kan ikke læses: det er en mappe, ikke en fil"):
        load_handhelds(folder)
