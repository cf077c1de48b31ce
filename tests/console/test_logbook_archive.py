"""Log-book rotation: old entries move into archive segments, the chain runs on across them, and a
changed or missing segment is found by the full verification."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.console import logbook_archive
from hub.console.logbook import MAX_PAGE, EntryType, LogBook
from hub.console.logbook_blocks import BLOCK
from hub.console.logbook_export import export_csv
from hub.console.options import ConsoleOptions
from hub.core.clock import ManualClock
from hub.core.errors import StoreError
from tests.console.conftest import Pair
from tests.inproc import eventually


@pytest.fixture
async def book(tmp_path: Path) -> AsyncIterator[LogBook]:
    book = await LogBook.open(tmp_path / "console.db", ManualClock(), "a1b2c3d4e5f60718", block=5)
    await book.append_many([(EntryType.NOTE, f"post {n}", "hansen") for n in range(1, 31)])
    yield book
    await book.aclose()


def live_seqs(path: Path) -> list[int]:
    with sqlite3.connect(path) as raw:
        return [row[0] for row in raw.execute("SELECT seq FROM logbook ORDER BY seq")]


async def test_rotation_moves_the_oldest_into_segments_and_the_chain_runs_on(
    book: LogBook, tmp_path: Path
) -> None:
    assert await book.rotate(keep=10, most=15) == 15
    assert await book.rotate(keep=10, most=15) == 5
    assert await book.rotate(keep=10) == 0
    assert book.archive is not None
    assert [p.name for p in logbook_archive.segments(book.archive)] == [
        "segment-000000001-000000015.jsonl", "segment-000000016-000000020.jsonl"]  # fmt: skip
    assert live_seqs(tmp_path / "console.db") == list(range(21, 31))  # the live table stays bounded
    await book.append(EntryType.DECISION, "efter rotationen", author="hansen")
    entries = await book.entries()
    assert [e.seq for e in entries] == list(range(1, 32)) and entries[0].text == "post 1"
    assert await book.verify() is None and await book.verify_new() is None
    assert "post 1" in await export_csv(book)
    head = await book.head()
    assert head is not None and await book.verify(anchor=head) is None


async def test_a_changed_or_missing_segment_breaks_the_verification(book: LogBook) -> None:
    await book.rotate(keep=10, most=10)
    await book.rotate(keep=10, most=10)
    assert book.archive is not None
    first, second = logbook_archive.segments(book.archive)
    lines = second.read_text().splitlines()
    forged = json.loads(lines[2])
    forged["text"] = "noget andet"
    second.write_text("\n".join([*lines[:2], json.dumps(forged), *lines[3:]]) + "\n")
    assert await book.verify() == 13
    first.unlink()
    assert await book.verify() == 1


async def test_a_rotation_cut_short_leaves_one_copy_and_is_finished_next_time(
    book: LogBook, tmp_path: Path
) -> None:
    # the segment was written, then the power went before the live table let go of its entries
    rows = [
        (e.seq, e.time, e.author, e.node, str(e.type), e.text, e.hash) for e in (await book.entries())[:5]
    ]
    assert book.archive is not None
    logbook_archive.write(book.archive, rows)
    assert [e.seq for e in await book.entries()] == list(range(1, 31))
    assert await book.verify() is None
    assert await book.rotate(keep=25) == 0  # nothing new to move, but the leftovers go
    assert live_seqs(tmp_path / "console.db") == list(range(6, 31))


async def test_a_broken_chain_is_not_archived(book: LogBook, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "console.db") as raw:
        raw.execute("DROP TRIGGER logbook_000000001_no_update")
        raw.execute("UPDATE logbook_000000001 SET text = 'ændret' WHERE seq = 4")
    with pytest.raises(StoreError, match="entry 4 breaks the chain"):
        await book.rotate(keep=10)
    assert book.archive is not None and logbook_archive.segments(book.archive) == []
    assert live_seqs(tmp_path / "console.db") == list(range(1, 31))


DAY = 86400


async def test_entries_older_than_the_age_move_to_the_archive(tmp_path: Path) -> None:
    clock = ManualClock()
    book = await LogBook.open(tmp_path / "console.db", clock, "a1b2c3d4e5f60718", block=5)
    try:
        await book.append_many([(EntryType.NOTE, f"gammel {n}", "hansen") for n in range(300)])
        clock.advance(8 * DAY)
        await book.append_many([(EntryType.NOTE, f"ny {n}", "hansen") for n in range(250)])
        week_ago = int(clock.time() - 7 * DAY)
        assert await book.rotate(keep=20_000, older_than=week_ago) == 300  # far below the count
        assert live_seqs(tmp_path / "console.db") == list(range(301, 551))
        assert await book.rotate(keep=20_000, older_than=week_ago) == 0
        entries = await book.entries()
        assert [e.text for e in entries[:2]] == ["gammel 0", "gammel 1"] and len(entries) == 550
        assert await book.verify() is None and await book.verify_new() is None
    finally:
        await book.aclose()


async def test_a_quiet_book_keeps_its_newest_page_live(tmp_path: Path) -> None:
    clock = ManualClock()
    book = await LogBook.open(tmp_path / "console.db", clock, "a1b2c3d4e5f60718", block=5)
    try:
        await book.append_many([(EntryType.NOTE, f"post {n}", "hansen") for n in range(MAX_PAGE + 40)])
        clock.advance(30 * DAY)  # nothing written for a month: the console's tab still shows a page
        assert await book.rotate(keep=20_000, older_than=int(clock.time() - 7 * DAY)) == 40
        assert len(await book.page(limit=MAX_PAGE)) == MAX_PAGE
    finally:
        await book.aclose()


async def test_entries_from_a_clock_not_yet_set_do_not_count_as_old(tmp_path: Path) -> None:
    clock = ManualClock(start=86_400.0)  # a Pi without a real-time clock boots in 1970
    book = await LogBook.open(tmp_path / "console.db", clock, "a1b2c3d4e5f60718", block=5)
    try:
        await book.append_many([(EntryType.NOTE, f"før uret {n}", "hub") for n in range(MAX_PAGE + 40)])
        clock.correct(1_800_000_000.0, "gps")
        await book.append(EntryType.NOTE, "uret er stillet", author="hub")
        assert await book.rotate(keep=20_000, older_than=int(clock.time() - 7 * DAY)) == 0
        assert len(live_seqs(tmp_path / "console.db")) == MAX_PAGE + 41
    finally:
        await book.aclose()


@pytest.fixture
def console_options() -> ConsoleOptions:
    return ConsoleOptions(
        tick_interval=0.1,
        archive_purge_interval=0.1,
        logbook_live_entries=5,
        logbook_live_age=7 * DAY,
        logbook_block=2,
    )


async def test_the_running_console_keeps_its_live_log_book_bounded(pair: Pair) -> None:
    staff = pair.staff.console
    for n in range(12):
        await staff.note(EntryType.NOTE, f"notat {n}", author="hansen")
    db = pair.staff.hub.config.data_dir / "console.db"
    await eventually(lambda: len(live_seqs(db)) <= 5 + 1, timeout=30)  # a block more at most
    assert staff.logbook.archive is not None and logbook_archive.segments(staff.logbook.archive)
    texts = [e.text for e in await staff.logbook.entries()]
    assert [f"notat {n}" for n in range(12)] == [t for t in texts if t.startswith("notat")]
    assert await staff.logbook.verify() is None


def tables(path: Path) -> list[str]:
    with sqlite3.connect(path) as raw:
        found = raw.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'logbook_%'")
        return sorted(row[0] for row in found if row[0] != "logbook_notes")


async def test_the_archive_takes_whole_blocks_and_drops_their_tables(tmp_path: Path) -> None:
    path = tmp_path / "console.db"
    book = await LogBook.open(path, ManualClock(), "a1b2c3d4e5f60718")  # blocks of BLOCK (1,000)
    try:
        await book.append_many([(EntryType.RECEIVED, f"status {n}", "hub") for n in range(1, 2501)])
        assert tables(path) == ["logbook_000000001", "logbook_000001001", "logbook_000002001"]
        # all but the newest 1,000: entries up to 1,500, of which only the first block holds nothing newer
        assert await book.rotate(keep=1000) == BLOCK
        assert tables(path) == ["logbook_000001001", "logbook_000002001"]
        assert live_seqs(path) == list(range(1001, 2501))
        assert book.archive is not None
        assert [p.name for p in logbook_archive.segments(book.archive)] == [
            "segment-000000001-000001000.jsonl"
        ]
        assert await book.rotate(keep=1000) == 0  # the next block still holds entries among the newest
        assert await book.verify() is None and len(await book.entries()) == 2500
        with sqlite3.connect(path) as raw, pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM logbook_000001001 WHERE seq = 1001")
    finally:
        await book.aclose()


async def closed_book(folder: Path, entries: int) -> Path:
    """A log book of ``entries`` notes in blocks of 5, closed; the path of its database."""
    path = folder / "console.db"
    book = await LogBook.open(path, ManualClock(), "a1b2c3d4e5f60718", block=5)
    await book.append_many([(EntryType.NOTE, f"post {n}", "hansen") for n in range(1, entries + 1)])
    await book.aclose()
    return path


async def test_a_book_kept_in_one_table_keeps_it_as_its_oldest_block(tmp_path: Path) -> None:
    path = await closed_book(tmp_path, 12)
    with sqlite3.connect(path) as raw:  # as books were kept before blocks: one table, named logbook
        raw.executescript(
            "CREATE TABLE single (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, author TEXT NOT NULL,"
            " node TEXT NOT NULL, type TEXT NOT NULL, text TEXT NOT NULL, hash BLOB NOT NULL);"
            " INSERT INTO single SELECT * FROM logbook; DROP VIEW logbook; DROP TABLE logbook_000000001;"
            " DROP TABLE logbook_000000006; DROP TABLE logbook_000000011;"
            " ALTER TABLE single RENAME TO logbook;"
            " CREATE TRIGGER logbook_no_update BEFORE UPDATE ON logbook"
            " BEGIN SELECT RAISE(ABORT, 'the log book is append-only'); END;"
        )
    book = await LogBook.open(path, ManualClock(), "a1b2c3d4e5f60718", block=5)
    try:
        assert await book.verify() is None and [e.seq for e in await book.entries()] == list(range(1, 13))
        await book.append_many([(EntryType.NOTE, f"post {n}", "hansen") for n in range(13, 23)])
        assert tables(path) == [
            "logbook_000000011",
            "logbook_000000016",
            "logbook_000000021",
            "logbook_legacy",
        ]
        with sqlite3.connect(path) as raw:
            triggers = raw.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'logbook_legacy'")
            assert sorted(row[0] for row in triggers if row[0] != "logbook_legacy") == [
                "logbook_legacy_no_delete", "logbook_legacy_no_update"]  # fmt: skip
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                raw.execute("UPDATE logbook_legacy SET text = 'ændret' WHERE seq = 2")
        assert await book.rotate(keep=11, most=3) == 0  # up to 11 may go, but not the old table in part
        assert await book.rotate(keep=10, most=3) == 12  # now all of it: it goes whole, past ``most``
        assert live_seqs(path) == list(range(13, 23))
        assert "logbook_legacy" not in tables(path)
        assert await book.verify() is None and len(await book.entries()) == 22
    finally:
        await book.aclose()


async def test_an_empty_newest_block_holds_no_older_one_back(tmp_path: Path) -> None:
    path = await closed_book(tmp_path, 15)
    book = await LogBook.open(path, ManualClock(), "a1b2c3d4e5f60718", block=5)  # makes block 16-20
    try:
        assert "logbook_000000016" in tables(path)
        assert await book.rotate(keep=1) == 10  # 11-15 hold the newest entry
        assert live_seqs(path) == list(range(11, 16)) and await book.verify() is None
    finally:
        await book.aclose()


async def test_a_table_made_by_hand_beside_the_blocks_is_not_one(book: LogBook, tmp_path: Path) -> None:
    path = tmp_path / "console.db"
    with sqlite3.connect(path) as raw:  # a copy someone kept before a repair
        raw.execute("CREATE TABLE logbook_000000001_copy AS SELECT * FROM logbook_000000001")
    await book.append(EntryType.NOTE, "efter kopien", author="hansen")  # the view is made again
    assert live_seqs(path) == list(range(1, 32))
    assert await book.rotate(keep=10) == 20
    assert "logbook_000000001_copy" in tables(path) and await book.verify() is None


async def test_a_start_makes_the_view_again_and_gives_blocks_their_triggers_back(tmp_path: Path) -> None:
    path = await closed_book(tmp_path, 7)
    with sqlite3.connect(path) as raw:  # a repair by hand that left the book so
        raw.executescript("DROP VIEW logbook; DROP TRIGGER logbook_000000006_no_delete;")
    book = await LogBook.open(path, ManualClock(), "a1b2c3d4e5f60718", block=5)
    try:
        assert live_seqs(path) == list(range(1, 8)) and await book.verify() is None
        with sqlite3.connect(path) as raw, pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM logbook_000000006 WHERE seq = 7")
    finally:
        await book.aclose()
