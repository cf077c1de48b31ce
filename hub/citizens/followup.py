"""The follow-up engine: who is hit by an outage, how long their equipment lasts, who goes, who is late.

Pure logic with times passed in: no I/O, no clock of its own. An ``Outage`` names districts and/or
addresses and when the power went. ``affected`` turns the register into ``Entry`` rows, each with the
moment the citizen's battery runs out (outage start + battery hours) and the home-care team that covers
the district, sorted by urgency: earliest run-out first, then by equipment (a ventilator before oxygen,
before dialysis, suction and other), then by id so the order is stable. A marked address matches a
citizen whose address starts with it at a word boundary, so "Skovvej" marks the whole street and
"Skovvej 12" one house.

``Visits`` keeps one outcome per (citizen, outage, moment reported): the same report arriving twice,
over two links or sent again, counts once. A citizen counts as *seen* in an outage after any outcome
but "not at home" in that outage (being seen in an earlier outage does not count).
``due_alarms`` returns the entries whose battery runs out within the alarm margin and who are not seen
yet, once each: the hub raises those to the coordinator.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from hub.citizens.records import Citizen
from hub.core.kinds.followup import MAX_ENTRIES, NO_AUTONOMY_LIMIT

CRITICALITY = ("ventilator", "oxygen", "dialysis", "suction", "other")  # first = most urgent
NOT_SEEN = "not_home"
NEEDS_HELP = frozenset({"needs_power", "needs_oxygen", "needs_transport"})
OUTCOME_DANISH = {
    "seen_ok": "set, OK",
    "needs_power": "mangler strøm",
    "needs_oxygen": "mangler ilt",
    "needs_transport": "skal transporteres",
    "moved_care_home": "flyttet til plejehjem",
    "moved_hospital": "flyttet til hospital",
    "not_home": "ikke hjemme",
}


@dataclass(frozen=True, slots=True)
class Outage:
    id: str  # 8 hex digits
    started: float
    districts: frozenset[str] = frozenset()
    addresses: frozenset[str] = frozenset()
    ended: float | None = None

    def hits(self, citizen: Citizen) -> bool:
        if citizen.district.casefold() in {d.casefold() for d in self.districts}:
            return True
        home = normalise_address(citizen.address)
        return any(home == a or home.startswith(a + " ") for a in map(normalise_address, self.addresses))


@dataclass(frozen=True, slots=True)
class Entry:
    """One citizen on a follow-up list: no personal details beyond the id, district and equipment."""

    citizen: str
    outage: str
    district: str
    runs_out: float
    equipment: tuple[str, ...]
    team: str | None  # node id hex of the team's hub, None when no team covers the district

    def hours_left(self, now: float) -> float:
        return (self.runs_out - now) / 3600.0


@dataclass(frozen=True, slots=True)
class Visit:
    citizen: str
    outage: str
    outcome: str
    at: int
    by: str  # node id hex of the hub that reported it, or the console user


def normalise_address(address: str) -> str:
    return " ".join(re.sub(r"[,.]", " ", address).casefold().split())


def urgency_key(entry: Entry) -> tuple[float, int, str]:
    rank = min((CRITICALITY.index(e) for e in entry.equipment), default=len(CRITICALITY))
    return entry.runs_out, rank, entry.citizen


def affected(citizens: Iterable[Citizen], outage: Outage, teams: Mapping[str, Sequence[str]]) -> list[Entry]:
    """The follow-up list of ``outage``, most urgent first; ``teams`` maps a district to team hubs."""
    by_district = {d.casefold(): nodes for d, nodes in teams.items()}
    entries = [
        Entry(
            citizen=c.id,
            outage=outage.id,
            district=c.district,
            runs_out=outage.started + c.battery_hours * 3600.0,
            equipment=c.equipment,
            team=next(iter(by_district.get(c.district.casefold(), ())), None),
        )
        for c in citizens
        if outage.hits(c)
    ]
    return sorted(entries, key=urgency_key)


def merge(lists: Iterable[Iterable[Entry]]) -> list[Entry]:
    """One row per citizen across overlapping outages: the one whose battery runs out first."""
    best: dict[str, Entry] = {}
    for entries in lists:
        for entry in entries:
            held = best.get(entry.citizen)
            if held is None or entry.runs_out < held.runs_out:
                best[entry.citizen] = entry
    return sorted(best.values(), key=urgency_key)


def list_bodies(entries: Sequence[Entry], outage: Outage) -> list[dict[str, object]]:
    """FOLLOWUP_LIST bodies for one team, in parts of at most ``MAX_ENTRIES`` citizens."""
    chunks = [entries[i : i + MAX_ENTRIES] for i in range(0, len(entries), MAX_ENTRIES)]
    return [
        {
            "outage": outage.id,
            "started": int(outage.started),
            **({"part": number, "parts": len(chunks)} if len(chunks) > 1 else {}),
            "citizens": [
                {
                    "id": e.citizen,
                    "minutes": min(NO_AUTONOMY_LIMIT, max(0, int((e.runs_out - outage.started) // 60))),
                    "equipment": list(e.equipment),
                }
                for e in chunk
            ],
        }
        for number, chunk in enumerate(chunks, start=1)
    ]


def entries_from_list(body: Mapping[str, object], team: str) -> list[Entry]:
    """The entries of a received FOLLOWUP_LIST (on a team's hub); districts come from its own register."""
    started = body["started"]
    outage = body["outage"]
    citizens = body["citizens"]
    assert isinstance(started, int) and isinstance(outage, str) and isinstance(citizens, list)
    return [
        Entry(
            citizen=str(item["id"]),
            outage=outage,
            district="",
            runs_out=float(started + int(item["minutes"]) * 60),
            equipment=tuple(item["equipment"]),
            team=team,
        )
        for item in citizens
    ]


class Visits:
    """Reported outcomes per citizen; a report seen before changes nothing."""

    def __init__(self) -> None:
        self._by_citizen: dict[str, dict[tuple[int, str], Visit]] = {}

    def add(self, visit: Visit) -> bool:
        """Record ``visit``; False if a report on this citizen at this moment in this outage is here."""
        reports = self._by_citizen.setdefault(visit.citizen, {})
        key = (visit.at, visit.outage)
        if key in reports:
            return False
        reports[key] = visit
        return True

    def latest(self, citizen: str, outage: str) -> Visit | None:
        reports = [v for v in self._by_citizen.get(citizen, {}).values() if v.outage == outage]
        return max(reports, key=lambda v: v.at) if reports else None

    def seen(self, citizen: str, outage: str) -> bool:
        """Whether anyone saw the citizen in this outage (a visit in an earlier one does not count)."""
        return any(
            v.outage == outage and v.outcome != NOT_SEEN for v in self._by_citizen.get(citizen, {}).values()
        )

    def __len__(self) -> int:
        return sum(len(r) for r in self._by_citizen.values())


def due_alarms(
    entries: Iterable[Entry], visits: Visits, alarmed: set[tuple[str, str]], now: float, margin: float
) -> list[Entry]:
    """Entries not yet seen whose battery runs out within ``margin`` seconds; each (outage, citizen)
    once: the caller adds what it raised to ``alarmed``."""
    return [
        e
        for e in entries
        if e.runs_out - now <= margin
        and not visits.seen(e.citizen, e.outage)
        and (e.outage, e.citizen) not in alarmed
    ]
