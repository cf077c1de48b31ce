"""Frames at rest in the store: sealed under a day key on write, opened on read (``hub.core.at_rest``).

The ``key_id`` column names the day key a row's ``wire`` is sealed with, the message id being the
associated data. NULL marks a row written before stores sealed their frames: it is read as it is, and
``reseal_legacy`` seals such rows in the background after the store opens, a batch per commit, logging
its progress. ``erased`` marks a row whose frame was erased on request: the id stays until the message
expires, so a replay of the frame is still refused, but the bytes are gone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiosqlite

from hub.core.at_rest import KEY_FOLDER, DataKeys, Retention
from hub.core.errors import DataErased, SealError
from hub.core.frame import Frame, Kind

log = logging.getLogger("beredt.store")

ERASED = "erased"
GONE = "its day key is destroyed (retention ended)"
RESEAL_BATCH = 500


def kind_name(kind: int) -> str:
    try:
        return Kind(kind).name.lower()
    except ValueError:
        return f"kind-{kind}"


class FrameVault:
    """Seals frames for the store and opens them again, under the day key of their kind's retention."""

    def __init__(self, keys: DataKeys, retention: Retention) -> None:
        self.keys = keys
        self.retention = retention

    def seal(self, frame: Frame, wire: bytes, now: float) -> tuple[str, bytes]:
        """The day key's id and the sealed bytes. The day is the later of now and the frame's stamp:
        a hub whose clock has not been set yet would otherwise file everything under 1970."""
        key_id = self.keys.key_for(max(now, frame.created), self.retention.days_for(kind_name(frame.kind)))
        return key_id, self.keys.seal(key_id, wire, frame.id)

    def opened(self, message_id: bytes, key_id: str | None, stored: bytes) -> tuple[bytes | None, str | None]:
        """The frame's bytes and None, or None and why they cannot be had (``GONE`` when erased)."""
        if key_id is None:
            return stored, None
        if key_id == ERASED:
            return None, GONE
        try:
            return self.keys.open(key_id, stored, message_id), None
        except DataErased:
            ends = self.keys.ends(key_id)
            if ends is not None and ends <= time.time():
                return None, GONE
            return None, f"its day key {key_id} is missing (restore {KEY_FOLDER}/ from its backup)"
        except SealError:
            return None, "its frame does not open with its day key"

    def open(self, message_id: bytes, key_id: str | None, stored: bytes) -> bytes | None:
        """The frame's bytes, or None for a frame erased or past retention (damage is logged)."""
        wire, reason = self.opened(message_id, key_id, stored)
        if wire is None and reason != GONE:
            log.error("store: message %s %s", message_id.hex(), reason)
        return wire


async def add_key_column(db: aiosqlite.Connection) -> None:
    """Give a store written before frames were sealed its ``key_id`` column (NULL: not sealed yet)."""
    async with db.execute("PRAGMA table_info(messages)") as cursor:
        columns = {row[1] async for row in cursor}
    if "key_id" not in columns:
        await db.execute("ALTER TABLE messages ADD COLUMN key_id TEXT")


Write = tuple[str, Sequence[Any]]


async def reseal_legacy(
    db: aiosqlite.Connection, vault: FrameVault, write: Callable[[list[Write]], Awaitable[None]]
) -> int:
    """Seal every row written before frames were sealed, ``RESEAL_BATCH`` per commit; returns how many."""
    async with db.execute("SELECT count(*) FROM messages WHERE key_id IS NULL") as cursor:
        row = await cursor.fetchone()
    total = int(row[0]) if row else 0
    if total == 0:
        return 0
    log.info("store: sealing %d messages written before frames were sealed at rest", total)
    done = 0
    while True:
        async with db.execute(
            "SELECT id, wire, kind, created, accepted_at, row FROM messages WHERE key_id IS NULL LIMIT ?",
            (RESEAL_BATCH,),
        ) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            break
        writes: list[Write] = []
        for message_id, wire, kind, created, accepted_at, row in rows:
            key_id = vault.keys.key_for(max(accepted_at, created), vault.retention.days_for(kind_name(kind)))
            sealed = vault.keys.seal(key_id, wire, message_id)
            writes.append(
                (
                    "UPDATE messages SET wire=?, key_id=? WHERE row=? AND key_id IS NULL",
                    (sealed, key_id, row),
                )
            )
        await write(writes)
        done += len(rows)
        log.info("store: sealed %d of %d older messages", done, total)
    return done
