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

Disk: the WAL is copied back every hour by a PASSIVE checkpoint beside the writer (``store_upkeep``);
when it passes ``WAL_TRUNCATE_AT``, a TRUNCATE checkpoint waits for a gap between commits and empties it.
``journal_size_limit`` shrinks the file back after it was reset. Finished messages are purged in batches
of ``PURGE_BATCH`` (each its own short transaction, so accepts are not held up), and a store created by
this version frees the purged pages with ``incremental_vacuum``; an older store keeps its size, and can
be compacted once with ``sqlite3 store.db 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM'`` while the hub is
stopped.

File: every connection to the database goes through SQLite's ``unix-excl`` VFS (``store_file``). It keeps
the WAL index in memory, where the hub's connections share it, instead of in ``store.db-shm``, whose pages
each commit dirtied and the kernel wrote back to the card (about 3 KB per status); and it holds the file's
lock while the hub runs, so no other process (``sqlite3 store.db``, ``beredt exercise report``) can open
the store then: they get "database is locked" at once. Stop the hub first.

Quota: ``max_messages`` and ``max_bytes`` bound the live messages. Over quota, expired messages are
evicted first, then the lowest priority and oldest, never life-safety; each eviction is logged loudly.
When nothing can be evicted, or the disk is full, ``StoreFull`` is raised and the message is not accepted.

At rest: each frame is sealed under the day key of its kind's retention (``store_at_rest``); ``shred``
deletes the messages whose retention ended and destroys their keys, ``erase`` removes chosen ones.

Beside this module: ``store_schema`` opens the database, ``store_census`` is the first read after that,
``store_writer`` the group commit, ``store_queries`` the reads.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import aiosqlite

from hub.core.at_rest import KEY_FOLDER, DataKeys, Retention
from hub.core.errors import StoreError, StoreFull
from hub.core.frame import Frame, Priority
from hub.core.tasks import cancel_and_wait
from hub.relay.delivery import DeliveryState
from hub.relay.store_at_rest import ERASED, FrameVault, Write, reseal_legacy
from hub.relay.store_census import take_census
from hub.relay.store_checks import claim_store, refuse_lost_store
from hub.relay.store_queries import StoreQueries
from hub.relay.store_records import Incoming
from hub.relay.store_schema import PAGE_SIZE, open_database
from hub.relay.store_upkeep import WalUpkeep
from hub.relay.store_writer import UPDATE_DELIVERY, GroupCommit

__all__ = ["PAGE_SIZE", "PURGE_BATCH", "Store"]

log = logging.getLogger("beredt.store")

PURGE_BATCH = 500
"""Finished messages deleted per transaction: a short pause for the writer, not one long one."""

