"""The store's one writer: group commit, fsynced only when a transaction holds a durable write.

Every write that arrives while a commit is under way joins the next transaction, one ``executemany`` per
statement, and each caller is answered after the commit that holds its write. A transaction that a bad
write rolls back is committed again a caller at a time, so only that write's caller gets the error. Writes
nobody awaits wait up to ``background_delay`` for company (see ``hub.relay.store``).

A write may also be given ``patience``: seconds it may wait for company though its caller awaits it (the
commit window, ``[timing] commit_window``). At 80 care homes every 5 minutes a status arrives every few
seconds, each fsync of a commit writes at least one whole 4 KiB page of the WAL again, and a status's own
pages are about 1 KiB: three statuses sharing an fsync more than halve what the card writes per status, six
cut it to less than a third (``bench/bench_commit_floor.py``). A commit waits until the first deadline of
its awaited writes (state updates ride along and never shorten it), until those hold ``COMPANY`` received
messages (under load the queue fills the commit on its own; and at most ``COMPANY - 1`` awaited writes wait
at once, fewer than a link's inbound workers, so a link always has workers free to read its acks) or until
``hurry`` is called.

The writer has a connection of its own, used only in its own thread, and a transaction is one trip to
that thread: its statements and its commit run there in one go. A trip per statement (as through the
store's reading connection) would wait for the event loop after each one, and every frame waiting for the
commit would wait with it; on a relay busy verifying frames that was most of a commit's time. Readers
see a transaction once it is committed (WAL), as before.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hub.core.errors import StoreError, StoreFull
from hub.core.tasks import cancel_and_wait
from hub.relay.store_at_rest import Write
from hub.relay.store_schema import connect_writer

log = logging.getLogger("beredt.store")

BACKGROUND_DELAY = 5.0
"""Seconds a commit of nothing but state updates waits for company: at a received status every few seconds
(80 care homes every 5 minutes), the updates of one status's end-to-end ack (sent, hop-acked, retired)
ride on the next status's commit instead of a commit of their own."""
UPDATE_DELIVERY = (
    "UPDATE deliveries SET state=?, attempts=?, next_attempt=?, link=?, next_hop=?, last_error=?, updated=?"
    " WHERE message_row=? AND hop=?"
)
COMPANY = 6
"""Received messages in awaited writes that end a commit window: six statuses to an fsync write about 2.6 KB
of WAL each, three 4.0 KB, one 9.2 KB (``bench/bench_commit_floor.py``). Each awaited write holds at least
one, so at most five wait at once; ``hub.relay.link_reading.INBOUND_WORKERS`` is three more than that."""


@dataclass(slots=True)
class _Queued:
    writes: list[Write]
    future: asyncio.Future[None] | None
    """Answered after the commit; None: nobody awaits these writes."""
    durable: bool
    """Whether the commit holding them must be fsynced."""
    due: float | None
    """Loop time by which they must be committed; None (state updates): ``background_delay`` after the
    writer takes them, unless awaited writes share their commit, whose deadline rules then."""
    messages: int = 1
    """Received messages the writes hold, towards ``COMPANY``."""


_Grouped = list[tuple[str, list[Sequence[Any]]]]
_T = TypeVar("_T")


