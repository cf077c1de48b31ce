"""The log book as a file for evaluators and freedom-of-information requests: CSV with every field exactly as
stored, and a self-contained printable Danish report that ends with the chain's verification and head hash
(an anchor a later ``LogBook.verify(anchor=...)`` can check)."""

from __future__ import annotations

import csv
import html
import io
from datetime import UTC, datetime, tzinfo

from hub.console.logbook import GENESIS, LogBook
from hub.console.note_texts import referenced

WITHHELD = "(udeladt: kun koordinatorer ser personalets tekster)"
"""In place of a typed text, for a reader whose role may not see personal data."""
HOLDS_PERSONAL = (
    "Rapporten viser de tekster personalet har skrevet: de kan indeholde personoplysninger."
    " Opbevar og videregiv den derefter."
)
WITHOUT_PERSONAL = "Personalets tekster er udeladt: din rolle må ikke se personoplysninger."


async def export_csv(book: LogBook, tz: tzinfo = UTC, *, notes: bool = True) -> str:
    """All entries as CSV (seq, ISO 8601 time, author, node, type, text, hash), text exactly as stored,
    then ``note``: a typed entry's text while it is still held beside the book (``note_texts``), or
    ``WITHHELD`` without ``notes`` (a role that may not see personal data)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["seq", "time", "author", "node", "type", "text", "hash", "note"])
    entries = await book.entries()
    held = await book.notes.held(e.text for e in entries) if notes else {}
    for e in entries:
        note = held.get(referenced(e.text) or "", "") if notes else WITHHELD if referenced(e.text) else ""
        writer.writerow([e.seq, _iso(e.time, tz), e.author, e.node, e.type, e.text, e.hash.hex(), note])
    return out.getvalue()


async def export_html(book: LogBook, *, title: str = "Logbog", tz: tzinfo = UTC, notes: bool = True) -> str:
    """A self-contained printable report (Danish), ending with the verification result and head hash;
    it says whether it shows the staff's typed texts (``notes``) or leaves them out."""
    entries = await book.entries()
    broken = await book.verify()
    head = entries[-1].hash.hex() if entries else GENESIS.hex()
    held = await book.notes.held(e.text for e in entries) if notes else None
    verdict = (
        "Kæden er intakt: ingen poster er ændret, byttet om eller slettet."
        if broken is None
        else f"ADVARSEL: kæden er brudt ved post {broken}. Loggen er ændret efter den blev skrevet."
    )
    rows = "\n".join(
        f"<tr class='t-{e.type}'><td>{e.seq}</td><td class='time'>{html.escape(_iso(e.time, tz))}</td>"
        f"<td>{html.escape(e.type.label_da)}</td><td>{html.escape(e.author)}</td>"
        f"<td class='text'>{html.escape(_shown(e.text, held))}</td>"
        f"<td class='hash'>{e.hash.hex()[:16]}</td></tr>"
        for e in entries
    )
    return _REPORT.format(
        title=html.escape(title),
        node=html.escape(book.node),
        count=len(entries),
        rows=rows,
        personal=html.escape(HOLDS_PERSONAL if notes else WITHOUT_PERSONAL),
        verdict=html.escape(verdict),
        verdict_class="ok" if broken is None else "broken",
        head=head,
        last_seq=entries[-1].seq if entries else 0,
    )


def _shown(text: str, held: dict[str, str] | None) -> str:
    """An entry's text for the printed report: a typed text still held follows its digest (``held`` is
    None for a reader who may not see it)."""
    digest = referenced(text)
    if digest is None:
        return text
    if held is None:
        return f"{text}: {WITHHELD}"
    return f"{text}: {held[digest]}" if digest in held else f"{text}: (teksten er slettet)"


def _iso(unix: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(unix, tz).isoformat(timespec="seconds")


_REPORT = """<!doctype html>
<html lang="da"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 11pt/1.35 system-ui, sans-serif; color: #000; margin: 2em; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #444; padding: .25em .4em; vertical-align: top; text-align: left; }}
th {{ background: #ddd; }}
td.text {{ white-space: pre-wrap; }}
td.time {{ white-space: nowrap; }}
td.hash, .head {{ font-family: monospace; font-size: 9pt; }}
tr.t-decision td, tr.t-omission td {{ font-weight: bold; }}
.ok {{ border: 2px solid #060; padding: .5em; }}
.broken {{ border: 3px solid #a00; padding: .5em; color: #a00; font-weight: bold; }}
@media print {{
  body {{ margin: 0; }} thead {{ display: table-header-group; }} tr {{ break-inside: avoid; }}
}}
</style></head>
<body>
<h1>{title}</h1>
<p>Knude: {node} &middot; {count} poster</p>
<p class="personal">{personal}</p>
<table>
<thead><tr><th>Nr.</th><th>Tid</th><th>Type</th><th>Forfatter</th><th>Tekst</th><th>Hash</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p class="{verdict_class}">{verdict}</p>
<p class="head">Sidste post {last_seq}, SHA-256: {head}</p>
</body></html>
"""
