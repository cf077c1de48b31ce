"""What the console must remember across a restart, in its own table of ``console.db``.

The roll-call board (who has answered, what was sent again, who is escalated), which roll-calls this
institution has answered and which instructions it has confirmed are small JSON documents saved after
every change: a hub restarted in the middle of a roll-call picks up where it stopped, and an answered
roll-call does not pop up again on the institution's screen.
"""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from hub.core.errors import StoreError

_SCHEMA = "CREATE TABLE IF NOT EXISTS console_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


async def create(db: aiosqlite.Connection) -> None:
    try:
        await db.execute(_SCHEMA)
        await db.commit()
    except aiosqlite.Error as exc:
        raise StoreError(f"cannot create the console state table: {exc}") from exc


async def load(db: aiosqlite.Connection) -> dict[str, Any]:
    """Every saved document by key; a document that is not JSON is reported, not half-read."""
    async with db.execute("SELECT key, value FROM console_state") as cursor:
        rows = await cursor.fetchall()
    try:
        return {str(key): json.loads(value) for key, value in rows}
    except json.JSONDecodeError as exc:
        raise StoreError(f"console state in the database is damaged: {exc}") from exc


async def save(db: aiosqlite.Connection, **documents: Any) -> None:
    """Replace the named documents in one commit."""
    try:
        await db.executemany(
            "INSERT OR REPLACE INTO console_state (key, value) VALUES (?, ?)",
            [(key, json.dumps(value, separators=(",", ":"))) for key, value in documents.items()],
        )
        await db.commit()
    except aiosqlite.Error as exc:
        raise StoreError(f"cannot save console state: {exc}") from exc
