"""An exercise scenario: who takes part, what is measured, and the timed injects (a TOML file).

A coordinator writes the scenario once and starts it with ``beredt exercise start FILE`` or from the
console. ``parse`` reads the TOML text into a ``Scenario`` and refuses anything it does not understand with
a ``ConfigError`` that names the key and the fix, so a broken file stops before the exercise starts.
Parsing is pure: names are resolved against the roster and clock times against the start only when the
exercise starts (``Scenario.timeline``). The format (``docs/exercises.md`` shows a whole file)::

    name = "Strømsvigt i tre døgn"          # required, at most 80 characters
    description = "Dag 1 af ..."            # optional
    duration = "10h"                        # required: the exercise ends by itself after this long
    allow_satellite = false                 # optional: true lets its urgent frames spend satellite credit

    [participants]                          # at least one group or node (names as the roster has them)
    groups = ["plejehjem", "botilbud"]
    nodes = ["Kommune"]

    [targets]                               # optional: what the evaluation measures against
    rollcall_answer = "15m"                 # every roll-call answered within this
    first_status = "30m"                    # each participant's first status within this of the start
                                            # and of each inject it receives (an inject's deadline wins)
    delivery = "2m"                         # each exercise message confirmed by its recipient within this
    read_receipt = "20m"                    # each one read and understood within this
    satellite_credits = 40                  # the most satellite credits the exercise may spend
    lora_airtime = "10m"                    # the most LoRa airtime the exercise may spend

    [[injects]]
    at = "0m"                               # an offset from the start ("1h30m", "2d4h") or a local
                                            # clock time "10:30" (with day = 2 for the second day)
    kind = "message"                        # message | rollcall | outage
    text = "Strømmen er gået i hele distrikt Syd"
    groups = ["plejehjem"]                  # recipients; both omitted = every participant
    nodes = []
    priority = "urgent"                     # routine | normal (default) | urgent | life-safety
    expect = ["Status med nødstrøm og brændstof"]   # the answers the lead expects (for the evaluation)
    deadline = "30m"                        # by when, after the inject (a roll-call's answer deadline)

    [[injects]]
    at = "10:30"
    kind = "outage"                         # treat a link as down, without touching it
    hub = "Solbakken"                       # the hub whose link is down
    link = "internet"                       # the link's name in that hub's [links.<name>]
    until = "12:00"                         # when it comes back (same forms as at), or: duration = "90m"

Durations are written with the units d, h, m and s in that order (``"1h30m"``); a bare number is refused,
so minutes and seconds are never confused.
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from hub.core.errors import ConfigError, UsageError
from hub.core.frame import Priority
from hub.core.options import Options
from hub.core.reading_errors import os_error, toml_where

MAX_INJECTS = 500
MAX_NAME = 80
MAX_TEXT = 1000
MAX_ROLLCALL_QUESTION = 190
"""The roll-call frame's question holds 200 characters, and the runner puts "ØVELSE: " in front."""
MAX_DURATION = 14 * 86400
DEFAULT_ROLLCALL_DEADLINE = 15 * 60

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_PRIORITIES = {"routine": Priority.ROUTINE, "normal": Priority.NORMAL, "urgent": Priority.URGENT,
               "life-safety": Priority.LIFE_SAFETY}  # fmt: skip


class InjectKind(enum.StrEnum):
    MESSAGE = "message"
    ROLLCALL = "rollcall"
    OUTAGE = "outage"


_KIND_NAMES = {
    InjectKind.MESSAGE: "en besked",
    InjectKind.ROLLCALL: "en statusrunde",
    InjectKind.OUTAGE: "et udfald",
}


