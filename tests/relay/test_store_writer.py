"""The store's group commit: writes that share a commit do not share the fate of one bad write."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from hub.core.errors import StoreError
from hub.relay.store_writer import GroupCommit

INSERT = "INSERT INTO notes(n) VALUES (?)"


async def started(folder: Path, column: str) -> tuple[Path, GroupCommit]:
    """A WAL database with a table ``notes(column)`` and a writer started on it."""
    path = folder / "s.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"CREATE TABLE notes({column})")
    writer = GroupCommit(path)
    await writer.start()
    return path, writer


async def test_one_bad_write_fails_only_its_own_caller(tmp_path: Path) -> None:
    path, writer = await started(tmp_path, "n INTEGER NOT NULL")
    # queued before the writer wakes, so the three share one commit (one executemany of the insert)
    outcome = await asyncio.gather(
        writer.write([(INSERT, (1,))]),
        writer.write([(INSERT, (None,))]),  # the NOT NULL constraint refuses it
        writer.write([(INSERT, (2,))]),
        return_exceptions=True,
    )
    assert outcome[0] is None and outcome[2] is None, outcome
    assert isinstance(outcome[1], StoreError) and "NOT NULL" in str(outcome[1])
    await writer.close()
    with sqlite3.connect(path) as db:  # answered only once committed: another connection reads them
        assert sorted(n for (n,) in db.execute("SELECT n FROM notes")) == [1, 2]
    with pytest.raises(StoreError, match="closed"):
        await writer.write([(INSERT, (3,))])


async def test_a_value_sqlite_cannot_bind_fails_only_its_caller_and_the_writer_goes_on(
    tmp_path: Path,
) -> None:
    # Python's sqlite3 raises OverflowError (not sqlite3.Error) for an integer beyond 64 bits: it must not
    # end the writer, or every later write would wait for ever.
    path, writer = await started(tmp_path, "n INTEGER")
    outcome = await asyncio.gather(
        writer.write([(INSERT, (1,))]),
        writer.write([(INSERT, (2**64,))]),
        return_exceptions=True,
    )
    assert outcome[0] is None, outcome
    assert isinstance(outcome[1], StoreError), outcome
    await asyncio.wait_for(writer.write([(INSERT, (3,))]), 60)
    await writer.close()
    with sqlite3.connect(path) as db:
        assert sorted(n for (n,) in db.execute("SELECT n FROM notes")) == [1, 3]


async def test_close_finishes_when_the_writer_task_has_already_ended(tmp_path: Path) -> None:
    """At a shutdown that cancels every task at once (an event loop's teardown), the writer can end
    before the store is closed; closing must not wait for it to answer."""
    path, writer = await started(tmp_path, "n INTEGER NOT NULL")
    await writer.write([(INSERT, (1,))])
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "store-writer"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with asyncio.timeout(60):  # generous: it ends at once, or not at all
        await writer.close()
    with sqlite3.connect(path) as db:
        assert [n for (n,) in db.execute("SELECT n FROM notes")] == [1]
    with pytest.raises(StoreError, match="closed"):
        await writer.write([(INSERT, (2,))])


async def test_a_write_the_ended_writer_never_took_fails_at_close(tmp_path: Path) -> None:
    """A write queued after the writer ended is never committed: closing tells its caller so instead of
    leaving it waiting for ever."""
    path, writer = await started(tmp_path, "n INTEGER NOT NULL")
    (task,) = [t for t in asyncio.all_tasks() if t.get_name() == "store-writer"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    stranded = asyncio.create_task(writer.write([(INSERT, (1,))]))
    await asyncio.sleep(0)  # queued (the queue has room: put does not wait)
    async with asyncio.timeout(60):  # generous: it ends at once, or not at all
        await writer.close()
        with pytest.raises(StoreError, match="before the write was committed"):
            await stranded
    with sqlite3.connect(path) as db:
        assert list(db.execute("SELECT n FROM notes")) == []
