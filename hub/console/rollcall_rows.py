"""Roll-calls in ``console.db``: one row per roll-call and one per institution asked, written as they change.

An answer or a decision rewrites one target's row, not the whole board, so the bytes written per received
status do not grow with the number of roll-calls run. A closed roll-call keeps its rows with ``closed_at``
set: that is the archive, read a few roll-calls at a time; only open ones are loaded at start. The
archive is kept for the retention the hub's config sets (``[console] rollcall_retention_days``), then
``purge`` deletes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import aiosqlite

from hub.console.rollcall import RollCall, Target, target_document
from hub.core.at_rest import DocumentSealer
from hub.core.errors import StoreError

MAX_PAGE = 50
"""The most roll-calls one read of the archive returns."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rollcalls (
    request TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    started REAL NOT NULL,
    deadline REAL NOT NULL,
    closed_at REAL,
    exercise INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS rollcalls_closed ON rollcalls(started) WHERE closed_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS rollcall_targets (
    request TEXT NOT NULL,
    institution TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (request, institution)
) WITHOUT ROWID;
"""


async def create(db: aiosqlite.Connection) -> None:
    try:
        await db.executescript(_SCHEMA)
        columns = {row[1] for row in await db.execute_fetchall("PRAGMA table_info(rollcalls)")}
        if "exercise" not in columns:  # a table from before exercise roll-calls: all of its were real
            await db.execute("ALTER TABLE rollcalls ADD COLUMN exercise INTEGER NOT NULL DEFAULT 0")
        await db.commit()
    except aiosqlite.Error as exc:
        raise StoreError(f"cannot create the roll-call tables: {exc}") from exc


async def _commit(db: aiosqlite.Connection, what: str, writes: Iterable[tuple[str, tuple[Any, ...]]]) -> None:
    try:
        for sql, params in writes:
            await db.execute(sql, params)
        await db.commit()
    except aiosqlite.Error as exc:
        await db.rollback()
        raise StoreError(f"cannot save {what}: {exc}") from exc


def _target_row(sealer: DocumentSealer, request: str, target: Target) -> tuple[str, tuple[Any, ...]]:
    document = sealer.seal(target_document(target), f"rollcall:{request}:{target.institution}")
    return (
        "INSERT OR REPLACE INTO rollcall_targets (request, institution, document) VALUES (?, ?, ?)",
        (request, target.institution, document),
    )


async def save_call(db: aiosqlite.Connection, sealer: DocumentSealer, call: RollCall) -> None:
    """Write a roll-call and all its targets (when it starts, or when it is carried over from old state)."""
    head = (
        "INSERT OR REPLACE INTO rollcalls (request, question, started, deadline, exercise)"
        " VALUES (?, ?, ?, ?, ?)",
        (call.request, sealer.seal(call.question, f"rollcall:{call.request}"), call.started, call.deadline,
         int(call.exercise)),
    )  # fmt: skip
    await _commit(
        db,
        f"roll-call {call.request}",
        [head, *(_target_row(sealer, call.request, t) for t in call.targets.values())],
    )


async def save_targets(
    db: aiosqlite.Connection, sealer: DocumentSealer, changed: Iterable[tuple[str, Target]]
) -> None:
    """Rewrite the rows of the (request, target) pairs that changed, in one commit."""
    rows = [_target_row(sealer, request, target) for request, target in changed]
    if rows:
        await _commit(db, "roll-call answers", rows)


async def all_targets(
    db: aiosqlite.Connection, sealer: DocumentSealer
) -> list[tuple[str, str, dict[str, Any]]]:
    """Every target row, open and archived, as (request, institution, document), past retention left out."""
    rows = await db.execute_fetchall("SELECT request, institution, document FROM rollcall_targets")
    opened = [(str(r[0]), str(r[1]), sealer.open(r[2], f"rollcall:{r[0]}:{r[1]}")) for r in rows]
    return [(request, institution, doc) for request, institution, doc in opened if doc is not None]


async def redact_targets(
    db: aiosqlite.Connection, sealer: DocumentSealer, redacted: Callable[[dict[str, Any]], dict[str, Any]]
) -> int:
    """Rewrite every target row whose document ``redacted`` changes, in one commit; returns how many."""
    writes: list[tuple[str, tuple[Any, ...]]] = []
    for request, institution, document in await all_targets(db, sealer):
        if (new := redacted(document)) != document:
            writes.append((
                "UPDATE rollcall_targets SET document = ? WHERE request = ? AND institution = ?",
                (sealer.seal(new, f"rollcall:{request}:{institution}"), request, institution),
            ))  # fmt: skip
    if writes:
        await _commit(db, "erased roll-call answers", writes)
    return len(writes)


async def close(db: aiosqlite.Connection, requests: Iterable[str], at: float) -> None:
    """Move finished roll-calls to the archive."""
    writes = [("UPDATE rollcalls SET closed_at = ? WHERE request = ?", (at, r)) for r in requests]
    if writes:
        await _commit(db, "closed roll-calls", writes)


async def purge(db: aiosqlite.Connection, closed_before: float) -> int:
    """Delete roll-calls closed before ``closed_before`` with their targets; returns how many."""
    found = await db.execute_fetchall("SELECT request FROM rollcalls WHERE closed_at < ?", (closed_before,))
    requests = [str(row[0]) for row in found]
    writes: list[tuple[str, tuple[Any, ...]]] = []
    for request in requests:
        writes += [("DELETE FROM rollcall_targets WHERE request = ?", (request,)),
                   ("DELETE FROM rollcalls WHERE request = ?", (request,))]  # fmt: skip
    if writes:
        await _commit(db, "the roll-call archive's purge", writes)
    return len(requests)


async def load_open(db: aiosqlite.Connection, sealer: DocumentSealer) -> list[dict[str, Any]]:
    """Every open roll-call as ``RollCallBoard.restore`` reads it."""
    return await _documents(db, sealer, "closed_at IS NULL ORDER BY started", ())


async def archived(
    db: aiosqlite.Connection, sealer: DocumentSealer, *, before: float | None = None, limit: int = 10
) -> list[dict[str, Any]]:
    """Closed roll-calls started before ``before``, newest first, at most ``limit`` (up to ``MAX_PAGE``)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit: forventede 1 til {MAX_PAGE} statusrunder")
    where = "closed_at IS NOT NULL AND started < ? ORDER BY started DESC LIMIT ?"
    return await _documents(db, sealer, where, (float("inf") if before is None else before, limit))


async def _documents(
    db: aiosqlite.Connection, sealer: DocumentSealer, where: str, params: tuple[Any, ...]
) -> list[dict[str, Any]]:
    """The roll-calls and their targets; a question or answer past its retention is left out."""
    calls = await db.execute_fetchall(
        f"SELECT request, question, started, deadline, closed_at, exercise FROM rollcalls WHERE {where}",
        params,
    )
    out = []
    for request, question, started, deadline, closed_at, exercise in calls:
        rows = await db.execute_fetchall(
            "SELECT institution, document FROM rollcall_targets WHERE request = ? ORDER BY institution",
            (request,),
        )
        opened = [sealer.open(row[1], f"rollcall:{request}:{row[0]}") for row in rows]
        targets = [target for target in opened if target is not None]
        question = sealer.open(question, f"rollcall:{request}") if isinstance(question, bytes) else question
        out.append({"request": request, "question": question or "", "started": started, "deadline": deadline,
                    "closed_at": closed_at, "exercise": bool(exercise), "targets": targets})  # fmt: skip
    return out