@dataclass(frozen=True, slots=True)
class When:
    """A moment in the exercise: ``offset`` seconds after the start, or the local ``clock`` time on ``day``
    (day 1 is the day the exercise starts)."""

    offset: int | None = None
    clock: time | None = None
    day: int = 1

    def resolve(self, start: float, zone: tzinfo) -> float:
        """Unix time of this moment for an exercise started at ``start``."""
        if self.offset is not None:
            return start + self.offset
        assert self.clock is not None
        first = datetime.fromtimestamp(start, zone).date() + timedelta(days=self.day - 1)
        return datetime.combine(first, self.clock, zone).timestamp()

    def __str__(self) -> str:
        if self.offset is not None:
            return format_duration(self.offset)
        assert self.clock is not None
        return self.clock.strftime("%H:%M") + (f" (dag {self.day})" if self.day > 1 else "")


@dataclass(frozen=True, slots=True)
class Audience:
    """Nodes named directly and groups whose members (by the roster) take part."""

    groups: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.groups or self.nodes)


@dataclass(frozen=True, slots=True)
class Targets:
    """What the evaluation measures against, in seconds (None: not measured)."""

    rollcall_answer: int | None = None
    first_status: int | None = None
    delivery: int | None = None
    read_receipt: int | None = None
    satellite_credits: int | None = None
    """A count of credits, not seconds."""
    lora_airtime: int | None = None


@dataclass(frozen=True, slots=True)
class Inject:
    """One planned event; ``number`` is its place in the file, from 1."""

    number: int
    kind: InjectKind
    at: When
    text: str = ""
    audience: Audience = Audience()
    """Recipients of a message or roll-call; empty means every participant."""
    priority: Priority = Priority.NORMAL
    expect: tuple[str, ...] = ()
    deadline: int | None = None
    """Seconds after the inject by which the expected answers are due."""
    hub: str = ""
    """For an outage: the hub whose link is treated as down."""
    link: str = ""
    until: When | None = None
    """For an outage: when the link comes back."""

    def describe(self, ends: float | None = None, zone: tzinfo | None = None) -> str:
        """One Danish line for the timeline and the CLI. An outage placed in a run shows its end as the
        local clock time ``ends`` (Unix seconds) in ``zone``; unplaced, as the scenario gives it."""
        if self.kind == InjectKind.OUTAGE:
            if ends is not None and zone is not None:
                until = "kl. " + datetime.fromtimestamp(ends, zone).strftime("%H:%M")
            elif self.until is not None and self.until.offset is not None:
                until = f"{self.until} efter start"
            else:
                until = f"kl. {self.until}"
            return f"Simuleret udfald: {self.link} hos {self.hub} til {until}"
        label = "Statusrunde" if self.kind == InjectKind.ROLLCALL else "Besked"
        return f"{label}: {self.text}"


@dataclass(frozen=True, slots=True)
class Planned:
    """An inject placed in time for one run: ``due`` (and for an outage ``ends``) in Unix seconds."""

    inject: Inject
    due: float
    ends: float | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    duration: int
    participants: Audience
    injects: tuple[Inject, ...]
    targets: Targets = Targets()
    description: str = ""
    allow_satellite: bool = False
    """The exercise's frames may use paid links (satellite) as real traffic of their priority does."""

    def timeline(self, start: float, zone: tzinfo) -> list[Planned]:
        """The injects placed in time for an exercise started at ``start``, in the order they fall due.

        ``UsageError`` when a clock time falls before the start or after the end: the same file started
        at another hour would mean something else, so that is said instead of guessed."""
        end = start + self.duration
        planned: list[Planned] = []
        for inject in self.injects:
            due = inject.at.resolve(start, zone)
            ends = inject.until.resolve(start, zone) if inject.until is not None else None
            if not start <= due <= end:
                raise UsageError(
                    f"indspil {inject.number} kl. {inject.at} ligger uden for øvelsen ({_local(start, zone)} "
                    f"til {_local(end, zone)}); start på et andet tidspunkt eller ret 'at'"
                )
            if ends is not None and not due < ends <= end:
                raise UsageError(
                    f"indspil {inject.number}: udfaldet skal slutte efter det begynder og senest ved "
                    f"øvelsens slut ({_local(end, zone)}), ikke {_local(ends, zone)}"
                )
            planned.append(Planned(inject, due, ends))
        return sorted(planned, key=lambda p: (p.due, p.inject.number))