class GroupCommit:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
        self._db: sqlite3.Connection | None = None
        self.commits = 0
        self.syncs = 0
        """Commits that were fsynced (``commits`` counts them all)."""
        self.background_delay = BACKGROUND_DELAY
        self._synchronous = "FULL"
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._hurried = asyncio.Event()
        self._gathering = False
        """While a commit waits for company: only then may ``hurry`` end the wait."""
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        """Set when the store closes: from then on writes are refused."""

    async def start(self) -> None:
        """Open the writer's connection (``StoreError`` if it cannot be) and start taking writes."""
        try:
            self._db = await self._in_thread(connect_writer, self._path)
        except sqlite3.Error as exc:
            self._thread.shutdown(wait=False)
            raise StoreError(f"cannot open store {self._path} for writing: {exc}") from exc
        self._task = asyncio.create_task(self._loop(), name="store-writer")

    async def close(self) -> None:
        """Commit what is queued, then stop; later writes raise ``StoreError``."""
        self.closed = True
        task = self._task
        if task is not None:
            try:
                if not task.done():
                    # The writer answers this marker once everything queued before it is committed. One
                    # that has ended (cancelled along with every other task at a shutdown) never will.
                    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    self._queue.put_nowait(_Queued([], done, True, 0.0))
                    await asyncio.wait((done, task), return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait(task)
        while not self._queue.empty():  # left by a writer that ended first: never committed, say so
            future = self._queue.get_nowait().future
            if future is not None and not future.done():
                future.set_exception(StoreError("store closed before the write was committed"))
        if self._db is not None:
            await self._in_thread(self._db.close)
        self._thread.shutdown(wait=False)  # idle by now: its thread ends at once

    async def write(
        self, writes: list[Write], *, durable: bool = True, patience: float = 0.0, messages: int = 1
    ) -> None:
        """Return once ``writes`` are committed (fsynced when ``durable``), waiting up to ``patience``
        seconds for other writes to share the commit; ``writes`` hold ``messages`` messages."""
        if self.closed:
            raise StoreError("store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        await self._queue.put(_Queued(writes, future, durable, loop.time() + patience, messages))
        await future

    def write_later(self, writes: list[Write]) -> None:
        """Queue ``writes`` without waiting for them (not fsynced on their own)."""
        if not self.closed:
            self._queue.put_nowait(_Queued(writes, None, False, None))

    def hurry(self) -> None:
        """End the wait of the commit being gathered, if one is: someone cannot wait any longer (a sender
        that resends what waits in the window has stopped waiting for its hop ack)."""
        if self._gathering:
            self._hurried.set()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            # Fewer commits, less SD-card wear: wait for company until the first awaited write is due (state
            # updates alone: ``background_delay``), the awaited writes hold COMPANY messages, or a hurry.
            self._hurried.clear()
            self._gathering = True
            background = loop.time() + self.background_delay
            while True:
                awaited = [item for item in batch if item.future is not None]
                deadline = min((item.due or 0.0 for item in awaited), default=background)
                remaining = deadline - loop.time()
                if remaining <= 0 or self._hurried.is_set() or sum(i.messages for i in awaited) >= COMPANY:
                    break
                item = await self._next_within(remaining)
                if item is None:
                    break
                batch.append(item)
            self._gathering = False
            while not self._queue.empty() and len(batch) < 512:
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _next_within(self, seconds: float) -> _Queued | None:
        """The next queued write, or None when ``seconds`` pass or ``hurry`` is called first."""
        getting = asyncio.ensure_future(self._queue.get())
        hurried = asyncio.ensure_future(self._hurried.wait())
        try:
            await asyncio.wait((getting, hurried), timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurried.cancel()
            if not getting.done():
                getting.cancel()
        # a get that completed as it was cancelled keeps its item: never drop a write
        if getting.done() and not getting.cancelled():
            return getting.result()
        return None

    async def _commit(self, batch: list[_Queued]) -> None:
        """Commit ``batch`` in one transaction and answer each caller after it. When a statement fails (a
        constraint, a value SQLite cannot take), not the database, the batch is committed again one caller
        at a time: one caller's bad write fails only that caller, not every write that shared its commit."""
        failure = await self._attempt(batch)
        if failure is not None and len(batch) > 1 and not isinstance(failure, sqlite3.OperationalError):
            log.warning("store: a group commit failed (%s): its %d writes committed one by one", failure,
                        len(batch))  # fmt: skip
            for item in batch:
                await self._commit([item])
            return
        error = None if failure is None else _mapped(failure)
        for item in batch:
            future = item.future
            if future is None or future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        if error is not None and any(item.future is None for item in batch):
            log.error("store: background state update lost: %s", error)

    async def _attempt(self, batch: list[_Queued]) -> sqlite3.Error | None:
        """One transaction of every write in ``batch``; the error that rolled it back, None once committed.
        An ``OperationalError`` is the database's (locked, full, I/O) and would fail each write alone too."""
        durable = any(item.durable for item in batch)
        try:
            await self._in_thread(self._transaction, _grouped(batch), durable)
        except sqlite3.Error as exc:
            return exc
        self.commits += 1
        self.syncs += durable
        return None

    def _transaction(self, groups: _Grouped, durable: bool) -> None:
        """One transaction, in the writer's thread: fsynced at commit (synchronous FULL) when ``durable``,
        else NORMAL. Rolled back if any statement fails (``sqlite3.Error`` raised, whatever failed)."""
        db = self._db
        assert db is not None, "started before use"
        wanted = "FULL" if durable else "NORMAL"
        if wanted != self._synchronous:
            db.execute(f"PRAGMA synchronous={wanted}")
            self._synchronous = wanted
        try:
            for sql, rows in groups:
                db.executemany(sql, rows)
            db.commit()
        except (sqlite3.Error, OverflowError, ValueError) as exc:
            # A value sqlite3 cannot bind (an integer beyond 64 bits) raises outside sqlite3.Error: the
            # same rollback and the same answer, so the writer goes on and only its caller is refused.
            try:
                db.rollback()
            except sqlite3.Error:
                log.exception("rollback failed")
            if isinstance(exc, sqlite3.Error):
                raise
            raise sqlite3.DataError(f"a value the database cannot store: {exc}") from exc

    async def _in_thread(self, call: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)


def _mapped(exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if "full" in text:
        return StoreFull(f"disk or database full: {text}")
    return StoreError(text)


def _grouped(batch: list[_Queued]) -> _Grouped:
    """All writes of one statement become one ``executemany`` (one trip to the database thread).

    Inserts run before updates, each statement's rows in arrival order, so an update never overtakes
    the insert of the row it changes. A delivery's state update sets every column, so only the last one
    per (message, hop) in a batch is kept."""
    groups: dict[str, list[Sequence[Any]]] = {}
    for item in batch:
        for sql, params in item.writes:
            groups.setdefault(sql, []).append(params)
    rows = groups.get(UPDATE_DELIVERY)
    if rows is not None and len(rows) > 1:
        groups[UPDATE_DELIVERY] = list({tuple(r[-2:]): r for r in rows}.values())
    return sorted(groups.items(), key=lambda item: not item[0].startswith("INSERT"))
