"""The handheld register: citizens' and teams' handhelds, teams' TETRA terminals, and what it refuses."""

from __future__ import annotations

import base64

import pytest

from hub.core.errors import ConfigError
from hub.core.handhelds import Handheld, parse_handhelds, parse_terminals

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
    ("data", "says"),
    [
        (
            {"handheld": [{"node": "!000000d1", "public_key": KEY, "citizen": "c", "team": "Nord"}]},
            "not both",
        ),
        ({"handheld": [{"node": "!000000d1", "public_key": KEY, "team": ""}]}, "team:"),
        ({"terminal": [{"issi": "12345678901", "team": "Nord"}]}, "issi:"),
        ({"terminal": [{"issi": "0", "team": "Nord"}]}, "issi:"),
        ({"terminal": [{"issi": "2001"}]}, "issi and team"),
        ({"terminal": [{"issi": "2001", "team": "Nord"}, {"issi": "02001", "team": "Syd"}]}, "twice"),
        ({"phone": []}, "unknown keys"),
    ],
)
def test_what_the_register_refuses(data: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_handhelds(data, file="h.toml")
        parse_terminals(data, file="h.toml")
