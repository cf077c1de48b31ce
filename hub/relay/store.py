"""The durable store: messages, their per-hop deliveries, the inbox (aiosqlite, WAL).

Durability promise: ``accept`` returns only after the message and its delivery rows are committed with
``synchronous=FULL`` in WAL mode, so a power cut after "accepted" loses nothing. To keep that promise
cheap on an SD card, writes are *group-committed*: every write that arrives while a commit is under way
joins the next transaction, and each caller is answered after the commit that holds its write. State
updates that need not block the caller (a delivery marked sent or acked) go through the same queue
without waiting, and wait up to ``background_delay`` for company; losing one in a crash only means a
frame is sent again and deduplicated downstream.

Only a transaction that holds a durable write is fsynced: one of nothing but state updates and
``durable=False`` accepts (the hub's own end-to-end acks) commits with ``synchronous=NORMAL``, which
in WAL mode survives a crash of the process and is fsynced by the next durable commit or checkpoint; a
power cut before that loses it (an end-to-end ack is then not sent, as if the cut came a moment
earlier). Each fsync of a half-written WAL page writes that page again, so fewer fsyncs write less.

Disk: the WAL is copied back every few minutes by a PASSIVE checkpoint beside the writer (``store_upkeep``);
when it passes ``WAL_TRUNCATE_AT``, a TRUNCATE checkpoint waits for a gap between commits and empties it.
``journal_size_limit`` shrinks the file back after it was reset. Finished messages are purged in batches
of ``PURGE_BATCH`` (each its own short transaction, so accepts are not held up), and a store created by
this version frees the purged pages with ``incremental_vacuum``; an older store keeps its size, and can
be compacted once with ``sqlite3 store.db 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM'`` while the hub is
stopped.

Quota: ``max_messages`` and ``max_bytes`` bound the live messages. Over quota, expired messages are
evicted first, then the lowest priority and oldest, never life-safety; each eviction is logged loudly.
When nothing can be evicted, or the disk is full, ``StoreFull`` is raised and the message is not accepted.

At rest: each frame is sealed under the day key of its kind's retention (``store_at_rest``); ``shred``
deletes the messages whose retention ended and destroys their keys, ``erase`` removes chosen ones.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from hub.core.at_rest import KEY_FOLDER, DataKeys, Retention
from hub.core.errors import StoreError, StoreFull
from hub.core.frame import Frame, Priority
from hub.core.tasks import cancel_and_wait
from hub.relay.delivery import DeliveryState
from hub.relay.store_at_rest import ERASED, GONE, FrameVault, add_key_column, reseal_legacy
from hub.relay.store_checks import claim_store, damage, refuse_lost_store
from hub.relay.store_records import (
    MESSAGE_COLUMNS,
    DeliveryRow,
    Incoming,
    PendingDelivery,
    PendingPage,
    StoredMessage,
    message_from_row,
)
from hub.relay.store_upkeep import WAL_TRUNCATE_AT, WalUpkeep

log = logging.getLogger("beredt.store")

PURGE_BATCH = 500
"""Finished messages deleted per transaction: a short pause for the writer, not one long one."""
BUSY_TIMEOUT_MS = 30_000
"""How long a commit waits for the checkpointer's lock; a TRUNCATE of 16 MiB on a slow card takes seconds."""
BACKGROUND_DELAY = 5.0
"""Seconds a commit of nothing but state updates waits for company: at a received status every few seconds
(80 care homes every 5 minutes), the updates of one status's end-to-end ack (sent, hop-acked, retired)
ride on the next status's commit instead of a commit of their own."""
PAGE_SIZE = 1024
"""Bytes per page of a store made now: a commit writes each page it changed whole, and most of ours change
a small row of each table and index (an older store keeps 4096)."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages(
    id BLOB PRIMARY KEY,
    wire BLOB NOT NULL,
    sender BLOB NOT NULL,
    recipient BLOB NOT NULL,
    kind INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    size INTEGER NOT NULL,
    local INTEGER NOT NULL,
    for_me INTEGER NOT NULL,
    state TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    via TEXT,
    e2e_acked_at REAL
);
CREATE INDEX IF NOT EXISTS messages_inbox ON messages(accepted_at) WHERE for_me = 1;
CREATE INDEX IF NOT EXISTS messages_live ON messages(priority, accepted_at) WHERE state = 'active';
CREATE TABLE IF NOT EXISTS deliveries(
    message_id BLOB NOT NULL,
    hop BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    link TEXT,
    next_hop BLOB,
    last_error TEXT,
    updated REAL NOT NULL,
    PRIMARY KEY (message_id, hop)
);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(state) WHERE state IN ('queued', 'sent');
CREATE TABLE IF NOT EXISTS quarantine(
    message_id BLOB,
    wire BLOB,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
);
"""

