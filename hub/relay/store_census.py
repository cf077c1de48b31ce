"""The store's first read after it opens: the live counts and the id index, with every record that can no
longer be trusted moved aside (the ``quarantine`` table) and every one whose retention ended deleted."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import aiosqlite

from hub.relay.store_at_rest import ERASED, GONE, FrameVault
from hub.relay.store_checks import damage

log = logging.getLogger("beredt.store")


@dataclass(slots=True)
class Census:
    rows: dict[bytes, int]
    """The row of every message id still in the store (an erased one too: it still refuses a replay)."""
    last_row: int
    """The largest row ever read (0: none): new messages get rows after it."""
    live_messages: int
    live_bytes: int
    quarantined: int
    """Damaged messages moved aside since the store was made."""


async def take_census(db: aiosqlite.Connection, vault: FrameVault) -> Census:
    """Move messages whose stored bytes no longer match their id (or whose columns make no sense)
    out of the way, into the ``quarantine`` table, so that one damaged record cannot stop the hub from
    serving all the others. Each is logged as an error. The intact ones give the live counts and the
    id index. Raises ``sqlite3.Error``."""
    damaged: list[tuple[int, Any, Any, str]] = []
    gone: list[int] = []
    rows: dict[bytes, int] = {}
    last_row = live_messages = live_bytes = 0
    async with db.execute("SELECT row, id, wire, priority, state, size, key_id FROM messages") as cursor:
        while batch := await cursor.fetchmany(10_000):  # a trip to the database thread per batch, not row
            for rowid, message_id, stored, priority, state, size, key_id in batch:
                last_row = max(last_row, rowid)
                if key_id == ERASED:
                    rows[message_id] = rowid  # erased on request: its id still refuses a replay
                    continue
                wire, reason = stored, None
                if isinstance(message_id, bytes) and isinstance(stored, bytes):
                    wire, reason = vault.opened(message_id, key_id, stored)
                if reason == GONE:
                    gone.append(rowid)
                    continue
                reason = reason or damage(message_id, wire, priority)
                if reason is not None:
                    damaged.append((rowid, message_id, stored, reason))
                    continue
                rows[message_id] = rowid
                if state == "active":
                    live_messages += 1
                    live_bytes += size
    # The same read counts the live messages and gathers the ids: one pass over the table at start.
    now = time.time()
    for rowid, message_id, wire, reason in damaged:
        shown = message_id.hex() if isinstance(message_id, bytes) else repr(message_id)
        log.error("store: message %s is damaged (%s); moved to quarantine, the rest is served", shown, reason)
        await db.execute(
            "INSERT INTO quarantine(message_id, wire, reason, quarantined_at) VALUES (?,?,?,?)",
            (message_id, wire, reason, now),
        )
        await db.execute("DELETE FROM deliveries WHERE message_row=?", (rowid,))
        await db.execute("DELETE FROM messages WHERE row=?", (rowid,))
    for rowid in gone:  # their key was destroyed before they were deleted (a stop in between)
        await db.execute("DELETE FROM deliveries WHERE message_row=?", (rowid,))
        await db.execute("DELETE FROM messages WHERE row=?", (rowid,))
    if gone:
        log.info("store: deleted %d messages whose retention had ended", len(gone))
    if damaged or gone:
        await db.commit()
    async with db.execute("SELECT count(*) FROM quarantine") as cursor:
        row = await cursor.fetchone()
    return Census(rows, last_row, live_messages, live_bytes, int(row[0]) if row else 0)
