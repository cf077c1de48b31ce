"""What the console must remember across a restart, in its own tables of ``console.db``.

Which roll-calls this institution has answered and which instructions it has confirmed are small JSON
documents saved after every change, so an answered roll-call does not pop up again on the institution's
screen. The status board is one row per institution, saved every ``board_save_interval`` (only the rows
that changed): after a restart the board starts from these rows and the store's inbox since the last
save is folded in over them. Roll-calls have their own rows (``hub.console.rollcall_rows``).
"""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from hub.core.at_rest import DocumentSealer
from hub.core.errors import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS board (node TEXT PRIMARY KEY, document TEXT NOT NULL) WITHOUT ROWID;
"""


async def create(db: aiosqlite.Connection) -> None:
    try:
        await db.executescript(_SCHEMA)
        await db.commit()
    except aiosqlite.Error as exc:
        raise StoreError(f"cannot create the console state table: {exc}") from exc


async def load(db: aiosqlite.Connection, sealer: DocumentSealer) -> dict[str, Any]:
    """Every saved document by key (sealed at rest, ``hub.core.at_rest.DocumentSealer``); a document that
    does not open is reported, not half-read, and one past its retention is left out."""
    rows = await db.execute_fetchall("SELECT key, value FROM console_state")
    documents = {str(key): sealer.open(value, f"console_state:{key}") for key, value in rows}
    return {key: document for key, document in documents.items() if document is not None}


async def save(db: aiosqlite.Connection, sealer: DocumentSealer, **documents: Any) -> None:
    """Replace the named documents in one commit."""
    try:
        await db.executemany(
            "INSERT OR REPLACE INTO console_state (key, value) VALUES (?, ?)",
            [(key, sealer.seal(value, f"console_state:{key}")) for key, value in documents.items()],
        )
        await db.commit()
    except aiosqlite.Error as exc:
        raise StoreError(f"cannot save console state: {exc}") from exc


async def forget(db: aiosqlite.Connection, key: str) -> None:
    """Drop a document that has moved elsewhere."""
    try:
        await db.execute("DELETE FROM console_state WHERE key = ?", (key,))
        await db.commit()
    except aiosqlite.Error as exc:
        raise StoreError(f"cannot save console state: {exc}") from exc


async def load_board(db: aiosqlite.Connection, sealer: DocumentSealer) -> dict[str, dict[str, Any]]:
    """The saved board rows by node; a damaged row is reported, not half-read."""
    rows = await db.execute_fetchall("SELECT node, document FROM board")
    documents = {str(node): sealer.open(document, f"board:{node}") for node, document in rows}
    return {node: document for node, document in documents.items() if document is not None}


async def save_board(
    db: aiosqlite.Connection, sealer: DocumentSealer, documents: dict[str, dict[str, Any]], saved_at: float
) -> None:
    """Replace the given board rows and record when, in one commit."""
    rows = [(node, sealer.seal(doc, f"board:{node}")) for node, doc in documents.items()]
    try:
        await db.executemany("INSERT OR REPLACE INTO board (node, document) VALUES (?, ?)", rows)
        await db.execute(
            "INSERT OR REPLACE INTO console_state (key, value) VALUES ('board_saved_at', ?)",
            (json.dumps(saved_at),),
        )
        await db.commit()
    except aiosqlite.Error as exc:
        raise StoreError(f"cannot save the status board: {exc}") from exc
