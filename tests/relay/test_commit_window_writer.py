"""The store writer's commit window (``GroupCommit.write(patience=...)``): a write may wait for others to
share its fsynced commit, and the wait ends at the first deadline, at ``COMPANY`` messages, or on
``hurry``."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from hub.relay.store_writer import COMPANY, GroupCommit
from tests.inproc import eventually

INSERT = "INSERT INTO notes(n) VALUES (?)"
LONG = 600.0
"""A window no test here could wait out within its timeouts."""


async def started(folder: Path) -> tuple[Path, GroupCommit]:
    path = folder / "s.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE notes(n INTEGER)")
    writer = GroupCommit(path)
    await writer.start()
    return path, writer


def notes(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return sorted(n for (n,) in db.execute("SELECT n FROM notes"))


async def test_a_patient_write_waits_for_company_and_shares_one_fsync(tmp_path: Path) -> None:
    path, writer = await started(tmp_path)
    first = asyncio.create_task(writer.write([(INSERT, (1,))], patience=LONG))
    await asyncio.sleep(0.2)
    assert not first.done(), "a patient write alone waits in the window"
    assert notes(path) == []
    # a write that cannot wait ends the window: both in one commit
    await asyncio.wait_for(writer.write([(INSERT, (2,))]), 60)
    await asyncio.wait_for(first, 60)
    assert (writer.commits, writer.syncs) == (1, 1)
    assert notes(path) == [1, 2]
    await writer.close()


async def test_the_window_ends_when_it_holds_enough_messages(tmp_path: Path) -> None:
    path, writer = await started(tmp_path)
    waiting = [asyncio.create_task(writer.write([(INSERT, (n,))], patience=LONG)) for n in range(COMPANY - 1)]
    await asyncio.sleep(0.2)
    assert not any(task.done() for task in waiting)
    await asyncio.wait_for(writer.write([(INSERT, (99,))], patience=LONG), 60)
    await asyncio.wait_for(asyncio.gather(*waiting), 60)
    assert writer.syncs == 1
    # one write holding that many messages (a batch read together) waits for nobody
    await asyncio.wait_for(writer.write([(INSERT, (100,))], patience=LONG, messages=COMPANY), 60)
    assert writer.syncs == 2
    assert notes(path) == [*range(COMPANY - 1), 99, 100]
    await writer.close()


async def test_hurry_ends_the_window_and_the_first_deadline_rules(tmp_path: Path) -> None:
    path, writer = await started(tmp_path)
    writer.hurry()  # nothing is being gathered: it is for no later commit
    waiting = asyncio.create_task(writer.write([(INSERT, (1,))], patience=LONG))
    await asyncio.sleep(0.2)
    assert not waiting.done(), "a hurry before the window does not end it"
    writer.hurry()
    await asyncio.wait_for(waiting, 60)
    assert writer.syncs == 1
    # a short window joined by a long one: committed when the short one is due
    short = asyncio.create_task(writer.write([(INSERT, (2,))], patience=0.5))
    await asyncio.sleep(0)
    long = asyncio.create_task(writer.write([(INSERT, (3,))], patience=LONG))
    await asyncio.wait_for(asyncio.gather(short, long), 60)
    assert writer.syncs == 2 and notes(path) == [1, 2, 3]
    await writer.close()


async def test_close_commits_what_waits_in_the_window(tmp_path: Path) -> None:
    path, writer = await started(tmp_path)
    waiting = asyncio.create_task(writer.write([(INSERT, (1,))], patience=LONG))
    await asyncio.sleep(0.2)
    await asyncio.wait_for(writer.close(), 60)
    await asyncio.wait_for(waiting, 1)
    assert notes(path) == [1]


async def test_state_updates_ride_along_and_never_cut_a_window_short(tmp_path: Path) -> None:
    path, writer = await started(tmp_path)
    writer.background_delay = 0.1
    writer.write_later([(INSERT, (1,))])  # a state update nobody awaits: waits 0.1 s alone
    await asyncio.sleep(0.02)
    waiting = asyncio.create_task(writer.write([(INSERT, (2,))], patience=LONG))
    await asyncio.sleep(0.5)
    assert not waiting.done() and notes(path) == [], "the update waits in the window with the message"
    await asyncio.wait_for(writer.write([(INSERT, (3,))]), 60)
    await asyncio.wait_for(waiting, 60)
    assert (writer.commits, writer.syncs) == (1, 1) and notes(path) == [1, 2, 3]
    writer.write_later([(INSERT, (4,))])  # alone, it still commits after its own delay
    await eventually(lambda: notes(path) == [1, 2, 3, 4], 60)
    assert (writer.commits, writer.syncs) == (2, 1)
    await writer.close()