_INSERT_MESSAGE = (
    "INSERT OR IGNORE INTO messages(row, id, wire, sender, recipient, kind, priority, created,"
    " expires, size, local, for_me, state, accepted_at, via, key_id)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_DELIVERY = "INSERT OR IGNORE INTO deliveries(message_row, hop, state, updated) VALUES (?,?,?,?)"
_DELETE_DELIVERIES = "DELETE FROM deliveries WHERE message_row=?"
_UNFINISHED_DELIVERIES_END = (
    "UPDATE deliveries SET state=? WHERE message_row=? AND state IN ('queued','sent')"
)


class Store(StoreQueries):
    def __init__(
        self, db: aiosqlite.Connection, path: Path, vault: FrameVault, *, max_messages: int, max_bytes: int
    ) -> None:
        super().__init__(db, vault)
        self.path = path
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.live_messages = 0
        self.live_bytes = 0
        self.evicted = 0
        self.quarantined = 0
        """Damaged messages moved aside since the store was made (``store_census``)."""
        self.on_evicted: Callable[[list[bytes]], None] = lambda ids: None
        """Set by the router to drop evicted messages from its queues."""
        self._writes = GroupCommit(path)
        self.upkeep = WalUpkeep(path)
        self._checkpointer: asyncio.Task[None] | None = None
        self._resealer: asyncio.Task[int] | None = None
        self._room = asyncio.Lock()
        """Held from the quota check until the newcomer is counted, so two accepts that both need room
        never choose the same victim (the database still shows it active until the eviction commits)."""
        self._retired_meanwhile: set[bytes] = set()
        """Messages retired while an eviction held ``_room``: never its victims (counted out already)."""
        self._last_row = 0
        """The row given to the newest message: rows are handed out here, so a message's deliveries and
        later updates name its row without a lookup."""
        self._uncommitted: dict[bytes, int] = {}
        """Rows handed out to messages whose commit is under way: a second copy joins the first."""

    @property
    def commits(self) -> int:
        return self._writes.commits

    @property
    def syncs(self) -> int:
        """Commits that were fsynced (``commits`` counts them all)."""
        return self._writes.syncs

    def hurry(self) -> None:
        """Commit what waits in the commit window now (``GroupCommit.hurry``)."""
        self._writes.hurry()

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
        db = await open_database(path)
        try:
            await claim_store(db, path, new_store=new_store)
        except StoreError:
            await db.close()
            raise
        vault = FrameVault(keys or DataKeys(path.with_name(KEY_FOLDER)), retention or Retention())
        store = cls(db, path, vault, max_messages=max_messages, max_bytes=max_bytes)
        try:
            census = await take_census(db, vault)
        except sqlite3.Error as exc:
            await db.close()
            raise StoreError(f"cannot read store {path}: {exc}") from exc
        store._rows, store._last_row, store.live_messages, store.live_bytes = (
            census.rows,
            census.last_row,
            census.live_messages,
            census.live_bytes,
        )
        store.quarantined = census.quarantined
        try:
            await store._writes.start()
        except StoreError:
            await db.close()
            raise
        store._checkpointer = asyncio.create_task(store.upkeep.run(), name="store-checkpointer")
        store._resealer = asyncio.create_task(
            reseal_legacy(db, vault, store._writes.write), name="store-resealer"
        )
        return store

    async def close(self) -> None:
        if self._writes.closed:
            return
        self._writes.closed = True
        await cancel_and_wait(self._resealer)
        await cancel_and_wait(self._checkpointer)
        await self._writes.close()
        await self._db.close()

    # ---- writes -------------------------------------------------------------------------------------

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
        self,
        batch: Sequence[Incoming],
        now: float | None = None,
        *,
        durable: bool = True,
        patience: float = 0.0,
    ) -> list[StoreError | None]:
        """Commit a batch of messages in one transaction (one fsync for all, none with ``durable=False``);
        return after that commit, which may wait up to ``patience`` seconds for other writes to share it
        (the commit window, ``store_writer``). A received message and the end-to-end ack this hub made for it
        (``AckBatcher.reply_now``) are one batch: the ack is durable with the message, and sent after it.

        Each message is counted against the quota on its own: one that finds no room (``StoreFull``) is
        left out and the rest are committed. The answer says, per message, None (committed) or why not;
        when the commit itself fails, every message of the batch has that error."""
        now = time.time() if now is None else now
        outcome: list[StoreError | None] = [None] * len(batch)
        writes: list[Write] = []
        counted = [0, 0]
        handed_out: dict[bytes, int] = {}
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
                    writes += self._accept_writes(item, now, handed_out)
            if writes:
                await self._writes.write(
                    writes,
                    durable=durable,
                    patience=patience,
                    messages=max(1, sum(not item.local for item in batch)),
                )
        except StoreError as exc:
            self.live_messages -= counted[0]
            self.live_bytes -= counted[1]
            return [exc] * len(batch)
        except BaseException:
            self.live_messages -= counted[0]
            self.live_bytes -= counted[1]
            raise
        finally:
            for message_id in handed_out:
                self._uncommitted.pop(message_id, None)
        self._rows.update(handed_out)
        return outcome

    def _accept_writes(self, item: Incoming, now: float, handed_out: dict[bytes, int]) -> list[Write]:
        """The message row (its frame sealed at rest) under the next row, and a queued delivery row per next
        hop. A message stored already is not stored again: new next hops join it. A copy of one whose commit
        is under way is written under the same row (the first commit to hold it wins, and if that one
        fails the copy's own commit stores it)."""
        frame, wire = item.frame, item.wire
        row = self._rows.get(frame.id)
        if row is not None:
            return [(_INSERT_DELIVERY, (row, hop, DeliveryState.QUEUED.value, now)) for hop in item.hops]
        row = self._uncommitted.get(frame.id)
        if row is None:
            self._last_row += 1
            row = self._uncommitted[frame.id] = self._last_row
        handed_out[frame.id] = row
        key_id, sealed = self.vault.seal(frame, wire, now)
        message = (
            row, frame.id, sealed, frame.sender, frame.recipient, int(frame.kind), int(frame.priority),
            frame.created, frame.expires, len(wire), int(item.local), int(item.for_me),
            "active" if item.hops else "delivered", now, item.via, key_id,
        )  # fmt: skip
        return [
            (_INSERT_MESSAGE, message),
            *((_INSERT_DELIVERY, (row, hop, DeliveryState.QUEUED.value, now)) for hop in item.hops),
        ]

    def _row(self, message_id: bytes) -> int | None:
        """The row of a message stored or being stored, None for one the store does not hold."""
        row = self._rows.get(message_id)
        return self._uncommitted.get(message_id) if row is None else row

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
        """Write a delivery's new state behind the caller's back (see module docstring); nothing for a
        message no longer stored."""
        row = self._row(message_id)
        if row is not None:
            update = (state.value, attempts, next_attempt, link, next_hop, error, time.time(), row, hop)
            self._writes.write_later([(UPDATE_DELIVERY, update)])

    def record_e2e_ack(self, ids: Iterable[bytes], when: float) -> None:
        rows = [row for i in ids if (row := self._row(i)) is not None]
        self._writes.write_later(
            [
                ("UPDATE messages SET e2e_acked_at=? WHERE row=? AND e2e_acked_at IS NULL", (when, r))
                for r in rows
            ]
        )

    def retire(self, message_id: bytes, state: str, size: int) -> None:
        """A message left the live set (all hops done, expired or evicted)."""
        if self._room.locked():  # an eviction may be choosing victims from rows read before this
            self._retired_meanwhile.add(message_id)
        self.live_messages -= 1
        self.live_bytes -= size
        row = self._row(message_id)
        if row is not None:
            self._writes.write_later(
                [("UPDATE messages SET state=? WHERE row=? AND state='active'", (state, row))]
            )

    async def flush(self) -> None:
        """Wait until every write queued so far is committed."""
        await self._writes.write([])

    # ---- quota --------------------------------------------------------------------------------------

    async def _make_room(self, size: int, priority: Priority, now: float) -> None:
        """Evict enough to fit a message of ``size`` bytes (the caller holds ``_room``)."""
        if self.live_messages + 1 <= self.max_messages and self.live_bytes + size <= self.max_bytes:
            return
        try:
            await self.flush()
            async with self._db.execute(
                "SELECT id, size, priority, CASE WHEN expires <= ? THEN 'expired' ELSE 'evicted' END, row"
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
            victims: list[tuple[bytes, int, int, str, int]] = []
            for row in rows:
                if need_count <= 0 and need_bytes <= 0:
                    break
                if row[0] in self._retired_meanwhile:
                    continue
                victims.append((row[0], row[1], row[2], row[3], row[4]))
                need_count -= 1
                need_bytes -= row[1]
        finally:
            self._retired_meanwhile.clear()
        if need_count > 0 or need_bytes > 0:
            raise StoreFull(
                f"store quota reached ({self.live_messages} messages, {self.live_bytes} bytes) and nothing of"
                f" lower priority than {priority.name.lower()} can be evicted"
            )
        writes: list[Write] = []
        for message_id, victim_size, victim_priority, state, victim_row in victims:
            log.warning(
                "store over quota: %s message %s (priority %s, %d bytes)",
                state,
                message_id.hex(),
                Priority(victim_priority).name.lower(),
                victim_size,
            )
            writes.append(("UPDATE messages SET state=? WHERE row=?", (state, victim_row)))
            writes.append(
                (
                    _UNFINISHED_DELIVERIES_END,
                    (
                        DeliveryState.EVICTED.value if state == "evicted" else DeliveryState.EXPIRED.value,
                        victim_row,
                    ),
                )
            )
            self.live_messages -= 1
            self.live_bytes -= victim_size
            self.evicted += 1
        self.on_evicted([v[0] for v in victims])  # before the write: an ack arriving meanwhile finds none
        await self._writes.write(writes)

    async def purge(self, now: float) -> int:
        """Forget finished messages past their expiry; admission refuses expired frames, so their ids
        are no longer needed for deduplication. Deletes ``PURGE_BATCH`` at a time, each batch its own
        commit, then frees the pages (see module docstring). Returns how many were removed."""
        removed = 0
        while True:
            async with self._db.execute(
                "SELECT row, id FROM messages WHERE state != 'active' AND expires < ? LIMIT ?",
                (int(now), PURGE_BATCH),
            ) as cursor:
                found = [(row[0], row[1]) async for row in cursor]
            if not found:
                return removed
            await self._writes.write(
                [(_DELETE_DELIVERIES, (row,)) for row, _ in found]
                + [("DELETE FROM messages WHERE row=?", (row,)) for row, _ in found]
            )
            for _, message_id in found:
                self._rows.pop(message_id, None)
            removed += len(found)
            self.upkeep.vacuum_due = True  # the checkpointer frees the pages, beside the writer
            if len(found) < PURGE_BATCH:
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

    async def replace(self, ids: Sequence[bytes]) -> int:
        """These messages leave every queue: they were sent again under new ids (a key rotation)."""
        return await self._remove(ids, delete=False, state="replaced")

    async def withdraw_revoked(self, recipient: bytes) -> tuple[list[bytes], int]:
        """Messages to ``recipient``, just revoked by the root, that it never confirmed: they leave every
        queue (no hub will take them from it again) and keep their frames, with state ``revoked``, so the
        sender sees why they were not delivered. Returns the ids this hub originated (queued here or
        already carried by a relay) and how many it was relaying for others (their senders report them)."""
        async with self._db.execute(
            "SELECT id, state, size, local, row FROM messages WHERE recipient=? AND e2e_acked_at IS NULL"
            " AND (state='active' OR (state='done' AND local=1))",
            (recipient,),
        ) as cursor:
            rows = list(await cursor.fetchall())
        live = [row for row in rows if row[1] == "active"]
        for message_id, _, size, _, _ in live:
            self.retire(message_id, "revoked", size)
        self.on_evicted([row[0] for row in live])
        await self._writes.write(
            [("UPDATE deliveries SET state='revoked' WHERE message_row=? AND state IN ('queued','sent')",
              (row[4],)) for row in live]
            + [("UPDATE messages SET state='revoked' WHERE row=?", (row[4],)) for row in rows]
        )  # fmt: skip
        own = [row[0] for row in rows if row[3]]
        return own, len(rows) - len(own)

    async def erase(self, ids: Sequence[bytes]) -> int:
        """Erase these messages' frames now (a person's request): the bytes are overwritten and the
        message leaves every queue; its id stays until it expires so a replay is still refused."""
        return await self._remove(ids, delete=False)

    async def _remove(self, ids: Sequence[bytes], *, delete: bool, state: str = "erased") -> int:
        found: list[bytes] = []
        stored = [known for i in ids if (known := self._rows.get(i)) is not None]
        for start in range(0, len(stored), PURGE_BATCH):
            part = stored[start : start + PURGE_BATCH]
            marks = ",".join("?" * len(part))
            async with self._db.execute(
                f"SELECT id, state, size, row FROM messages WHERE row IN ({marks}) AND key_id IS NOT ?",
                (*part, ERASED),
            ) as cursor:
                rows = list(await cursor.fetchall())
            live = [row for row in rows if row[1] == "active"]
            for message_id, _, size, _ in live:
                log.warning("store: message %s leaves its queue undelivered (%s)", message_id.hex(), state)
                self.retire(message_id, state, size)
            self.on_evicted([row[0] for row in live])
            found += [row[0] for row in rows]
            undelivered = DeliveryState.EVICTED.value
            writes: list[Write] = [
                (_UNFINISHED_DELIVERIES_END, (undelivered, row[3])) for row in live
            ]  # fmt: skip
            if delete:
                writes += [(_DELETE_DELIVERIES, (row[3],)) for row in rows]
                writes += [("DELETE FROM messages WHERE row=?", (row[3],)) for row in rows]
                for row in rows:
                    del self._rows[row[0]]
            else:
                writes += [
                    ("UPDATE messages SET wire=X'', key_id=?, state=?, for_me=0 WHERE row=?",
                     (ERASED, state, row[3])) for row in rows
                ]  # fmt: skip
            await self._writes.write(writes)
        return len(found)
