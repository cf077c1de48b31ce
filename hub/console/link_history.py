"""Every change of a link's health, as rows in ``console.db`` (table ``link_changes``): when, which link,
towards whom, from what to what and why (the transport's English text, and the reason's code and
parameters that people's words are made from). The log book keeps the same change as a sentence for people;
these rows let the after-action report draw when each link was down and when traffic failed over,
without reading prose.

A change happens only after ``down_after`` failures or ``up_after`` successes in a row (the health board's
hysteresis), so the table grows with real outages, not with traffic.
"""

from __future__ import annotations

import json
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
    reason TEXT NOT NULL,
    reason_code TEXT,
    reason_params TEXT
);
CREATE INDEX IF NOT EXISTS link_changes_time ON link_changes(time);
"""
_ADD_CODE = """
ALTER TABLE link_changes ADD COLUMN reason_code TEXT;
ALTER TABLE link_changes ADD COLUMN reason_params TEXT;
"""
"""A table from before the code was kept: its old rows keep only the English text."""


_INSERT = (
    "INSERT INTO link_changes (time, link, peer, old, new, reason, reason_code, reason_params)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


async def record(db: aiosqlite.Connection, time: float, change: LinkHealthChanged) -> None:
    """One change at ``time``; its ``peer`` is the peer's node id (hex), or None when the whole link
    changed. The table is made at the first change, so a console that never sees one adds nothing."""
    reason = change.reason
    row = (time, change.link, change.peer, change.old, change.new, str(reason), reason.code.value,
           json.dumps(reason.params))  # fmt: skip
    try:
        try:
            await db.execute(_INSERT, row)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                await db.executescript(_SCHEMA)
            elif "no column named reason_code" in str(exc):
                await db.executescript(_ADD_CODE)
            else:
                raise
            await db.execute(_INSERT, row)
        await db.commit()
    except aiosqlite.Error as exc:
        raise StoreError(f"cannot save a link change: {exc}") from exc
