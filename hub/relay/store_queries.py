"""The store's reads: what is stored, what waits for which hop, the inbox (see ``hub.relay.store``).

``Store`` is a ``StoreQueries``: the reads live here, the writes, quota and erasure with the store. Frames
are opened from their seal at rest as they are read; one whose day key is gone is left out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiosqlite

from hub.core.frame import Priority
from hub.relay.store_at_rest import FrameVault
from hub.relay.store_records import (
    MESSAGE_COLUMNS,
    DeliveryRow,
    PendingDelivery,
    PendingPage,
    StoredMessage,
    message_from_row,
)


class StoreQueries:
    def __init__(self, db: aiosqlite.Connection, vault: FrameVault) -> None:
        self._db = db
        self.vault = vault
        self._rows: dict[bytes, int] = {}
        """The row of every message id still in the store: deduplication without a trip to the database
        thread, and the way from an id to its row (the table has no index of its random ids)."""

    def has(self, message_id: bytes) -> bool:
        return message_id in self._rows

    async def open_sent_to(self, recipient: bytes) -> list[StoredMessage]:
        """Messages this hub originated to ``recipient`` that are live and not acknowledged end to end."""
        async with self._db.execute(
            f"SELECT {MESSAGE_COLUMNS}, key_id FROM messages"
            " WHERE recipient=? AND local=1 AND state='active' AND e2e_acked_at IS NULL",
            (recipient,),
        ) as cursor:
            rows = list(await cursor.fetchall())
        return [m for m in (self._opened(row) for row in rows) if m is not None]

    async def recipients(self, ids: Sequence[bytes]) -> dict[bytes, bytes]:
        """The recipient of each stored message among ``ids`` (ids not stored are left out)."""
        known = [row for i in ids if (row := self._rows.get(i)) is not None]
        if not known:
            return {}
        marks = ",".join("?" * len(known))
        async with self._db.execute(
            f"SELECT id, recipient FROM messages WHERE row IN ({marks})", known
        ) as cur:
            return {row[0]: row[1] async for row in cur}

    async def resume_bound(self) -> int:
        """The newest message's rowid now: resuming reads only up to it, because everything accepted later
        is tracked by whoever accepted it."""
        async with self._db.execute("SELECT coalesce(max(rowid), 0) FROM messages") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def open_deliveries(self) -> int:
        """Deliveries not yet settled, on disk or in memory: a scan of the deliveries table (no index of open
        ones: see ``store_schema.INDEXES``). Background state updates land within
        ``background_delay``, so a delivery settled a moment ago may still be counted."""
        async with self._db.execute(
            "SELECT count(*) FROM deliveries WHERE state IN ('queued','sent')"
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def pending_hops(self) -> list[bytes]:
        """The next hops that have unfinished deliveries."""
        return list(await self.open_by_hop())

    async def open_by_hop(self) -> dict[bytes, int]:
        """Unfinished deliveries (queued, or sent and awaiting the hop ack) per next hop, from disk: every
        one waiting, also those not yet resumed into memory (``open_deliveries`` says how fresh)."""
        async with self._db.execute(
            "SELECT hop, count(*) FROM deliveries WHERE state IN ('queued','sent') GROUP BY hop"
        ) as cursor:
            return {row[0]: int(row[1]) async for row in cursor}

    async def pending(
        self, hop: bytes, priority: Priority, *, after: tuple[float, int], upto: int, limit: int
    ) -> PendingPage:
        """Up to ``limit`` live messages of ``priority`` whose first unfinished delivery (by hop id) is to
        ``hop``, oldest first, accepted after the position ``after`` and with a rowid up to ``upto`` (see
        ``resume_bound``), with every unfinished delivery of each.

        Each message belongs to exactly one hop's pages and comes with all its open deliveries, so a
        broadcast is never resumed in part. A page is one range read of the ``messages_live`` index, so
        a queue of any length is resumed a page at a time without reading it all at once."""
        async with self._db.execute(
            "SELECT m.id, d.hop, m.recipient, m.wire, m.expires, d.attempts, m.e2e_acked_at, m.accepted_at,"
            " m.position, m.key_id FROM (SELECT id, recipient, wire, expires, e2e_acked_at, accepted_at,"
            " rowid AS position, key_id FROM messages"
            " WHERE state = 'active' AND priority = ? AND rowid <= ? AND (accepted_at, rowid) > (?, ?)"
            " AND (SELECT min(hop) FROM deliveries WHERE message_row = messages.row"
            " AND state IN ('queued','sent')) = ?"
            " ORDER BY accepted_at, rowid LIMIT ?) m"
            " JOIN deliveries d ON d.message_row = m.position AND d.state IN ('queued','sent')"
            " ORDER BY m.accepted_at, m.position",
            (int(priority), upto, *after, hop, limit),
        ) as cursor:
            rows = list(await cursor.fetchall())
        deliveries = [
            PendingDelivery(r[0], r[1], r[2], wire, priority, r[4], r[5], r[6] is not None)
            for r in rows
            if (wire := self.vault.open(r[0], r[9], r[3])) is not None
        ]
        return PendingPage(deliveries, (rows[-1][7], rows[-1][8]) if rows else after)

    async def message(self, message_id: bytes) -> StoredMessage | None:
        """The stored message, or None when it is not stored, erased or past its retention."""
        stored = self._rows.get(message_id)
        if stored is None:
            return None
        async with self._db.execute(
            f"SELECT {MESSAGE_COLUMNS}, key_id FROM messages WHERE row=?", (stored,)
        ) as cur:
            row = await cur.fetchone()
        return self._opened(row) if row else None

    def _opened(self, row: Sequence[Any]) -> StoredMessage | None:
        wire = self.vault.open(row[0], row[-1], row[1])
        return None if wire is None else message_from_row((row[0], wire, *row[2:-1]))

    async def ids_starting(self, prefix: str, limit: int = 2) -> list[bytes]:
        """Stored message ids that begin with the hex ``prefix`` (sent, received or relayed), at most
        ``limit``: a short id as people copy it is unique when exactly one comes back."""
        low, high = bytes.fromhex(prefix.ljust(32, "0")), bytes.fromhex(prefix.ljust(32, "f"))
        return sorted(i for i in self._rows if low <= i <= high)[:limit]  # a pass in memory, no index

    async def deliveries(self, message_id: bytes) -> list[DeliveryRow]:
        row = self._rows.get(message_id)
        if row is None:
            return []
        async with self._db.execute(
            "SELECT hop, state, attempts, link, last_error, updated, next_hop FROM deliveries"
            " WHERE message_row=?",
            (row,),
        ) as cursor:
            return [DeliveryRow(*row) async for row in cursor]

    async def every_message(self, batch: int = 500) -> AsyncIterator[StoredMessage]:
        """Every message this hub can still read, oldest first, ``batch`` rows per read (subject access)."""
        after = 0
        while True:
            async with self._db.execute(
                f"SELECT rowid, {MESSAGE_COLUMNS}, key_id FROM messages WHERE rowid > ?"
                " ORDER BY rowid LIMIT ?",
                (after, batch),
            ) as cursor:
                rows = list(await cursor.fetchall())
            if not rows:
                return
            for row in rows:
                if (message := self._opened(row[1:])) is not None:
                    yield message
            after = rows[-1][0]

    async def inbox(
        self, *, limit: int = 100, since: float = 0.0, oldest_first: bool = False
    ) -> list[StoredMessage]:
        """Messages for us received after ``since``: newest first, or oldest first to page through a burst."""
        order = "ASC" if oldest_first else "DESC"
        async with self._db.execute(
            f"SELECT {MESSAGE_COLUMNS}, key_id FROM messages WHERE for_me=1 AND accepted_at > ?"
            f" ORDER BY accepted_at {order} LIMIT ?",
            (since, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [m for row in rows if (m := self._opened(row)) is not None]
