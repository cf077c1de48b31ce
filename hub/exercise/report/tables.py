"""The report's numbers as CSV files for the municipality's own evaluation (one file per table).

UTF-8 with a byte-order mark so that Excel shows æøå; comma-separated; times as ISO 8601 in the report's
time zone with their offset; durations in whole seconds (empty when it never happened), so a spreadsheet
can sum and compare them without parsing Danish words.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.exercise.report import figures
from hub.exercise.report.model import ReportInput

Row = Sequence[object]


def write_all(report: ReportInput, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    zone = ZoneInfo(report.timezone)

    def at(unix: float | None) -> str:
        return "" if unix is None else datetime.fromtimestamp(unix, zone).isoformat(timespec="seconds")

    def took(start: float, end: float | None) -> str:
        return "" if end is None else str(round(end - start))

    tables: dict[str, tuple[Row, Iterable[Row]]] = {
        "statusrunder.csv": (
            ("statusrunde", "spoergsmaal", "startet", "institution", "svar", "svartid_s", "svar_via",
             "forsoegt_via", "eskaleret"),
            [(c.request, c.question, at(c.started), a.institution, at(a.answered_at),
              took(c.started, a.answered_at), a.link or "", " ".join(a.links_tried), int(a.escalated))
             for c in report.rollcalls for a in c.answers],
        ),
        "indspil.csv": (
            ("indspil", "art", "sendt", "institution", "foerste_status", "tid_til_status_s"),
            [(i.label, i.kind, at(i.sent_at), name, at(first), took(i.sent_at, first))
             for i in report.injects for name, first in i.first_status.items()],
        ),
        "beskeder.csv": (
            ("id", "til", "art", "prioritet", "bytes", "sendt", "leveret", "leveringstid_s", "laest",
             "laesetid_s", "laest_af", "forbindelse", "udloebet"),
            [(m.id, m.to, m.kind, m.priority, m.size, at(m.sent_at), at(m.delivered_at),
              took(m.sent_at, m.delivered_at), at(m.read_at), took(m.sent_at, m.read_at), m.read_by or "",
              m.link or "", int(m.failed)) for m in report.messages],
        ),
        "forbindelser.csv": (
            ("tid", "forbindelse", "modpart", "tilstand", "simuleret", "tekst", "aarsag"),
            [(at(e.at), e.link, e.peer or "", e.state, int(e.simulated), e.text, e.reason)
             for e in report.link_events],
        ),
        "meldt_forbrug.csv": (
            ("hub", "fra", "til", "forbindelse", "beskeder", "afsendelser", "bytes", "sendetid_s",
             "kreditter", "afvist"),
            [(r.hub, at(r.since), at(r.until), u.link, u.messages, u.attempts, u.bytes,
              "" if u.airtime is None else f"{u.airtime:.3f}", _blank(u.credits), u.refused)
             for r in report.reported for u in r.usage],
        ),
        "meldte_forbindelser.csv": (
            ("hub", "tid", "forbindelse", "modpart", "tilstand", "simuleret", "tekst", "aarsag"),
            [(r.hub, at(e.at), e.link, e.peer or "", e.state, int(e.simulated), e.text, e.reason)
             for r in report.reported for e in r.link_events],
        ),
        "forbrug.csv": (
            ("forbindelse", "art", "beskeder", "afsendelser", "bytes", "sendetid_s", "kreditter", "afvist"),
            [(u.link, u.kind, u.messages, u.attempts, u.bytes,
              "" if u.airtime is None else f"{u.airtime:.3f}", _blank(u.credits), u.refused)
             for u in report.usage],
        ),
        "noter.csv": (("tid", "observatoer", "note"), [(at(n.at), n.author, n.text) for n in report.notes]),
        "fund.csv": (
            ("institution", "fund"),
            [(i.institution, f) for i in figures.institution_figures(report) for f in i.findings],
        ),
        "maal.csv": (
            ("hvad", "resultat", "maal", "opfyldt"),
            [(c.label, c.value, c.target, _blank(None if c.met is None else int(c.met)))
             for c in figures.comparisons(report)],
        ),
    }  # fmt: skip
    written = []
    for name, (header, rows) in tables.items():
        path = folder / name
        with path.open("w", encoding="utf-8-sig", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            writer.writerows(rows)
        written.append(path)
    return written


def _blank(value: object) -> object:
    """None as an empty cell: a spreadsheet must not read "did not happen" as zero."""
    return "" if value is None else value
