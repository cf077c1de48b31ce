"""Log book: the keyed hash chain detects every kind of after-the-fact change, and a forger without the key
cannot recompute it; an older book's plain links stay verifiable; exports are faithful."""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from hub.console.logbook import (
    GENESIS,
    VERIFY_CHUNK,
    EntryType,
    LogBook,
    canonical_bytes,
    chain_hash,
)
from hub.console.logbook_chain import KEY_FILE, PLAIN_UNTIL_FILE
from hub.console.logbook_export import export_csv, export_html
from hub.console.logbook_upkeep import check_new
from hub.core.at_rest import KEY_FOLDER
from hub.core.clock import ManualClock
from hub.core.errors import StoreError

TEXTS = [
    (EntryType.RECEIVED, "Status fra Lindely: generator, 14 t brændstof"),
    (EntryType.DECISION, "Diesel prioriteres til Lindely før Solbakken"),
    (EntryType.ACTION, "Tankvogn sendt fra Viby"),
    (EntryType.OMISSION, "Solbakken ikke kontaktet: ingen forbindelse"),
    (EntryType.NOTE, "Vagtskifte kl. 14"),
]


@pytest.fixture
async def book(tmp_path: Path) -> AsyncIterator[LogBook]:
    clock = ManualClock()
    book = await LogBook.open(tmp_path / "store.db", clock, "a1b2c3d4e5f60718")
    for type_, text in TEXTS:
        await book.append(type_, text, author="Vagtleder Hansen")
        clock.advance(60)
    yield book
    await book.aclose()


