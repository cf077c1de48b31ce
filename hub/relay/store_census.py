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
    ids: set[bytes]
    """Every message id still in the store (an erased one too: it still refuses a replay)."""
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
    gone: list[bytes] = []
    ids: set[bytes] = set()
    live_messages = live_bytes = 0
    async with db.execute("SELECT rowid, id, wire, priority, state, size, key_id FROM messages") as cursor:
        while rows := await cursor.fetchmany(10_000):  # a trip to the database thread per batch, not row
            for rowid, message_id, stored, priority, state, size, key_id in rows:
                if key_id == ERASED:
                    ids.add(message_id)  # erased on request: its id still refuses a replay
                    continue
                wire, reason = stored, None
                if isinstance(message_id, bytes) and isinstance(stored, bytes):
                    wire, reason = vault.opened(message_id, key_id, stored)
                if reason == GONE:
                    gone.append(message_id)
                    continue
                reason = reason or damage(message_id, wire, priority)
                if reason is not None:
                    damaged.append((rowid, message_id, stored, reason))
                    continue
                ids.add(message_id)
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
        await db.execute("DELETE FROM messages WHERE rowid=?", (rowid,))
    for message_id in gone:  # their key was destroyed before they were deleted (a stop in between)
        await db.execute(
            "DELETE FROM deliveries WHERE message_row=(SELECT row FROM messages WHERE id=?)", (message_id,)
        )
        await db.execute("DELETE FROM messages WHERE id=?", (message_id,))
    if gone:
        log.info("store: deleted %d messages whose retention had ended", len(gone))
    if damaged or gone:
        await db.commit()
    async with db.execute("SELECT count(*) FROM quarantine") as cursor:
        row = await cursor.fetchone()
    return Census(ids, live_messages, live_bytes, int(row[0]) if row else 0)