_Write = tuple[str, Sequence[Any]]
_INSERT_MESSAGE = (
    "INSERT OR IGNORE INTO messages(id, wire, sender, recipient, kind, priority, created,"
    " expires, size, local, for_me, state, accepted_at, via, key_id)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_DELIVERY = "INSERT OR IGNORE INTO deliveries(message_id, hop, state, updated) VALUES (?,?,?,?)"
_Queued = tuple[list[_Write], "asyncio.Future[None] | None", bool]
"""Writes, the future of whoever awaits them (None: nobody), and whether they must be fsynced."""
_UPDATE_DELIVERY = (
    "UPDATE deliveries SET state=?, attempts=?, next_attempt=?, link=?, next_hop=?, last_error=?, updated=?"
    " WHERE message_id=? AND hop=?"
)


class Store:
    def __init__(
        self, db: aiosqlite.Connection, path: Path, vault: FrameVault, *, max_messages: int, max_bytes: int
    ) -> None:
        self._db = db
        self.path = path
        self.vault = vault
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.live_messages = 0
        self.live_bytes = 0
        self.evicted = 0
        self.quarantined = 0
        """Damaged messages moved aside since the store was made (see ``_quarantine_damaged``)."""
        self.commits = 0
        self.background_delay = BACKGROUND_DELAY
        self.syncs = 0
        """Commits that were fsynced (``commits`` counts them all)."""
        self._synchronous = "FULL"
        self.on_evicted: Callable[[list[bytes]], None] = lambda ids: None
        """Set by the router to drop evicted messages from its queues."""
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.upkeep = WalUpkeep(path)
        self._checkpointer: asyncio.Task[None] | None = None
        self._resealer: asyncio.Task[int] | None = None
        self._closed = False
        self._ids: set[bytes] = set()
        """Every message id still in the store: deduplication without a trip to the database thread."""
        self._room = asyncio.Lock()
        """Held from the quota check until the newcomer is counted, so two accepts that both need room
        never choose the same victim (the database still shows it active until the eviction commits)."""
        self._retired_meanwhile: set[bytes] = set()
        """Messages retired while an eviction held ``_room``: never its victims (counted out already)."""

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        max_messages: int = 200_000,
        max_bytes: int = 512 * 1024 * 1024,
        new_store: bool = False,
        retention: Retention | None = None,
        keys: DataKeys | None = None,
    ) -> Store:
        """Open (or create) the store at ``path``; frames are sealed under ``keys`` (by default the day
        keys in the folder beside it) for as long as ``retention`` says.

        If this hub had a store and it is now missing, empty or another one (``store_checks``),
        ``StoreMissing`` is raised unless ``new_store`` says that this store is intended."""
        path.parent.mkdir(parents=True, exist_ok=True)
        refuse_lost_store(path, new_store)
        try:
            db = await aiosqlite.connect(path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from exc
        try:
            # only take effect while the file has no tables: a new store has small pages (PAGE_SIZE) and
            # frees purged pages as it goes
            await db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            await db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run on their own connection
            # a TRUNCATE checkpoint (the WAL past its limit under sustained writes) holds writers off while
            # it copies: a commit waits for it rather than failing with "database is locked"
            await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            await db.execute(f"PRAGMA journal_size_limit={WAL_TRUNCATE_AT}")
            await db.execute("PRAGMA secure_delete=ON")  # an erased or resealed frame leaves zeros behind
            await db.executescript(_SCHEMA)
            await add_key_column(db)
            async with db.execute("PRAGMA table_info(deliveries)") as cursor:
                columns = {row[1] async for row in cursor}
            if "next_hop" not in columns:  # a store written before deliveries recorded their carrier
                await db.execute("ALTER TABLE deliveries ADD COLUMN next_hop BLOB")
            await db.commit()
            async with db.execute("PRAGMA quick_check") as cursor:
                row = await cursor.fetchone()
        except sqlite3.Error as exc:
            await db.close()  # its worker thread would otherwise outlive us
            raise StoreError(f"cannot open store {path}: {exc}") from exc
        if row is None or row[0] != "ok":
            await db.close()
            raise StoreError(f"store {path} failed its integrity check: {row}")
        try:
            await claim_store(db, path, new_store=new_store)
        except StoreError:
            await db.close()
            raise
        vault = FrameVault(keys or DataKeys(path.with_name(KEY_FOLDER)), retention or Retention())
        store = cls(db, path, vault, max_messages=max_messages, max_bytes=max_bytes)
        try:
            await store._quarantine_damaged()
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"cannot read store {path}: {exc}") from exc
        store._writer = asyncio.create_task(store._write_loop(), name="store-writer")
        store._checkpointer = asyncio.create_task(store.upkeep.run(), name="store-checkpointer")
        store._resealer = asyncio.create_task(reseal_legacy(db, vault, store._write), name="store-resealer")
        return store

    async def _quarantine_damaged(self) -> None:
        """Move messages whose stored bytes no longer match their id (or whose columns make no sense)
        out of the way, into the ``quarantine`` table, so that one damaged record cannot stop the hub from
        serving all the others. Each is logged as an error and counted in ``quarantined``. The intact ones
        set the live counts and the id index."""
        damaged: list[tuple[int, Any, Any, str]] = []
        gone: list[bytes] = []
        ids: set[bytes] = set()
        live_messages = live_bytes = 0
        async with self._db.execute(
            "SELECT rowid, id, wire, priority, state, size, key_id FROM messages"
        ) as cursor:
            while rows := await cursor.fetchmany(10_000):  # a trip to the database thread per batch, not row
                for rowid, message_id, stored, priority, state, size, key_id in rows:
                    if key_id == ERASED:
                        ids.add(message_id)  # erased on request: its id still refuses a replay
                        continue
                    wire, reason = stored, None
                    if isinstance(message_id, bytes) and isinstance(stored, bytes):
                        wire, reason = self.vault.opened(message_id, key_id, stored)
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
        self._ids, self.live_messages, self.live_bytes = ids, live_messages, live_bytes
        now = time.time()
        for rowid, message_id, wire, reason in damaged:
            shown = message_id.hex() if isinstance(message_id, bytes) else repr(message_id)
            log.error(
                "store: message %s is damaged (%s); moved to quarantine, the rest is served", shown, reason
            )
            await self._db.execute(
                "INSERT INTO quarantine(message_id, wire, reason, quarantined_at) VALUES (?,?,?,?)",
                (message_id, wire, reason, now),
            )
            await self._db.execute("DELETE FROM deliveries WHERE message_id=?", (message_id,))
            await self._db.execute("DELETE FROM messages WHERE rowid=?", (rowid,))
        for message_id in gone:  # their key was destroyed before they were deleted (a stop in between)
            await self._db.execute("DELETE FROM deliveries WHERE message_id=?", (message_id,))
            await self._db.execute("DELETE FROM messages WHERE id=?", (message_id,))
        if gone:
            log.info("store: deleted %d messages whose retention had ended", len(gone))
        if damaged or gone:
            await self._db.commit()
        async with self._db.execute("SELECT count(*) FROM quarantine") as cursor:
            row = await cursor.fetchone()
        self.quarantined = int(row[0]) if row else 0

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(self._resealer)
        await cancel_and_wait(self._checkpointer)
        if self._writer is not None:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            await self._queue.put(([], done, True))
            await done
            await cancel_and_wait(self._writer)
        await self._db.close()

    # ---- writes -------------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            # Background-only updates wait for company: fewer commits, less SD-card wear. A write somebody
            # awaits ends the wait at once.
            deadline = loop.time() + self.background_delay
            while batch[-1][1] is None and (remaining := deadline - loop.time()) > 0:
                try:  # asyncio.timeout, not wait_for: on 3.11 wait_for can drop an item it already got
                    async with asyncio.timeout(remaining):
                        item = await self._queue.get()
                except TimeoutError:
                    break
                batch.append(item)
            while not self._queue.empty() and len(batch) < 512:
                batch.append(self._queue.get_nowait())
            error: BaseException | None = None
            try:
                await self._synchronous_for(any(durable for _, _, durable in batch))
                for sql, rows in _grouped(batch):
                    await self._db.executemany(sql, rows)
                await self._db.commit()
                self.commits += 1
                self.syncs += self._synchronous == "FULL"
            except sqlite3.Error as exc:
                error = self._map_error(exc)
                try:
                    await self._db.rollback()
                except sqlite3.Error:
                    log.exception("rollback failed")
            for _, future, _ in batch:
                if future is None or future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
            if error is not None and any(f is None for _, f, _ in batch):
                log.error("store: background state update lost: %s", error)

    async def _synchronous_for(self, durable: bool) -> None:
        """FULL (fsync at commit) for a transaction that holds a durable write, NORMAL for the rest."""
        wanted = "FULL" if durable else "NORMAL"
        if wanted != self._synchronous:
            await self._db.execute(f"PRAGMA synchronous={wanted}")
            self._synchronous = wanted

    @staticmethod
    def _map_error(exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "full" in text:
            return StoreFull(f"disk or database full: {text}")
        return StoreError(text)

    async def _write(self, writes: list[_Write], *, durable: bool = True) -> None:
        if self._closed:
            raise StoreError("store is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((writes, future, durable))
        await future

    def _write_later(self, writes: list[_Write]) -> None:
        if not self._closed:
            self._queue.put_nowait((writes, None, False))

    async def accept(
        self,
        frame: Frame,
        wire: bytes,
        *,
        hops: Iterable[bytes],
        local: bool,
        for_me: bool,
        via: str | None,
        now: float | None = None,
        durable: bool = True,
    ) -> None:
        """Commit a message and one queued delivery per next hop; return after the durable commit, or with
        ``durable=False`` after a commit that is fsynced later (see the module docstring).

        A message with no next hop (it is for us) is stored as delivered: it takes no queue quota."""
        incoming = Incoming(frame, wire, tuple(hops), local, for_me, via)
        error = (await self.accept_many([incoming], now, durable=durable))[0]
        if error is not None:
            raise error

    async def accept_many(
        self, batch: Sequence[Incoming], now: float | None = None, *, durable: bool = True
    ) -> list[StoreError | None]:
        """Commit a batch of messages in one transaction (one fsync for all, none with ``durable=False``);
        return after that commit. A received message and the end-to-end ack this hub made for it
        (``AckBatcher.reply_now``) are one batch: the ack is durable with the message, and sent after it.

        Each message is counted against the quota on its own: one that finds no room (``StoreFull``) is
        left out and the rest are committed. The answer says, per message, None (committed) or why not;
        when the commit itself fails, every message of the batch has that error."""
        now = time.time() if now is None else now
        outcome: list[StoreError | None] = [None] * len(batch)
        writes: list[_Write] = []
        counted = [0, 0]
        try:
            async with self._room:
                for index, item in enumerate(batch):
                    if item.hops:
                        try:
                            await self._make_room(len(item.wire), Priority(item.frame.priority), now)
                        except StoreError as exc:
                            outcome[index] = exc
                            continue
                        self.live_messages += 1
                        self.live_bytes += len(item.wire)
                        counted[0] += 1
                        counted[1] += len(item.wire)
                    writes += self._accept_writes(item, now)
            if writes:
                await self._write(writes, durable=durable)
        except StoreError as exc:
            self.live_messages -= counted[0]
            self.live_bytes -= counted[1]
            return [exc] * len(batch)
        except BaseException:
            self.live_messages -= counted[0]
            self.live_bytes -= counted[1]
            raise
        self._ids.update(item.frame.id for item, error in zip(batch, outcome, strict=True) if error is None)
        return outcome

    def _accept_writes(self, item: Incoming, now: float) -> list[_Write]:
        """The message row (its frame sealed at rest), and a queued delivery row per next hop."""
        frame, wire = item.frame, item.wire
        key_id, sealed = self.vault.seal(frame, wire, now)
        message = (
            frame.id, sealed, frame.sender, frame.recipient, int(frame.kind), int(frame.priority),
            frame.created, frame.expires, len(wire), int(item.local), int(item.for_me),
            "active" if item.hops else "delivered", now, item.via, key_id,
        )  # fmt: skip
        return [
            (_INSERT_MESSAGE, message),
            *((_INSERT_DELIVERY, (frame.id, hop, DeliveryState.QUEUED.value, now)) for hop in item.hops),
        ]

    def record_delivery(
        self,
        message_id: bytes,
        hop: bytes,
        state: DeliveryState,
        *,
        attempts: int,
        next_attempt: float,
        link: str | None,
        next_hop: bytes | None = None,
        error: str | None = None,
    ) -> None:
        """Write a delivery's new state behind the caller's back (see module docstring)."""
        row = (state.value, attempts, next_attempt, link, next_hop, error, time.time(), message_id, hop)
        self._write_later([(_UPDATE_DELIVERY, row)])

    def record_e2e_ack(self, ids: Iterable[bytes], when: float) -> None:
        self._write_later(
            [
                ("UPDATE messages SET e2e_acked_at=? WHERE id=? AND e2e_acked_at IS NULL", (when, i))
                for i in ids
            ]
        )

    def retire(self, message_id: bytes, state: str, size: int) -> None:
        """A message left the live set (all hops done, expired or evicted)."""
        if self._room.locked():  # an eviction may be choosing victims from rows read before this
            self._retired_meanwhile.add(message_id)
        self.live_messages -= 1
        self.live_bytes -= size
        self._write_later(
            [("UPDATE messages SET state=? WHERE id=? AND state='active'", (state, message_id))]
        )

    async def flush(self) -> None:
        """Wait until every write queued so far is committed."""
        await self._write([])

    # ---- quota --------------------------------------------------------------------------------------

    async def _make_room(self, size: int, priority: Priority, now: float) -> None:
        """Evict enough to fit a message of ``size`` bytes (the caller holds ``_room``)."""
        if self.live_messages + 1 <= self.max_messages and self.live_bytes + size <= self.max_bytes:
            return
        try:
            await self.flush()
            async with self._db.execute(
                "SELECT id, size, priority, CASE WHEN expires <= ? THEN 'expired' ELSE 'evicted' END"
                " FROM messages"
                " WHERE state='active' AND (expires <= ? OR priority < ?)"
                " ORDER BY expires <= ? DESC, priority ASC, accepted_at ASC LIMIT 1000",
                (now, now, min(int(priority) + 1, int(Priority.LIFE_SAFETY)), now),
            ) as cursor:
                rows = await cursor.fetchall()
            # From here to the router's drop nothing awaits, so no message settles in between; one that
            # settled while the query ran is already counted out and is no victim.
            need_count = self.live_messages + 1 - self.max_messages
            need_bytes = self.live_bytes + size - self.max_bytes
            victims: list[tuple[bytes, int, int, str]] = []
            for row in rows:
                if need_count <= 0 and need_bytes <= 0:
                    break
                if row[0] in self._retired_meanwhile:
                    continue
                victims.append((row[0], row[1], row[2], row[3]))
                need_count -= 1
                need_bytes -= row[1]
        finally:
            self._retired_meanwhile.clear()
        if need_count > 0 or need_bytes > 0:
            raise StoreFull(
                f"store quota reached ({self.live_messages} messages, {self.live_bytes} bytes) and nothing of"
                f" lower priority than {priority.name.lower()} can be evicted"
            )
        writes: list[_Write] = []
        for message_id, victim_size, victim_priority, state in victims:
            log.warning(
                "store over quota: %s message %s (priority %s, %d bytes)",
                state,
                message_id.hex(),
                Priority(victim_priority).name.lower(),
                victim_size,
            )
            writes.append(("UPDATE messages SET state=? WHERE id=?", (state, message_id)))
            writes.append(
                (
                    "UPDATE deliveries SET state=? WHERE message_id=? AND state IN ('queued','sent')",
                    (
                        DeliveryState.EVICTED.value if state == "evicted" else DeliveryState.EXPIRED.value,
                        message_id,
                    ),
                )
            )
            self.live_messages -= 1
            self.live_bytes -= victim_size
            self.evicted += 1
        self.on_evicted([v[0] for v in victims])  # before the write: an ack arriving meanwhile finds none
        await self._write(writes)

    # ---- reads --------------------------------------------------------------------------------------

    def has(self, message_id: bytes) -> bool:
        return message_id in self._ids

    async def purge(self, now: float) -> int:
        """Forget finished messages past their expiry; admission refuses expired frames, so their ids
        are no longer needed for deduplication. Deletes ``PURGE_BATCH`` at a time, each batch its own
        commit, then frees the pages (see module docstring). Returns how many were removed."""
        removed = 0
        while True:
            async with self._db.execute(
                "SELECT id FROM messages WHERE state != 'active' AND expires < ? LIMIT ?",
                (int(now), PURGE_BATCH),
            ) as cursor:
                ids = [row[0] async for row in cursor]
            if not ids:
                return removed
            await self._write(
                [("DELETE FROM deliveries WHERE message_id=?", (i,)) for i in ids]
                + [("DELETE FROM messages WHERE id=?", (i,)) for i in ids]
            )
            self._ids.difference_update(ids)
            removed += len(ids)
            self.upkeep.vacuum_due = True  # the checkpointer frees the pages, beside the writer
            if len(ids) < PURGE_BATCH:
                return removed

    async def shred(self, now: float) -> tuple[int, list[str]]:
        """Delete every message whose retention ended at ``now`` (also one still undelivered) and destroy
        the day keys they were sealed with. Returns how many messages went, and the keys destroyed."""
        keys = self.vault.keys.expired(now)
        if not keys:
            return 0, []
        marks = ",".join("?" * len(keys))
        async with self._db.execute(f"SELECT id FROM messages WHERE key_id IN ({marks})", keys) as cursor:
            ids = [row[0] async for row in cursor]
        await self._remove(ids, delete=True)
        for key_id in keys:
            self.vault.keys.destroy(key_id)
        return len(ids), keys

    async def open_sent_to(self, recipient: bytes) -> list[StoredMessage]:
        """Messages this hub originated to ``recipient`` that are live and not acknowledged end to end."""
        async with self._db.execute(
            f"SELECT {MESSAGE_COLUMNS}, key_id FROM messages"
            " WHERE recipient=? AND local=1 AND state='active' AND e2e_acked_at IS NULL",
            (recipient,),
        ) as cursor:
            rows = list(await cursor.fetchall())
        return [m for m in (self._opened(row) for row in rows) if m is not None]

    async def replace(self, ids: Sequence[bytes]) -> int:
        """These messages leave every queue: they were sent again under new ids (a key rotation)."""
        return await self._remove(ids, delete=False, state="replaced")

    async def erase(self, ids: Sequence[bytes]) -> int:
        """Erase these messages' frames now (a person's request): the bytes are overwritten and the
        message leaves every queue; its id stays until it expires so a replay is still refused."""
        return await self._remove(ids, delete=False)

    async def _remove(self, ids: Sequence[bytes], *, delete: bool, state: str = "erased") -> int:
        found: list[bytes] = []
        for start in range(0, len(ids), PURGE_BATCH):
            part = list(ids[start : start + PURGE_BATCH])
            marks = ",".join("?" * len(part))
            async with self._db.execute(
                f"SELECT id, state, size FROM messages WHERE id IN ({marks}) AND key_id IS NOT ?",
                (*part, ERASED),
            ) as cursor:
                rows = list(await cursor.fetchall())
            live = [row for row in rows if row[1] == "active"]
            for message_id, _, size in live:
                log.warning("store: message %s leaves its queue undelivered (%s)", message_id.hex(), state)
                self.retire(message_id, state, size)
            self.on_evicted([row[0] for row in live])
            found += [row[0] for row in rows]
            undelivered = DeliveryState.EVICTED.value
            writes: list[_Write] = [
                ("UPDATE deliveries SET state=? WHERE message_id=? AND state IN ('queued','sent')",
                 (undelivered, row[0])) for row in live
            ]  # fmt: skip
            if delete:
                writes += [("DELETE FROM deliveries WHERE message_id=?", (row[0],)) for row in rows]
                writes += [("DELETE FROM messages WHERE id=?", (row[0],)) for row in rows]
                self._ids.difference_update(row[0] for row in rows)
            else:
                writes += [
                    ("UPDATE messages SET wire=X'', key_id=?, state=?, for_me=0 WHERE id=?",
                     (ERASED, state, row[0])) for row in rows
                ]  # fmt: skip
            await self._write(writes)
        return len(found)

    async def recipients(self, ids: Sequence[bytes]) -> dict[bytes, bytes]:
        """The recipient of each stored message among ``ids`` (ids not stored are left out)."""
        known = [i for i in ids if i in self._ids]
        if not known:
            return {}
        marks = ",".join("?" * len(known))
        async with self._db.execute(
            f"SELECT id, recipient FROM messages WHERE id IN ({marks})", known
        ) as cur:
            return {row[0]: row[1] async for row in cur}

    async def resume_bound(self) -> int:
        """The newest message's rowid now: resuming reads only up to it, because everything accepted later
        is tracked by whoever accepted it."""
        async with self._db.execute("SELECT coalesce(max(rowid), 0) FROM messages") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def open_deliveries(self) -> int:
        """Deliveries not yet settled, on disk or in memory: a count over the ``deliveries_open`` index, so
        it costs the open deliveries only, never the history. Background state updates land within
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
            " AND (SELECT min(hop) FROM deliveries WHERE message_id = messages.id"
            " AND state IN ('queued','sent')) = ?"
            " ORDER BY accepted_at, rowid LIMIT ?) m"
            " JOIN deliveries d ON d.message_id = m.id AND d.state IN ('queued','sent')"
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
        async with self._db.execute(
            f"SELECT {MESSAGE_COLUMNS}, key_id FROM messages WHERE id=?", (message_id,)
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
        sql = "SELECT id FROM messages WHERE id BETWEEN ? AND ? LIMIT ?"
        async with self._db.execute(sql, (low, high, limit)) as cursor:
            return [row[0] async for row in cursor]

    async def deliveries(self, message_id: bytes) -> list[DeliveryRow]:
        async with self._db.execute(
            "SELECT hop, state, attempts, link, last_error, updated, next_hop FROM deliveries"
            " WHERE message_id=?",
            (message_id,),
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


def _grouped(batch: list[_Queued]) -> list[tuple[str, list[Sequence[Any]]]]:
    """All writes of one statement become one ``executemany`` (one trip to the database thread).

    Inserts run before updates, each statement's rows in arrival order, so an update never overtakes
    the insert of the row it changes. A delivery's state update sets every column, so only the last one
    per (message, hop) in a batch is kept."""
    groups: dict[str, list[Sequence[Any]]] = {}
    for writes, _, _ in batch:
        for sql, params in writes:
            groups.setdefault(sql, []).append(params)
    rows = groups.get(_UPDATE_DELIVERY)
    if rows is not None and len(rows) > 1:
        groups[_UPDATE_DELIVERY] = list({tuple(r[-2:]): r for r in rows}.values())
    return sorted(groups.items(), key=lambda item: not item[0].startswith("INSERT"))
