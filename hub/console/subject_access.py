"""Subject access and erasure: everything this hub holds about one person, found, exported and erased.

A coordinator gives a search term (a name, a CPR number). ``search`` reads every message in the store
that this hub can open (sealed ones opened, as the console shows them) and the console's own records (what
was sent and its summary, the status board, roll-call answers, the texts staff typed into the log book)
and returns each place the term occurs in.
A CPR number matches with or without its dash or spaces; a name matches in any letter case. ``erase``
erases what ``search`` found: the store's frames are overwritten and leave every queue (``Store.erase``),
the console's records keep their place but the matching text becomes ``ERASED``, and a typed log-book
text that matches is erased whole (``hub.console.note_texts``). The log book's entries are not touched
(they hold metadata and digests, and must stay verifiable); it records that an erasure happened,
by whom and how much, never the term. The citizen register has its own erasure (``beredt citizens
erase``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from hub.console import rollcall_rows
from hub.console.logbook import EntryType

if TYPE_CHECKING:
    from hub.console.service import Console

MIN_TERM = 3
ERASED = "[slettet efter anmodning]"
Match = Callable[[str], bool]
_SEPARATORS = re.compile(r"[\s\-]")


@dataclass(frozen=True, slots=True)
class Finding:
    place: str
    """``message`` (the store), ``sent`` (what the console sent), ``board`` (a status on the board),
    ``rollcall`` (a roll-call answer) or ``logbook`` (a text typed into the log book)."""
    id: str
    """The message id; for the board the institution's node id; for a roll-call ``request/institution``;
    for the log book the entry's number."""
    time: float
    kind: str
    sender: str
    recipient: str
    content: str
    """What the record says, as JSON text (a message's body) or text."""


def matcher(term: str) -> Match:
    """How ``term`` is looked for; ``ValueError`` when it is too short to name anyone."""
    cleaned = term.strip()
    if len(cleaned) < MIN_TERM:
        raise ValueError(f"søgeordet skal have mindst {MIN_TERM} tegn")
    digits = _SEPARATORS.sub("", cleaned)
    if digits.isdigit():  # a CPR number, written with or without its dash
        return lambda text: digits in _SEPARATORS.sub("", text)
    folded = cleaned.casefold()
    return lambda text: folded in text.casefold()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def redacted(value: Any, match: Match) -> Any:
    """``value`` with every string the term occurs in replaced by ``ERASED`` (dicts and lists walked)."""
    if isinstance(value, str):
        return ERASED if match(value) else value
    if isinstance(value, dict):
        return {key: redacted(item, match) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item, match) for item in value]
    return value


async def search(console: Console, term: str) -> list[Finding]:
    """Every record about the person ``term`` names, oldest message first, then the console's records."""
    match = matcher(term)
    found: list[Finding] = []
    async for message in console.hub.store.every_message():
        item = console.decode(message)
        content = _text(item["body"])
        if match(content):
            to = "alle" if set(item["to"]) == {"f"} else console.name_of(item["to"])
            found.append(Finding("message", item["id"], message.accepted_at, item["kind"],
                                 item["from_name"], to, content))  # fmt: skip
    me = console.hub.identity.name
    for sent in console.outbox.newest():
        if match(sent.summary):
            found.append(
                Finding("sent", sent.id, sent.at, sent.kind, me, console.name_of(sent.to), sent.summary)
            )
    for node, status in console.board.statuses().items():
        if match(content := _text(status)):
            found.append(Finding("board", node, 0.0, "status", console.name_of(node), me, content))
    for request, institution, document in await rollcall_rows.all_targets(console.db, console.sealer):
        answer = document.get("answer") or {}
        if match(content := _text(answer.get("body", {}))):
            found.append(Finding("rollcall", f"{request}/{institution}", float(answer.get("at", 0.0)),
                                 "status", console.name_of(institution), me, content))  # fmt: skip
    for entry, text in await console.logbook.typed():
        if match(text):
            found.append(Finding("logbook", str(entry.seq), float(entry.time), entry.type.value,
                                 entry.author, me, text))  # fmt: skip
    return found


@dataclass(frozen=True, slots=True)
class Erasure:
    messages: int
    sent: int
    board: int
    rollcall: int
    notes: int


async def erase(console: Console, term: str, *, author: str) -> Erasure:
    """Erase everything ``search`` finds for ``term``; the log book records the counts, not the term."""
    match = matcher(term)
    findings = await search(console, term)
    message_ids = [bytes.fromhex(f.id) for f in findings if f.place == "message"]
    messages = await console.hub.store.erase(message_ids)
    gone = {f.id for f in findings if f.place == "message"}
    for item in [item for item in console.messages if item["id"] in gone]:
        console.messages.remove(item)
    sent = console.outbox.redact(lambda text: redacted(text, match))
    board = console.board.redact(lambda status: redacted(status, match))
    for call in console.rollcalls.calls():
        for target in call.targets.values():
            if target.answer is not None and (body := redacted(dict(target.answer.body), match)) != dict(
                target.answer.body
            ):
                target.answer = replace(target.answer, body=body)
    rollcall = await rollcall_rows.redact_targets(
        console.db, console.sealer, lambda doc: redacted(doc, match)
    )
    noted = {int(f.id) for f in findings if f.place == "logbook"}
    notes = await console.logbook.forget([e for e, _ in await console.logbook.typed() if e.seq in noted])
    await console.save_outbox()
    await console.save_board()
    erasure = Erasure(messages, sent, board, rollcall, notes)
    await console.note(
        EntryType.ACTION,
        f"Personoplysninger slettet efter anmodning: {messages} beskeder, {sent} sendte, {board} statusser,"
        f" {rollcall} svar på statusrunder, {notes} logbogstekster (søgeordet logges ikke)",
        author=author,
    )
    console.emit("message")
    console.emit("board")
    return erasure


FIELDS = ("place", "id", "time", "kind", "sender", "recipient", "content")


def export_json(findings: list[Finding]) -> str:
    return json.dumps([asdict(f) for f in findings], ensure_ascii=False, indent=2)


def export_csv(findings: list[Finding]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for finding in findings:
        row = asdict(finding)
        writer.writerow([_csv_safe(str(row[field])) for field in FIELDS])
    return out.getvalue()


def _csv_safe(value: str) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @) is kept as text."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