def load(path: str) -> tuple[Scenario, str]:
    """Read and parse the scenario file at ``path``; returns the scenario and the text as read."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"kan ikke læse scenariet: {os_error(exc)}", file=path) from None
    except UnicodeDecodeError:
        raise ConfigError("scenariet er ikke UTF-8-tekst", file=path) from None
    return parse(text, file=path), text


def parse(text: str, *, file: str | None = None) -> Scenario:
    """Parse scenario TOML; ``ConfigError`` names the key and says what to write instead."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"ikke gyldig TOML{toml_where(str(exc))}; ret syntaksen dér: tekst i anførselstegn "
            '(text = "Strømmen er gået"), tabeller i firkantede parenteser ([[injects]]), hver nøgle én gang',
            file=file,
        ) from None
    top = Options(table, file=file)
    name = _short(top, "name", required='fx name = "Strømsvigt i tre døgn"')
    description = top.text("description", "")
    duration = _duration(top, "duration", required='fx duration = "10h"')
    if duration is None or not 0 < duration <= MAX_DURATION:
        raise top.error("duration", f"forventede mere end 0 og højst {MAX_DURATION // 86400} døgn")
    participants = _audience(top.table_of("participants", what="en tabel", known=("groups", "nodes")))
    if not participants:
        raise top.error("participants", 'nævn mindst én gruppe eller node, fx groups = ["plejehjem"]')
    durations = ("rollcall_answer", "first_status", "delivery", "read_receipt", "lora_airtime")
    targets_table = top.table_of("targets", what="en tabel", known=(*durations, "satellite_credits"))
    targets = Targets(
        **{name: _duration(targets_table, name) for name in durations},
        satellite_credits=targets_table.optional_integer(
            "satellite_credits", low=0, what="et antal kreditter"
        ),
    )
    raw_injects = top.listing(
        "injects", what="en liste af [[injects]]-tabeller", required="tilføj [[injects]]"
    )
    if len(raw_injects) > MAX_INJECTS:
        raise top.error("injects", f"højst {MAX_INJECTS} indspil i ét scenarie")
    injects = tuple(
        _inject(number, raw, file, participants) for number, raw in enumerate(raw_injects, start=1)
    )
    allow_satellite = top.flag("allow_satellite", False)
    top.finish()
    return Scenario(name, duration, participants, injects, targets, description, allow_satellite)


