"""The register's rows: what a citizen record holds, and reading the care system's CSV export.

The export is a CSV file (comma or semicolon separated, UTF-8, header row) with these columns; column
names are matched without regard to case, and the order is free:

    navn           full name                                        required
    cpr            DDMMÅÅ-NNNN (the dash may be left out)           required, unique in the file
    adresse        street address as the team would look it up      required
    distrikt       the home-care district                           required
    udstyr         power-dependent equipment, separated by + , / or space:
                   ilt (oxygen concentrator), dialyse (home dialysis), respirator (ventilator),
                   sug (suction), andet (other)                     at least one
    batteritimer   hours the equipment runs on its own battery (0-720, decimal comma allowed)
    nødplan        backup arrangements (e.g. "ilt-flasker til 6 timer, datter henter")   optional
    kontaktperson  name and phone of the contact person              optional
    id             the register id (8 hex digits) when the file comes from 'beredt citizens export'

A row is accepted whole or rejected whole; the report names every rejected row by its line number and
every field that is wrong, never the values (the report may be shown or logged where personal data must
not be). CPR numbers are checked for form and date; day 00 is accepted as the test range that Beredt's
fictitious sample register uses, since no real CPR number has it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

EQUIPMENT_WORDS = {
    "ilt": "oxygen",
    "iltkoncentrator": "oxygen",
    "dialyse": "dialysis",
    "hjemmedialyse": "dialysis",
    "respirator": "ventilator",
    "sug": "suction",
    "sugemaskine": "suction",
    "andet": "other",
}
EQUIPMENT_DANISH = {
    "oxygen": "ilt",
    "dialysis": "dialyse",
    "ventilator": "respirator",
    "suction": "sug",
    "other": "andet",
}
COLUMNS = ("navn", "cpr", "adresse", "distrikt", "udstyr", "batteritimer", "nødplan", "kontaktperson")
REQUIRED = COLUMNS[:6]
MAX_HOURS = 720.0
MAX_ROWS = 20_000  # a municipality's register is hundreds to a few thousand people
_CPR = re.compile(r"(\d{2})(\d{2})(\d{2})-?(\d{4})")
_ID = re.compile(r"[0-9a-f]{8}")
_LIMITS = {"navn": 100, "adresse": 200, "distrikt": 40, "nødplan": 200, "kontaktperson": 200}


@dataclass(frozen=True, slots=True)
class Citizen:
    """One power-dependent citizen, in clear: only ever in memory, sealed before it touches the disk."""

    name: str
    cpr: str  # normalised DDMMYY-NNNN
    address: str
    district: str
    equipment: tuple[str, ...]  # wire names from hub.core.kinds.followup.EQUIPMENT
    battery_hours: float
    backup: str = ""
    contact: str = ""
    id: str = ""  # 8 hex digits, assigned by the register when empty


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return f"linje {self.line}: " + "; ".join(self.problems)


@dataclass(slots=True)
class ParsedFile:
    accepted: list[tuple[int, Citizen]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def parse_csv(text: str) -> ParsedFile:
    """Validate a care-system export; ``ValueError`` (in Danish) if the file as a whole is unusable."""
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=";,")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), dialect=dialect)
    headers = {(h or "").strip().casefold(): h for h in reader.fieldnames or []}
    missing = [c for c in REQUIRED if c not in headers]
    if missing:
        raise ValueError(f"filen mangler kolonne(r): {', '.join(missing)} (se docs/citizens.md)")
    parsed = ParsedFile()
    seen_cpr: dict[str, int] = {}
    seen_id: dict[str, int] = {}
    for number, row in enumerate(reader, start=2):
        if number - 1 > MAX_ROWS:
            raise ValueError(f"filen har over {MAX_ROWS} rækker; del den op")
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # an empty line at the end of an export
        cells = {name: _cell(row, headers.get(name)) for name in (*COLUMNS, "id")}
        problems, citizen = _check(cells, row)
        if citizen is not None:
            if citizen.cpr in seen_cpr:
                problems.append(f"cpr: samme CPR-nummer som linje {seen_cpr[citizen.cpr]}")
            if citizen.id and citizen.id in seen_id:
                problems.append(f"id: samme id som linje {seen_id[citizen.id]}")
        if problems or citizen is None:
            parsed.rejected.append(Rejected(reader.line_num, tuple(problems)))
            continue
        seen_cpr[citizen.cpr] = reader.line_num
        if citizen.id:
            seen_id[citizen.id] = reader.line_num
        parsed.accepted.append((reader.line_num, citizen))
    return parsed


def _cell(row: dict[str | None, object], header: str | None) -> str:
    value = row.get(header) if header is not None else None
    return value.strip() if isinstance(value, str) else ""


def _check(cells: dict[str, str], row: dict[str | None, object]) -> tuple[list[str], Citizen | None]:
    problems: list[str] = []
    if None in row:
        problems.append("flere felter end kolonner (et komma eller semikolon for meget?)")
    for name in REQUIRED:
        if not cells[name]:
            problems.append(f"{name}: mangler")
    for name, limit in _LIMITS.items():
        if len(cells[name]) > limit:
            problems.append(f"{name}: længere end {limit} tegn")
    cpr = normalise_cpr(cells["cpr"]) if cells["cpr"] else None
    if cells["cpr"] and cpr is None:
        problems.append("cpr: ikke et CPR-nummer (DDMMÅÅ-NNNN med en gyldig dato, eller dag 00 til test)")
    equipment = parse_equipment(cells["udstyr"]) if cells["udstyr"] else ()
    if cells["udstyr"] and equipment is None:
        known = ", ".join(sorted(set(EQUIPMENT_WORDS)))
        problems.append(f"udstyr: ukendt udstyr (kendte: {known})")
    hours = parse_hours(cells["batteritimer"]) if cells["batteritimer"] else None
    if cells["batteritimer"] and hours is None:
        problems.append(f"batteritimer: ikke et tal fra 0 til {MAX_HOURS:.0f}")
    citizen_id = cells["id"].lower()
    if citizen_id and not _ID.fullmatch(citizen_id):
        problems.append("id: ikke 8 hex-cifre")
    if problems or cpr is None or not equipment or hours is None:
        return problems, None
    return problems, Citizen(
        name=cells["navn"],
        cpr=cpr,
        address=cells["adresse"],
        district=cells["distrikt"],
        equipment=equipment,
        battery_hours=hours,
        backup=cells["nødplan"],
        contact=cells["kontaktperson"],
        id=citizen_id,
    )


def normalise_cpr(value: str) -> str | None:
    """``DDMMYY-NNNN`` if ``value`` is a CPR number of valid form and date (day 00: test range)."""
    match = _CPR.fullmatch(value.strip())
    if match is None:
        return None
    day, month, year, serial = match.groups()
    if day == "00":
        return f"{day}{month}{year}-{serial}" if 1 <= int(month) <= 12 else None
    if not any(_is_date(century + int(year), int(month), int(day)) for century in (1900, 2000)):
        return None
    return f"{day}{month}{year}-{serial}"


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def parse_equipment(value: str) -> tuple[str, ...] | None:
    words = [w for w in re.split(r"[+,/\s]+", value.casefold()) if w]
    if not words or any(w not in EQUIPMENT_WORDS for w in words):
        return None
    names = {EQUIPMENT_WORDS[w] for w in words}
    return tuple(n for n in EQUIPMENT_DANISH if n in names)


def parse_hours(value: str) -> float | None:
    try:
        hours = float(value.replace(",", "."))
    except ValueError:
        return None
    return hours if 0.0 <= hours <= MAX_HOURS else None


def to_csv(citizens: Iterable[Citizen]) -> str:
    """The import format, with ids: what a team's hub imports so both hubs name citizens alike."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow((*COLUMNS, "id"))
    for c in citizens:
        equipment = "+".join(EQUIPMENT_DANISH[e] for e in c.equipment)
        hours = f"{c.battery_hours:g}".replace(".", ",")
        writer.writerow((c.name, c.cpr, c.address, c.district, equipment, hours, c.backup, c.contact, c.id))
    return out.getvalue()
