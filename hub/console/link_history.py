"""Every change of a link's health, as rows in ``console.db`` (table ``link_changes``): when, which link,
towards whom, from what to what and why. The log book keeps the same change as a sentence for people;
these rows let the after-action report draw when each link was down and when traffic failed over,
without reading prose.

A change happens only after ``down_after`` failures or ``up_after`` successes in a row (the health board's
hysteresis), so the table grows with real outages, not with traffic.
"""

from __future__ import annotations

import sqlite3

import aiosqlite

from hub.core.errors import StoreError
from hub.relay.events import LinkHealthChanged

_SCHEMA = """
CREATE TABLE IF NOT EXISTS link_changes (
    time REAL NOT NULL,
    link TEXT NOT NULL,
    peer TEXT,
    old TEXT NOT NULL,
    new TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS link_changes_time ON link_changes(time);
"""


_INSERT = "INSERT INTO link_changes (time, link, peer, old, new, reason) VALUES (?, ?, ?, ?, ?, ?)"


async def record(db: aiosqlite.Connection, time: float, change: LinkHealthChanged) -> None:
    """One change at ``time``; its ``peer`` is the peer's node id (hex), or None when the whole link
    changed. The table is made at the first change, so a console that never sees one adds nothing."""
    row = (time, change.link, change.peer, change.old, change.new, str(change.reason))
    try:
        try:
            await db.execute(_INSERT, row)
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            await db.executescript(_SCHEMA)
            await db.execute(_INSERT, row)
        await db.commit()
    except aiosqlite.Error as exc:
        raise StoreError(f"cannot save a link change: {exc}") from exc
