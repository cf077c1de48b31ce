"""Entries of received messages are held and written together: in the order things happened, with the
time they were held, before anything the book writes next, before a walk of the whole book and at a close;
``received_ids`` finds the messages the book already has an entry for."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hub.console import state
from hub.console.logbook import EntryType, LogBook, LogEntry
from hub.console.loops import logbook_work
from hub.console.options import ConsoleOptions
from hub.console.service import Console
from hub.core.clock import ManualClock, SystemClock
from tests.console.conftest import Pair
from tests.console.test_routes import Client, clients  # noqa: F401 - the fixture
from tests.inproc import eventually, eventually_async

NODE = "a1b2c3d4e5f60718"
RECEIVED = [
    (EntryType.RECEIVED, "Status fra Lindely via internet: Normal [id 0a0b]", "hub"),
    (EntryType.RECEIVED, "Status fra Solbakken via LoRa: Normal [id 0c0d]", "hub"),
]


async def test_held_entries_are_written_first_with_their_own_time(tmp_path: Path) -> None:
    clock = ManualClock()
    book = await LogBook.open(tmp_path / "console.db", clock, NODE)
    told: list[LogEntry] = []
    book.on_written = told.extend
    try:
        book.hold(RECEIVED)
        assert book.held == 2 and book.held_since is not None
        assert await book.page(limit=10) == []  # held, not written
        clock.advance(30)
        (decision,) = await book.append_many([(EntryType.DECISION, "Diesel til Lindely", "Hansen")])
        entries = await book.page(limit=10)
        assert [(e.seq, e.type) for e in reversed(entries)] == [
            (1, EntryType.RECEIVED),
            (2, EntryType.RECEIVED),
            (3, EntryType.DECISION),
        ]
        assert decision.seq == 3 and decision.time == entries[1].time + 30  # held ones keep when held
        assert told == list(reversed(entries[1:]))  # the console shows them once written
        assert book.held == 0 and book.held_since is None
        assert await book.verify() is None
    finally:
        await book.aclose()


async def test_flush_a_walk_of_the_book_and_a_close_write_what_is_held(tmp_path: Path) -> None:
    path = tmp_path / "console.db"
    book = await LogBook.open(path, ManualClock(), NODE)
    book.hold(RECEIVED[:1])
    await book.flush()
    assert [e.text for e in await book.page(limit=10)] == [RECEIVED[0][1]]
    book.hold(RECEIVED[1:])
    assert [e.seq for e in await book.entries()] == [1, 2]  # an export or a verify sees everything
    book.hold([(EntryType.RECEIVED, "Status fra Bakkely via SINE: Normal [id 0e0f]", "hub")])
    await book.aclose()  # a clean stop writes what is held
    again = await LogBook.open(path, ManualClock(), NODE)
    try:
        assert [e.seq for e in await again.page(limit=10)] == [3, 2, 1]
        assert await again.verify() is None
    finally:
        await again.aclose()


async def test_an_entry_held_while_a_write_waits_for_the_database_goes_before_it(tmp_path: Path) -> None:
    path = tmp_path / "console.db"
    clock = ManualClock()
    book = await LogBook.open(path, clock, NODE)
    other = sqlite3.connect(path, isolation_level=None)  # another writer on the file (a closing console)
    try:
        other.execute("BEGIN IMMEDIATE")
        writing = asyncio.get_running_loop().create_task(
            book.append(EntryType.DECISION, "Diesel til Lindely", author="Hansen")
        )
        await eventually(book._lock.locked)  # the write waits for the database
        book.hold(RECEIVED[:1])
        clock.advance(5)  # the write is stamped when it gets the database, after the entry was held
        other.execute("COMMIT")
        decision = await writing
        await book.flush()
        entries = list(reversed(await book.page(limit=10)))
        assert [e.type for e in entries] == [EntryType.RECEIVED, EntryType.DECISION]
        assert [e.time for e in entries] == sorted(e.time for e in entries)  # seq order is time order
        assert decision == entries[1] and book.held == 0
    finally:
        other.close()
        await book.aclose()


async def test_a_write_cancelled_while_it_waits_for_the_database_still_writes_what_it_took(
    tmp_path: Path,
) -> None:
    path = tmp_path / "console.db"
    book = await LogBook.open(path, ManualClock(), NODE)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        book.hold(RECEIVED)
        flushing = asyncio.get_running_loop().create_task(book.flush())  # the console's tick
        await eventually(book._lock.locked)
        flushing.cancel()  # a stop cancels the console's loops, then closes the book
        await asyncio.gather(flushing, return_exceptions=True)
        other.execute("COMMIT")
        await book.aclose()
    finally:
        other.close()
    again = await LogBook.open(path, ManualClock(), NODE)
    try:
        assert [e.text for e in reversed(await again.page(limit=10))] == [text for _, text, _ in RECEIVED]
        assert await again.verify() is None
    finally:
        await again.aclose()


async def test_received_ids_names_written_and_held_entries(tmp_path: Path) -> None:
    clock = ManualClock()
    book = await LogBook.open(tmp_path / "console.db", clock, NODE)
    try:
        book.hold(RECEIVED[:1])
        await book.flush()
        clock.advance(600)
        book.hold(RECEIVED[1:])
        await book.append(EntryType.NOTE, "Vagtskifte [id ffff] er ikke en modtaget besked", author="Hansen")
        book.hold(
            [(EntryType.RECEIVED, "Tekst fra Bakkely: [id 1111] [id 0e0f] (ført ind ved genstart)", "hub")]
        )
        assert await book.received_ids(clock.time() - 3600) == {"0a0b", "0c0d", "0e0f"}
        assert await book.received_ids(clock.time() - 60) == {"0c0d", "0e0f"}  # stamped since then
    finally:
        await book.aclose()


@pytest.fixture
def console_options() -> ConsoleOptions:
    return ConsoleOptions(tick_interval=0.05, logbook_received_interval=0.5)


async def test_a_console_writes_a_received_status_within_the_interval_and_shows_it_live(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    staff_console = pair.staff.console
    events = staff_console.listen()
    logged: list[dict[str, Any]] = []

    async def collect() -> None:
        async for event in events:
            if event.topic == "logbook":
                logged.extend(event.data["entries"])

    collector = asyncio.get_running_loop().create_task(collect())
    try:
        care = clients(pair.care.url)
        await care.login("lindely")
        await care.ok("POST", "status", {"preset": "ok", "power": "mains"})

        def on_board() -> bool:
            return [row["status"] is not None for row in staff_console.board_rows()] == [True]

        await eventually(on_board, 60)

        async def in_book() -> list[LogEntry]:
            return [e for e in await staff_console.logbook.page() if e.type is EntryType.RECEIVED]

        await eventually_async(in_book, 60)  # the tick writes it once it has been held for the interval
        (entry,) = await in_book()
        assert "status fra Plejecenter Lindely" in entry.text
        assert staff_console.logbook.held == 0
        await eventually(lambda: any(e["seq"] == entry.seq for e in logged), 30)  # the browser is told
    finally:
        staff_console.stop_listening()
        await asyncio.gather(collector, return_exceptions=True)


@pytest.mark.parametrize(
    "console_options", [ConsoleOptions(tick_interval=0.05, logbook_received_interval=0.0)]
)  # each batch's entries written at once
async def test_a_batch_whose_entries_could_not_be_written_at_once_is_logged_once(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    staff_console = pair.staff.console
    path = pair.staff.hub.config.data_dir / "console.db"
    care = clients(pair.care.url)
    await care.login("lindely")
    # another writer holds the file past the busy wait
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # from a thread: a write of the running console's may be under way, and needs the event loop to end
        await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")
        await care.ok("POST", "status", {"preset": "ok", "power": "mains"})

        def write_failed() -> bool:  # the inbox's own write of the batch's entries
            return any(
                r.funcName == "_drain_inbox" and "log book append failed" in str(r.exc_info and r.exc_info[1])
                for r in caplog.records
            )

        await eventually(write_failed, 60)
    finally:
        other.execute("COMMIT")
        other.close()
    await care.ok("POST", "status", {"preset": "ok", "power": "generator"})

    async def received() -> list[str]:
        return [e.text for e in await staff_console.logbook.page() if e.type is EntryType.RECEIVED]

    async def both_written() -> bool:
        return len(await received()) >= 2 and staff_console.logbook.held == 0

    await eventually_async(both_written, 60)
    texts = await received()
    assert len(texts) == 2 and len(await staff_console.logbook.received_ids(0)) == 2  # each status once


async def test_a_long_entry_keeps_its_message_id_last(pair: Pair) -> None:
    """A sender's text long enough to be cut names another message's id: the entry still ends with its own,
    so a start after a crash does not take the other message for logged."""
    staff_console = pair.staff.console
    own, other = "1f" * 16, "2e" * 16
    facility = "Lindely " + "x" * 3000 + f" [id {other}] " + "y" * 3000
    item = {
        "kind": "status",
        "from_name": "Plejecenter Lindely",
        "via_kind": "internet",
        "body": {"facility": facility},
        "id": own,
        "status": "normal",
    }
    (note,) = await staff_console._received_notes([item], " (ført ind ved genstart)")
    assert len(note[1]) <= 4000 and note[1].endswith(f"[id {own}] (ført ind ved genstart)")
    staff_console.logbook.hold([note])
    await staff_console.logbook.flush()
    assert await staff_console.logbook.received_ids(0) == {own}


@pytest.mark.parametrize(
    "console_options", [ConsoleOptions(tick_interval=600, logbook_received_interval=600)]
)  # nothing written but what the test asks for
async def test_a_board_save_covers_no_message_whose_entry_is_still_held(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    """Statuses folded in while a board save waits for the log book are not counted as saved: a start after
    a crash folds them in again and writes their entries."""
    staff_console, book = pair.staff.console, pair.staff.console.logbook
    care = clients(pair.care.url)
    await care.login("lindely")

    def folded(count: int) -> Callable[[], bool]:
        def check() -> bool:
            # the inbox read now: a link change's entry may hold up the events that would wake it
            staff_console.inbox_changed.set()
            return len(staff_console.messages) >= count  # in the console's message list

        return check

    await care.ok("POST", "status", {"preset": "ok", "power": "mains"})
    await eventually(folded(1), 60)
    path = pair.staff.hub.config.data_dir / "console.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        # the save's write of the held entries waits for the database; taken from a thread, as a write of
        # the running console's may be under way and needs the event loop to end
        await asyncio.to_thread(other.execute, "BEGIN IMMEDIATE")
        book.hold(RECEIVED[:1])  # something held, whether or not a link change wrote the status's entry
        saving = asyncio.get_running_loop().create_task(staff_console.save_board())
        await eventually(book._lock.locked)
        await care.ok("POST", "status", {"preset": "ok", "power": "generator"})
        await eventually(folded(2), 4)  # within the database's busy wait
        clock = pair.staff.hub.clock
        assert isinstance(clock, SystemClock)
        clock.offset += 5.0  # the next status comes in a later batch, past a start's second of overlap
        await care.ok("POST", "status", {"preset": "ok", "power": "mains"})
        await eventually(folded(3), 4)
    finally:
        other.execute("COMMIT")
        other.close()
    await saving
    saved_at = float((await state.load(staff_console.db, staff_console.sealer)).get("board_saved_at", 0.0))
    written = {e.text for e in await book.page() if e.type is EntryType.RECEIVED}
    for message in await pair.staff.hub.store.inbox(limit=10):
        if not any(f"[id {staff_console.decode(message)['id']}]" in text for text in written):
            assert message.accepted_at >= saved_at - 1.0  # a start folds it in and writes its entry


@pytest.mark.parametrize(
    "console_options", [ConsoleOptions(tick_interval=600, logbook_received_interval=600)]
)  # the status's entry stays held until the head is sent
async def test_a_witnessed_head_comes_after_the_entries_held_before_it(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    staff_console, book = pair.staff.console, pair.staff.console.logbook
    care = clients(pair.care.url)
    await care.login("lindely")
    await care.ok("POST", "status", {"preset": "ok", "power": "mains"})

    def folded() -> bool:
        staff_console.inbox_changed.set()  # the inbox read now (a link change's entry may hold up events)
        return len(staff_console.messages) == 1

    await eventually(folded, 60)  # its entry held (unless a link change's entry took it along)
    await staff_console.witness.send_head()
    (received,) = [e for e in await book.page() if e.type is EntryType.RECEIVED]
    head = staff_console.witness.last
    assert head is not None and head[0] >= received.seq  # no entry stamped before the head comes after it


@pytest.mark.parametrize(
    "console_options", [ConsoleOptions(tick_interval=600, logbook_received_interval=600)]
)  # the status's entry stays held
async def test_a_start_that_notes_a_damaged_board_first_still_writes_the_entries_a_crash_lost(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    staff_console = pair.staff.console
    care = clients(pair.care.url)
    await care.login("lindely")
    # what a crash leaves: console.db without a held entry (a copy beside it, under the same keys), and
    # here saved roll-calls a start cannot read, so it writes an omission note first
    data = pair.staff.hub.config.data_dir
    crashed = data / "crashed.db"
    await staff_console.logbook.append(EntryType.NOTE, "Vagten begynder", author="Hansen")  # not a new book
    for sent in range(1, 6):  # a link change's entry may take a held one along: then one more status
        await care.ok("POST", "status", {"preset": "ok", "power": "mains"})

        def folded() -> bool:
            staff_console.inbox_changed.set()  # the inbox read now (a link change's entry may hold up events)
            return len(staff_console.messages) == sent  # noqa: B023 - checked within this round

        await eventually(folded, 60)
        crashed.unlink(missing_ok=True)
        with sqlite3.connect(data / "console.db") as live, sqlite3.connect(crashed) as copy:
            live.backup(copy)
            (written,) = copy.execute("SELECT count(*) FROM logbook WHERE type = 'received'").fetchone()
            copy.execute("INSERT OR REPLACE INTO console_state VALUES ('rollcalls', '[{\"request\": 1}]')")
        if written < sent:
            break
    assert written < sent, "every entry was written before the copy"
    clock = pair.staff.hub.clock
    assert isinstance(clock, SystemClock)
    clock.offset += 600.0  # the start comes ten minutes later
    again = await Console.open(pair.staff.hub, dataclasses.replace(staff_console.options, db_path=crashed))
    try:
        entries = await again.logbook.page()
        assert any(e.type is EntryType.OMISSION for e in entries)  # the start's note, written first
        received = [e.text for e in entries if e.type is EntryType.RECEIVED]
        assert len(received) == sent and len(await again.logbook.received_ids(0)) == sent  # each once
        caught = [text for text in received if text.endswith("(ført ind ved genstart)")]
        assert len(caught) == sent - written  # what the crash lost, written by the start
    finally:
        await again.aclose()


def test_held_entries_are_written_with_the_sync_once_held_as_long() -> None:
    """Held at least as long as the sync interval, entries are written only by a sync (console.db then
    written in one moment per sync); held for less, on their own once due."""
    pi = ConsoleOptions(logbook_received_interval=300, logbook_sync_interval=300)
    assert logbook_work(1000.0, 700.0, 1100.0, pi) == "sync"  # held 300 s: written, and checkpointed
    assert logbook_work(1000.0, 800.0, 1100.0, pi) is None
    assert logbook_work(1100.0, 1090.0, 1100.0, pi) == "sync"  # the sync takes what is held
    assert logbook_work(1100.0, None, 1100.0, pi) == "sync"
    default = ConsoleOptions(logbook_received_interval=60, logbook_sync_interval=300)
    assert logbook_work(1000.0, 940.0, 1100.0, default) == "flush"
    assert logbook_work(1000.0, 950.0, 1100.0, default) is None
    assert logbook_work(1100.0, 1090.0, 1100.0, default) == "sync"


@pytest.mark.parametrize(
    "console_options", [ConsoleOptions(tick_interval=600, logbook_received_interval=300)]
)  # held until the test writes them
async def test_the_log_book_view_says_how_many_entries_wait(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    book = pair.staff.console.logbook
    staff = clients(pair.staff.url)
    await staff.login("hansen")
    await book.flush()
    book.hold(RECEIVED[:2])  # as the console holds a batch's entries (a link's entry would write them)
    view = await staff.ok("GET", "logbook")
    assert (view["held"], view["hold_seconds"]) == (2, 300)
    assert not {text for _, text, _ in RECEIVED[:2]} & {e["text"] for e in view["entries"]}
    await book.flush()
    view = await staff.ok("GET", "logbook")
    assert view["held"] == 0
    assert {text for _, text, _ in RECEIVED[:2]} <= {e["text"] for e in view["entries"]}


def wal_index(path: Path) -> tuple[int, int]:
    """(frames in console.db's WAL, frames of them copied into the database), as its WAL index says: read
    from the mapped file itself, as a checkpoint asked for here would change what it shows."""
    header = (path.parent / (path.name + "-shm")).read_bytes()[:100]
    return int.from_bytes(header[16:20], sys.byteorder), int.from_bytes(header[96:100], sys.byteorder)


@pytest.mark.parametrize(
    "console_options",
    [
        ConsoleOptions(
            tick_interval=0.05,
            board_save_interval=1.0,
            logbook_received_interval=3600,
            logbook_sync_interval=3600,
        )
    ],
)  # held until a board save writes them, and no sync due of its own
async def test_a_board_save_is_checkpointed_with_the_log_books_sync_in_the_same_tick(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    """console.db is written in one moment: the board's rows and the held entries, then the checkpoint that
    makes them durable (its WAL index dirtied once, not once for the save and again at the next sync)."""
    staff_console, book = pair.staff.console, pair.staff.console.logbook
    care = clients(pair.care.url)
    await care.login("lindely")
    await care.ok("POST", "status", {"preset": "ok", "power": "mains"})
    path = pair.staff.hub.config.data_dir / "console.db"

    async def saved_and_checkpointed() -> bool:
        frames, copied = wal_index(path)
        saved = (await state.load(staff_console.db, staff_console.sealer)).get("board_saved_at", 0.0)
        written = [e for e in await book.page() if e.type is EntryType.RECEIVED]
        return bool(written) and float(saved) > 0 and 0 < frames == copied

    await eventually_async(saved_and_checkpointed, 30)
