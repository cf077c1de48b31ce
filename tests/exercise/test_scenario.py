"""The scenario format: every field read, every mistake refused with the key that is wrong."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub.core.errors import ConfigError, UsageError
from hub.core.frame import Priority
from hub.exercise.scenario import InjectKind, format_duration, load, parse, parse_duration

ZONE = ZoneInfo("Europe/Copenhagen")
SAMPLE = Path(__file__).parents[2] / "config" / "exercises" / "power-outage.toml"

MINIMAL = """
name = "Øvelse"
duration = "4h"
[participants]
groups = ["plejehjem"]
"""


def with_injects(injects: str) -> str:
    return MINIMAL + injects


def test_the_sample_scenario_parses_with_six_or_more_injects_and_an_outage() -> None:
    scenario, text = load(str(SAMPLE))
    assert "Strømsvigt" in scenario.name and text.startswith("#")
    assert len(scenario.injects) >= 6
    kinds = {i.kind for i in scenario.injects}
    assert kinds == {InjectKind.MESSAGE, InjectKind.ROLLCALL, InjectKind.OUTAGE}
    assert scenario.targets.rollcall_answer == 15 * 60 and scenario.targets.first_status == 30 * 60
    outage = next(i for i in scenario.injects if i.kind == InjectKind.OUTAGE)
    assert (outage.hub, outage.link) == ("Plejehjemmet Solbakken", "internet")  # a home of 'beredt demo'
    assert scenario.participants.groups == ("plejehjem",)
    start = datetime(2026, 12, 6, 8, 0, tzinfo=ZONE).timestamp()
    plan = scenario.timeline(start, ZONE)
    assert [p.due for p in plan] == sorted(p.due for p in plan)
    placed = next(p for p in plan if p.inject is outage)
    assert (placed.due - start, placed.ends) == (300, start + 300 + 5400)


def test_every_inject_field_is_read() -> None:
    scenario = parse(
        with_injects("""
[[injects]]
at = "1h30m"
kind = "message"
text = "Strømmen er gået i hele distrikt Syd"
groups = ["plejehjem"]
nodes = ["Kommune"]
priority = "life-safety"
expect = ["Status", "Brændstof"]
deadline = "30m"
""")
    )
    (inject,) = scenario.injects
    assert inject.at.offset == 5400 and inject.priority == Priority.LIFE_SAFETY
    assert inject.audience.groups == ("plejehjem",) and inject.audience.nodes == ("Kommune",)
    assert inject.expect == ("Status", "Brændstof") and inject.deadline == 1800
    assert inject.describe() == "Besked: Strømmen er gået i hele distrikt Syd"


def test_clock_times_resolve_in_danish_time_and_a_rollcall_gets_a_default_deadline() -> None:
    scenario = parse(
        with_injects("""
[[injects]]
at = "10:30"
kind = "rollcall"
text = "Hvordan går det?"

[[injects]]
at = "10:30"
kind = "outage"
hub = "Solbakken"
link = "internet"
until = "12:00"
""")
    )
    rollcall, _ = scenario.injects
    assert rollcall.deadline == 15 * 60
    start = datetime(2026, 7, 1, 9, 0, tzinfo=ZONE).timestamp()
    plan = scenario.timeline(start, ZONE)
    assert datetime.fromtimestamp(plan[0].due, UTC).hour == 8  # 10:30 summer time is 08:30 UTC
    assert plan[1].ends is not None and plan[1].ends - plan[1].due == 5400
    with pytest.raises(UsageError, match="uden for øvelsen"):
        scenario.timeline(datetime(2026, 7, 1, 11, 0, tzinfo=ZONE).timestamp(), ZONE)


def test_an_outage_over_midnight_ends_the_next_day() -> None:
    scenario = parse(
        MINIMAL.replace('"4h"', '"1d"')
        + """
