"""Store upkeep beside the writer: WAL checkpoints that keep the WAL bounded, and handing purged pages back.

A checkpoint inside a commit stalls that commit for tens of milliseconds (the copy and its fsync), so a
PASSIVE checkpoint runs on a second connection instead, every ``CHECKPOINT_EVERY`` seconds or as soon as
the WAL passes ``CHECKPOINT_AT``: a page that many commits changed meanwhile (the newest leaf of each table
and index, the small index of live messages) is copied into the database once, not
once per commit. The WAL is what makes a commit durable, so the cadence costs no durability, only a
longer replay after a power cut (the WAL is read once at the next open; at most ``WAL_TRUNCATE_AT``). When
sustained writes grow the WAL past ``WAL_TRUNCATE_AT`` (checked every second), a TRUNCATE checkpoint waits
for a gap between commits and empties it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import aiosqlite

from hub.relay.store_file import store_uri

log = logging.getLogger("beredt.store")

WAL_TRUNCATE_AT = 32 * 1024 * 1024
"""WAL size past which the checkpointer empties it (a TRUNCATE checkpoint) instead of copying beside."""
CHECKPOINT_EVERY = 3600.0
"""Seconds between copies of the WAL into the database: the hot pages (the newest leaf of each table and
index, changed by every commit) are written to the database once an hour instead of once per few minutes.
At 80 care homes' statuses this WAL holds about 5 MiB after an hour."""
CHECKPOINT_AT = 16 * 1024 * 1024
"""WAL size at which the copy is not left for the next ``CHECKPOINT_EVERY``: a burst is copied back soon."""
VACUUM_PAGES = 1024  # pages handed back per incremental_vacuum step


class WalUpkeep:
    """The checkpointer of one store file. ``vacuum_due`` asks it to free purged pages on its next round."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wal_limit = WAL_TRUNCATE_AT
        self.wal_truncations = 0
        self.checkpoint_every = CHECKPOINT_EVERY
        self.checkpoint_at = CHECKPOINT_AT
        self.vacuum_due = False

    async def run(self, interval: float = 1.0) -> None:
        """Copy the WAL back into the database from a second connection, in its own thread: a PASSIVE
        checkpoint every ``checkpoint_every`` seconds or past ``checkpoint_at`` bytes of WAL, the WAL's
        size checked every ``interval``."""
        opening = asyncio.ensure_future(aiosqlite.connect(store_uri(self.path), uri=True))
        try:
            connection = await asyncio.shield(opening)
        except asyncio.CancelledError:
            # Closed while connecting: the connection's thread opens it anyway, and left open it would
            # call into an event loop that may be gone by then.
            await (await opening).close()
            raise
        wal = self.path.with_name(self.path.name + "-wal")
        try:
            # a TRUNCATE checkpoint waits this long for the writer's commit in flight to end
            await connection.execute("PRAGMA busy_timeout=5000")
            loop = asyncio.get_running_loop()
            copied_at, copied_size = loop.time(), _size(wal)
            while True:
                await asyncio.sleep(interval)
                try:
                    # a copied WAL is written again from its start and keeps its size: only growth past
                    # the size at the last copy is new
                    size = _size(wal)
                    grown = size > max(self.checkpoint_at, copied_size)
                    if grown or self.vacuum_due or loop.time() - copied_at >= self.checkpoint_every:
                        copied_at, copied_size = loop.time(), size
                        await connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    if _size(wal) > self.wal_limit:
                        async with connection.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
                            busy = await cursor.fetchone()
                        self.wal_truncations += 1
                        log.info("WAL passed %d KiB under sustained writes: emptied (busy=%s)",
                                 self.wal_limit >> 10, busy and busy[0])  # fmt: skip
                    if self.vacuum_due:
                        self.vacuum_due = False
                        await _vacuum(connection)
                except sqlite3.Error as exc:
                    log.warning("WAL checkpoint failed (retried in %.0f s): %s", interval, exc)
        finally:
            await connection.close()


async def _vacuum(connection: aiosqlite.Connection) -> None:
    """Hand purged pages back to the file system, ``VACUUM_PAGES`` at a time (a no-op on a store created
    without incremental auto-vacuum). ``executescript``: ``execute`` would step the pragma, and free a
    page, only once."""
    while True:
        async with connection.execute("PRAGMA freelist_count") as cursor:
            row = await cursor.fetchone()
        if row is None or row[0] == 0:
            return
        await connection.executescript(f"PRAGMA incremental_vacuum({VACUUM_PAGES});")
        async with connection.execute("PRAGMA freelist_count") as cursor:
            after = await cursor.fetchone()
        if after is None or after[0] >= row[0]:
            return  # auto-vacuum is off for this store: nothing to hand back this way


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