def parse_duration(text: str) -> int:
    """Seconds in ``"1h30m"``-style text; ``ValueError`` when it is not one."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"forventede en varighed som '90m' eller '1h30m', ikke {text!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_duration(seconds: int) -> str:
    """``5400`` -> ``"1h30m"`` (``"0m"`` for zero): the form ``parse_duration`` reads."""
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0m"


def _inject(number: int, raw: object, file: str | None, participants: Audience) -> Inject:
    where = f"injects[{number}]"
    if not isinstance(raw, Mapping):
        raise ConfigError("forventede en [[injects]]-tabel", file=file, key=where)
    o = Options(raw, where, file=file)
    if "kind" not in o:
        raise o.error("kind", "mangler: " + " | ".join(k.value for k in InjectKind))
    kind = InjectKind(o.choice("kind", "", [k.value for k in InjectKind]))
    day = o.integer("day", 1, low=1, high=MAX_DURATION // 86400)
    at = _when(o, "at", day)
    if at is None:
        raise o.error("at", 'mangler: en forskydning som "1h30m" eller et klokkeslæt som "10:30"')
    if kind == InjectKind.OUTAGE:
        hub = _short(o, "hub", required='hubben hvis forbindelse går ned, fx hub = "Solbakken"')
        link = _short(o, "link", required='forbindelsens navn i den hubs opsætning, fx link = "internet"')
        until = _when(o, "until", day)
        length = _duration(o, "duration")
        if (until is None) == (length is None):
            raise o.error(
                "until", 'angiv enten until = "12:00" (eller en forskydning) eller duration = "90m"'
            )
        if until is not None and until.clock is not None and at.clock is not None and until.clock <= at.clock:
            until = When(clock=until.clock, day=at.day + 1)  # "from 22:00 until 02:00" ends the next day
        if until is None:
            assert length is not None
            if at.offset is None:
                assert at.clock is not None
                moment = datetime.combine(datetime(2000, 1, 1).date(), at.clock) + timedelta(seconds=length)
                day = at.day + (moment.date() - datetime(2000, 1, 1).date()).days
                until = When(clock=moment.time(), day=day)
            else:
                until = When(offset=at.offset + length)
        o.finish()
        return Inject(number, kind, at, hub=hub, link=link, until=until)
    limit = MAX_ROLLCALL_QUESTION if kind == InjectKind.ROLLCALL else MAX_TEXT
    text = o.required_text("text", 'det deltagerne modtager, fx text = "Strømmen er gået"')
    if len(text) > limit:
        raise o.error("text", f"højst {limit} tegn for {_KIND_NAMES[kind]}, ikke {len(text)}")
    audience = _audience(o)
    for group in audience.groups:
        if participants.groups and group not in participants.groups:
            raise o.error("groups", f"gruppen {group!r} er ikke blandt deltagernes grupper")
    priority = _PRIORITIES[o.choice("priority", "normal", list(_PRIORITIES))]
    expect = o.names("expect", valid=lambda s: 0 < len(s) <= MAX_TEXT, what="forventede svar (tekst)")
    deadline = _duration(o, "deadline")
    if kind == InjectKind.ROLLCALL and deadline is None:
        deadline = DEFAULT_ROLLCALL_DEADLINE
    if deadline == 0:
        raise o.error("deadline", "forventede en varighed over 0")
    o.finish()
    return Inject(number, kind, at, text, audience, priority, expect, deadline)


def _audience(o: Options) -> Audience:
    def valid(name: str) -> bool:
        return 0 < len(name) <= MAX_NAME

    return Audience(o.names("groups", valid=valid, what="gruppenavne"),
                    o.names("nodes", valid=valid, what="nodenavne"))  # fmt: skip


def _when(o: Options, name: str, day: int) -> When | None:
    """``o[name]`` as an offset or a local clock time on ``day``; None when absent."""
    if name not in o.table:
        return None
    value = o.raw(name)
    if isinstance(value, str) and (clock := _CLOCK.match(value.strip())):
        return When(clock=time(int(clock.group(1)), int(clock.group(2))), day=day)
    if isinstance(value, str):
        try:
            return When(offset=parse_duration(value))
        except ValueError:
            pass
    raise o.error(
        name, f'forventede en forskydning som "1h30m" eller et klokkeslæt som "10:30", ikke {value!r}'
    )


def _duration(o: Options, name: str, *, required: str | None = None) -> int | None:
    if name not in o.table:
        if required:
            raise o.error(name, f"mangler; {required}")
        return None
    value = o.raw(name)
    try:
        if not isinstance(value, str):
            raise ValueError(
                f"forventede en varighed i anførselstegn som '90m' eller '1h30m', ikke {value!r}"
            )
        return parse_duration(value)
    except ValueError as exc:
        raise o.error(name, str(exc)) from None


def _short(o: Options, name: str, *, required: str) -> str:
    value = o.required_text(name, required)
    if len(value) > MAX_NAME:
        raise o.error(name, f"højst {MAX_NAME} tegn")
    return value


def _local(unix: float, zone: tzinfo) -> str:
    return datetime.fromtimestamp(unix, zone).strftime("%d.%m %H:%M")