def tamper(path: Path, *statements: str) -> None:
    """What someone with the database file and the sqlite3 tool could do."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER logbook_000000001_no_update")
        db.execute("DROP TRIGGER logbook_000000001_no_delete")
        for statement in statements:
            db.execute(statement)


async def test_intact_chain_verifies_and_hashes_are_recomputable_with_the_key(
    book: LogBook, tmp_path: Path
) -> None:
    assert await book.verify() is None
    entries = await book.entries()
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    key_file = tmp_path / KEY_FOLDER / KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600  # apart from the database, readable by the hub alone
    key = key_file.read_bytes()
    previous = GENESIS
    for e in entries:
        # an auditor's recomputation from the documented canonical form and the key file
        canonical = f'[{e.seq},{e.time},"{e.author}","{e.node}","{e.type}","{e.text}"]'.encode()
        assert canonical == canonical_bytes(e.seq, e.time, e.author, e.node, e.type, e.text)
        previous = hmac.digest(key, previous + canonical, "sha256")
        assert previous == e.hash
        assert chain_hash(GENESIS if e.seq == 1 else entries[e.seq - 2].hash, canonical) != e.hash
    assert await book.head() == (5, entries[-1].hash.hex())


async def test_triggers_refuse_update_and_delete(book: LogBook, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "store.db") as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE logbook_000000001 SET text = 'x' WHERE seq = 2")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM logbook_000000001 WHERE seq = 2")


@pytest.mark.parametrize(
    ("statements", "broken"),
    [
        (["UPDATE logbook_000000001 SET text = 'Diesel prioriteres til Solbakken' WHERE seq = 2"], 2),
        (["UPDATE logbook_000000001 SET time = time - 3600 WHERE seq = 3"], 3),
        (["UPDATE logbook_000000001 SET author = 'Borgmester' WHERE seq = 4"], 4),
        (["UPDATE logbook_000000001 SET type = 'note' WHERE seq = 4"], 4),
        (["UPDATE logbook_000000001 SET time = 'tidligt' WHERE seq = 1"], 1),
        (["DELETE FROM logbook_000000001 WHERE seq = 3"], 3),
        # swap the order of entries 2 and 3 (seq is part of what is hashed)
        (
            [
                "UPDATE logbook_000000001 SET seq = 100 WHERE seq = 2",
                "UPDATE logbook_000000001 SET seq = 2 WHERE seq = 3",
                "UPDATE logbook_000000001 SET seq = 3 WHERE seq = 100",
            ],
            2,
        ),
        # delete entry 3 and renumber the rest to hide the gap
        (
            [
                "DELETE FROM logbook_000000001 WHERE seq = 3",
                "UPDATE logbook_000000001 SET seq = seq - 1 WHERE seq > 3",
            ],
            3,
        ),
        # rewrite an entry together with its own hash: the next entry's chain still breaks
        (["UPDATE logbook_000000001 SET text = 'ændret', hash = zeroblob(32) WHERE seq = 2"], 2),
    ],
)
async def test_tampering_is_detected_at_the_first_broken_seq(
    book: LogBook, tmp_path: Path, statements: list[str], broken: int
) -> None:
    tamper(tmp_path / "store.db", *statements)
    assert await book.verify() == broken


async def test_a_forger_without_the_key_cannot_rehash_an_entry(book: LogBook, tmp_path: Path) -> None:
    entries = await book.entries()
    forged = canonical_bytes(2, entries[1].time, entries[1].author, entries[1].node, "decision", "ændret")
    new_hash = chain_hash(entries[0].hash, forged).hex()  # the plain link: all one can make without the key
    tamper(
        tmp_path / "store.db",
        f"UPDATE logbook_000000001 SET text = 'ændret', hash = x'{new_hash}' WHERE seq = 2",
    )
    assert await book.verify() == 2


async def test_cutting_off_the_end_is_caught_by_an_anchor(book: LogBook, tmp_path: Path) -> None:
    anchor = await book.head()
    assert anchor is not None
    tamper(tmp_path / "store.db", "DELETE FROM logbook_000000001 WHERE seq >= 4")
    assert await book.verify() is None  # a shorter chain is still a chain...
    assert await book.verify(anchor=anchor) == 4  # ...but the printed head is gone


async def test_anchor_with_a_different_hash_is_reported(book: LogBook) -> None:
    assert await book.verify(anchor=(3, "00" * 32)) == 3
    head = await book.head()
    assert await book.verify(anchor=head) is None


async def test_appends_continue_the_chain_after_reopen(book: LogBook, tmp_path: Path) -> None:
    await book.aclose()
    again = await LogBook.open(tmp_path / "store.db", ManualClock(), "a1b2c3d4e5f60718")
    try:
        entry = await again.append(EntryType.LINK, "SINE oppe igen", author="hub")
        assert entry.seq == 6
        assert await again.verify() is None
    finally:
        await again.aclose()


async def test_log_book_shares_its_database_file_with_other_tables(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "shared.db") as db:
        await db.execute("CREATE TABLE other (x)")
        await db.commit()
        book = await LogBook.open(tmp_path / "shared.db", ManualClock(), "node")
        await book.append(EntryType.NOTE, "delt database", author="test")
        await book.aclose()
        await book.aclose()  # idempotent
        async with db.execute("SELECT count(*) FROM logbook") as cur:
            assert await cur.fetchone() == (1,)


async def test_empty_text_and_closed_book_are_refused(book: LogBook) -> None:
    with pytest.raises(ValueError, match="skal have tekst"):
        await book.append(EntryType.NOTE, "  ", author="x")
    await book.aclose()
    with pytest.raises(StoreError, match="closed"):
        await book.append(EntryType.NOTE, "sent", author="x")


async def test_unopenable_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open log book"):
        await LogBook.open(tmp_path / "missing-dir" / "store.db", ManualClock(), "node")


async def test_csv_export_is_faithful(book: LogBook) -> None:
    await book.append(EntryType.NOTE, 'Linje 1\nLinje 2, med "citat" og =SUM(A1)', author="Hansen")
    rows = list(csv.reader(io.StringIO(await export_csv(book))))
    assert rows[0] == ["seq", "time", "author", "node", "type", "text", "hash", "note"]
    assert len(rows) == 7
    assert rows[2][4:6] == ["decision", "Diesel prioriteres til Lindely før Solbakken"]
    assert rows[6][5] == 'Linje 1\nLinje 2, med "citat" og =SUM(A1)'
    assert rows[1][1] == "2027-01-15T08:00:00+00:00"


async def test_html_report_escapes_text_and_states_the_verdict(book: LogBook, tmp_path: Path) -> None:
    await book.append(EntryType.NOTE, "<script>alert(1)</script>", author="<b>x</b>")
    report = await export_html(book, title="Logbog, stormflod")
    assert "<script>" not in report and "&lt;script&gt;" in report
    assert "Kæden er intakt" in report and "Beslutning" in report
    tamper(tmp_path / "store.db", "UPDATE logbook_000000001 SET text = 'x' WHERE seq = 2")
    assert "kæden er brudt ved post 2" in await export_html(book)


async def test_a_damaged_row_is_reported_not_misread(book: LogBook, tmp_path: Path) -> None:
    tamper(tmp_path / "store.db", "UPDATE logbook_000000001 SET time = 'tidligt' WHERE seq = 2")
    with pytest.raises(StoreError, match="log book entry 2 is damaged"):
        await book.entries()
    assert await book.verify() == 2


async def test_a_batch_is_one_chain_continuation(book: LogBook) -> None:
    batch = await book.append_many(
        [
            (EntryType.RECEIVED, "status fra Lindely", "hub"),
            (EntryType.RECEIVED, "status fra Solbakken", "hub"),
        ]
    )
    assert [e.seq for e in batch] == [6, 7]
    assert await book.verify() is None
    assert (await book.entries(since=5)) == batch
    with pytest.raises(ValueError, match="skal have tekst"):
        await book.append_many([(EntryType.NOTE, "ok", "x"), (EntryType.NOTE, "", "x")])
    assert await book.head() == (7, batch[-1].hash.hex())


async def test_pages_run_newest_first_a_window_at_a_time(book: LogBook) -> None:
    first = await book.page(limit=2)
    assert [e.seq for e in first] == [5, 4]
    assert [e.seq for e in await book.page(before=first[-1].seq, limit=2)] == [3, 2]
    assert [e.seq for e in await book.page(before=2, limit=200)] == [1]
    assert await book.page(before=1) == []
    for limit in (0, 201):
        with pytest.raises(ValueError, match="limit"):
            await book.page(limit=limit)


async def test_incremental_verification_walks_only_new_entries_yet_sees_a_cut_head(
    book: LogBook, tmp_path: Path
) -> None:
    assert await book.verify_new() is None
    await book.append(EntryType.NOTE, "efter første kontrol", author="x")
    assert await book.verify_new() is None
    # a change below the verified head is the full walk's to find; a change after it is found at once
    await book.append(EntryType.NOTE, "endnu en", author="x")
    tamper(tmp_path / "store.db", "UPDATE logbook_000000001 SET text='ændret' WHERE seq=7")
    assert await book.verify_new() == 7
    assert await book.verify() == 7


async def test_incremental_verification_notices_the_verified_head_removed(
    book: LogBook, tmp_path: Path
) -> None:
    assert await book.verify_new() is None
    tamper(tmp_path / "store.db", "DELETE FROM logbook_000000001 WHERE seq=5")
    assert await book.verify_new() == 5


async def test_incremental_verification_of_a_long_book_walks_it_a_chunk_at_a_time(tmp_path: Path) -> None:
    # the first view after a start checks the whole live table: chunk by chunk, a break in a later
    # chunk is still found, and the chunks checked before it stay verified
    path = tmp_path / "console.db"
    book = await LogBook.open(path, ManualClock(), "a1b2c3d4e5f60718")
    entries = [(EntryType.RECEIVED, f"Status nr. {n}", "hub") for n in range(1, 2 * VERIFY_CHUNK + 501)]
    await book.append_many(entries, durable=False)
    await book.aclose()
    tamper(path, f"UPDATE logbook_000000001 SET text='ændret' WHERE seq={2 * VERIFY_CHUNK + 345}")
    book = await LogBook.open(path, ManualClock(), "a1b2c3d4e5f60718")
    try:
        assert await book.verify_new() == 2 * VERIFY_CHUNK + 345
        tamper(
            path, "DELETE FROM logbook_000000001 WHERE seq=1"
        )  # below the chunks already verified: not walked again
        assert await book.verify_new() == 2 * VERIFY_CHUNK + 345
        assert await book.verify() == 1
    finally:
        await book.aclose()


async def test_the_upkeep_check_verifies_the_live_entries_ahead_of_the_first_view(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "console.db"
    book = await LogBook.open(path, ManualClock(), "a1b2c3d4e5f60718")
    try:
        await book.append_many([(EntryType.RECEIVED, f"Status nr. {n}", "hub") for n in range(1, 601)])
        await check_new(book)
        tamper(path, "UPDATE logbook_000000001 SET text='ændret' WHERE seq=10")
        assert await book.verify_new() is None  # already checked: the view walks only what came after
        await book.append(EntryType.NOTE, "efter kontrollen", author="x")
        with sqlite3.connect(path) as db:  # the triggers are already gone
            db.execute("UPDATE logbook_000000001 SET text='ændret' WHERE seq=601")
        with caplog.at_level(logging.ERROR, logger="beredt.console"):
            await check_new(book)
        assert "broken at entry 601" in caplog.text
    finally:
        await book.aclose()


async def test_two_writers_on_one_database_both_land_in_one_chain(tmp_path: Path) -> None:
    # a console restarting while the old one still writes, or two processes on one console.db: each
    # append reads the head and inserts in one write transaction, so neither reuses the other's seq
    path = tmp_path / "console.db"
    first = await LogBook.open(path, ManualClock(), "a1b2c3d4e5f60718")
    second = await LogBook.open(path, ManualClock(), "a1b2c3d4e5f60718")
    try:

        async def write(book: LogBook, who: str) -> None:
            for n in range(40):
                await book.append_many([(EntryType.NOTE, f"{who} {n}", who), (EntryType.NOTE, "og", who)])

        await asyncio.gather(write(first, "gammel"), write(second, "ny"))
        entries = await first.entries()
        assert [e.seq for e in entries] == list(range(1, 161))
        assert sum(e.author == "ny" for e in entries) == 80
        assert await second.verify() is None
    finally:
        await first.aclose()
        await second.aclose()


def recompute(path: Path, start: int) -> None:
    """The forger's last step: every hash from ``start`` on recomputed over the rows as they now stand,
    with the plain links that were all a forger needed before the chain was keyed."""
    with sqlite3.connect(path) as db:
        found = db.execute("SELECT hash FROM logbook WHERE seq = ?", (start - 1,)).fetchone()
        previous = bytes(found[0]) if found else GENESIS
        rows = db.execute(
            "SELECT seq, time, author, node, type, text FROM logbook WHERE seq >= ? ORDER BY seq", (start,)
        ).fetchall()
        for row in rows:
            previous = chain_hash(previous, canonical_bytes(*row))
            db.execute("UPDATE logbook_000000001 SET hash = ? WHERE seq = ?", (previous, row[0]))


@pytest.mark.parametrize(
    ("statements", "changed", "reported"),
    [
        # edit "vi evakuerer" into its opposite
        (["UPDATE logbook_000000001 SET text = 'Diesel prioriteres IKKE til Lindely' WHERE seq = 2"], 2, 2),
        # delete an entry and renumber the rest to hide the gap
        (["DELETE FROM logbook_000000001 WHERE seq = 3",
          "UPDATE logbook_000000001 SET seq = seq - 1 WHERE seq > 3"], 3, 3),
        # cut the tail: a shorter chain is still a chain; only the witnessed head tells
        (["DELETE FROM logbook_000000001 WHERE seq >= 4"], 4, 4),
        # drop the triggers (tamper always does) and append an entry of one's own after an edit
        (["UPDATE logbook_000000001 SET text = 'ændret' WHERE seq = 1",
          "INSERT INTO logbook_000000001 SELECT 6, time, author, node, type, 'tilføjet', hash"
          " FROM logbook WHERE seq = 5"], 1, 1),
    ],
)  # fmt: skip
async def test_each_rewrite_with_recomputed_hashes_is_caught_at_the_first_entry_changed(
    book: LogBook, tmp_path: Path, statements: list[str], changed: int, reported: int
) -> None:
    witnessed = await book.head()  # what the witnesses hold: the head as it was sent
    assert witnessed is not None and witnessed[0] == len(TEXTS)
    tamper(tmp_path / "store.db", *statements)
    recompute(tmp_path / "store.db", changed)
    assert await book.verify(anchors=[witnessed]) == reported
    if changed <= len(await book.entries()):
        assert await book.verify() == reported  # the keyed chain alone tells where


async def test_an_older_book_keeps_its_plain_links_and_continues_keyed(tmp_path: Path) -> None:
    path = tmp_path / "console.db"
    previous = GENESIS
    with sqlite3.connect(path) as db:  # a book written before the chain was keyed
        db.execute(
            "CREATE TABLE logbook (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, author TEXT NOT NULL,"
            " node TEXT NOT NULL, type TEXT NOT NULL, text TEXT NOT NULL, hash BLOB NOT NULL)"
        )
        for seq, (type_, text) in enumerate(TEXTS, 1):
            previous = chain_hash(previous, canonical_bytes(seq, 1_800_000_000, "x", "n", type_, text))
            db.execute("INSERT INTO logbook VALUES (?,?,?,?,?,?,?)",
                       (seq, 1_800_000_000, "x", "n", str(type_), text, previous))  # fmt: skip
    book = await LogBook.open(path, ManualClock(), "n")
    try:
        assert book.chain.plain_until == len(TEXTS)
        assert (tmp_path / KEY_FOLDER / PLAIN_UNTIL_FILE).read_text().strip() == "5"
        new = await book.append(EntryType.NOTE, "efter nøglen", author="x")
        assert new.hash != chain_hash(previous, new.canonical())  # keyed from here on
        assert await book.verify() is None
    finally:
        await book.aclose()
    # the keyed entry made plain again, as a forger without the key would: refused
    tamper(
        path,
        f"UPDATE logbook_000000001 SET hash = x'{chain_hash(previous, new.canonical()).hex()}' WHERE seq = 6",
    )
    again = await LogBook.open(path, ManualClock(), "n")
    try:
        assert again.chain.plain_until == len(TEXTS)  # reopening does not move the boundary
        assert await again.verify() == 6
    finally:
        await again.aclose()


async def test_a_lost_chain_key_is_not_replaced_while_keyed_entries_need_it(tmp_path: Path) -> None:
    path, keys = tmp_path / "console.db", tmp_path / KEY_FOLDER
    book = await LogBook.open(path, ManualClock(), "n")
    try:
        for type_, text in TEXTS:
            await book.append(type_, text, author="x")
    finally:
        await book.aclose()
    key = (keys / KEY_FILE).read_bytes()
    (keys / KEY_FILE).unlink()  # console.db restored from a backup, the key folder not
    with pytest.raises(StoreError, match=r"kædenøgle .* mangler, men post 1-5 er kædet med den"):
        await LogBook.open(path, ManualClock(), "n")
    assert not (keys / KEY_FILE).exists()
    assert (keys / PLAIN_UNTIL_FILE).read_text().strip() == "0"  # the boundary is left as recorded
    (keys / KEY_FILE).write_bytes(key)
    (keys / KEY_FILE).chmod(0o600)
    book = await LogBook.open(path, ManualClock(), "n")
    try:
        assert await book.verify() is None
    finally:
        await book.aclose()


async def test_a_crash_between_boundary_and_key_makes_the_key_at_the_next_open(tmp_path: Path) -> None:
    path, keys = tmp_path / "console.db", tmp_path / KEY_FOLDER
    book = await LogBook.open(path, ManualClock(), "n")
    await book.aclose()
    (keys / KEY_FILE).unlink()  # the boundary (0) was written, the key not: nothing was chained with it
    book = await LogBook.open(path, ManualClock(), "n")
    try:
        assert (keys / KEY_FILE).exists()
        await book.append(EntryType.NOTE, "efter nøglen", author="x")
        assert await book.verify() is None
    finally:
        await book.aclose()