[[injects]]
at = "22:00"
kind = "outage"
hub = "Solbakken"
link = "lora"
duration = "3h"
"""
    )
    start = datetime(2026, 12, 6, 21, 0, tzinfo=ZONE).timestamp()
    (planned,) = scenario.timeline(start, ZONE)
    assert planned.ends is not None and planned.ends - planned.due == 3 * 3600
    assert planned.inject.describe(planned.ends, ZONE) == "Simuleret udfald: lora hos Solbakken til kl. 01:00"


@pytest.mark.parametrize(
    ("injects", "key", "says"),
    [
        ('[[injects]]\nat = "1h"\ntext = "x"\n', "injects[1].kind", "mangler"),
        ('[[injects]]\nkind = "message"\ntext = "x"\n', "injects[1].at", "mangler"),
        ('[[injects]]\nat = 90\nkind = "message"\ntext = "x"\n', "injects[1].at", "forskydning"),
        ('[[injects]]\nat = "1h"\nkind = "mail"\ntext = "x"\n', "injects[1].kind", "en af"),
        ('[[injects]]\nat = "1h"\nkind = "message"\n', "injects[1].text", "mangler"),
        (
            '[[injects]]\nat = "1h"\nkind = "message"\ntext = "x"\ntxet = 1\n',
            "injects[1].txet",
            "ukendt nøgle; mente du 'text'",
        ),
        (
            '[[injects]]\nat = "1h"\nkind = "message"\ntext = "x"\ngroups = ["andre"]\n',
            "groups",
            "ikke blandt",
        ),
        (
            '[[injects]]\nat = "1h"\nkind = "rollcall"\ntext = "' + "x" * 191 + '"\n',
            "text",
            "højst 190 tegn for en statusrunde",
        ),
        ('[[injects]]\nat = "1h"\nkind = "outage"\nhub = "A"\nlink = "internet"\n', "until", "angiv enten"),
        ('[[injects]]\nat = "1h"\nkind = "message"\ntext = "x"\ndeadline = "10 min"\n', "deadline", "90m"),
    ],
)
def test_mistakes_name_the_key(injects: str, key: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as caught:
        parse(with_injects(injects), file="s.toml")
    assert caught.value.key is not None and key in caught.value.key and caught.value.file == "s.toml"


def test_the_top_level_is_checked() -> None:
    with pytest.raises(ConfigError, match="name"):
        parse('duration = "1h"\n[participants]\nnodes = ["A"]\n[[injects]]\n')
    with pytest.raises(ConfigError, match="participants"):
        parse('name = "x"\nduration = "1h"\n[[injects]]\nat = "0m"\nkind = "message"\ntext = "x"\n')
    with pytest.raises(ConfigError, match="ikke gyldig TOML"):
        parse("name = ")
    with pytest.raises(ConfigError, match="duration"):
        parse(MINIMAL.replace('"4h"', '"0m"'))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('name = "Øvelse\nduration = "4h"\n', "ikke gyldig TOML i linje 1, kolonne 15; ret syntaksen dér"),
        ("name = ", "ikke gyldig TOML ved filens slutning; ret syntaksen dér"),
    ],
)
def test_a_toml_mistake_is_placed_in_danish(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text, file="s.toml")
    assert says in str(caught.value) and "Illegal" not in str(caught.value)
    assert "Expected" not in str(caught.value) and "line" not in str(caught.value)


def test_an_unreadable_scenario_file_is_said_in_danish(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(str(tmp_path / "mangler.toml"))
    assert "kan ikke læse scenariet: filen findes ikke" in str(caught.value)
    assert "No such" not in str(caught.value)
    with pytest.raises(ConfigError, match="kan ikke læse scenariet: det er en mappe, ikke en fil"):
        load(str(tmp_path))
    (tmp_path / "latin1.toml").write_bytes('name = "Øvelse"'.encode("latin-1"))
    with pytest.raises(ConfigError, match="ikke UTF-8"):
        load(str(tmp_path / "latin1.toml"))


def test_durations_round_trip() -> None:
    for text, seconds in [("90m", 5400), ("1h30m", 5400), ("2d", 172800), ("45s", 45), ("1h0m5s", 3605)]:
        assert parse_duration(text) == seconds
        assert parse_duration(format_duration(seconds)) == seconds
    for bad in ["", "90", "1m1h", "h"]:
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_the_drill_sample_names_the_drills_hubs_and_links() -> None:
    from drill.topology import SITES

    scenario, _ = load(str(SAMPLE.with_name("drill.toml")))
    names = {site.name for site in SITES}
    assert set(scenario.participants.nodes) <= names and len(scenario.injects) >= 6
    outages = [i for i in scenario.injects if i.kind == InjectKind.OUTAGE]
    assert outages and all(o.hub in names and o.link == "internet" for o in outages)
