"""What moving the log book's oldest entries to an archive segment costs the SD card, per entry moved.

Every entry leaves ``console.db`` once (past the live limit of 20,000 entries, or 7 days), and at 80
care homes there is an entry per received status, so this is a cost per status. The log book keeps its
live table in blocks of entries (``hub.console.logbook_blocks``) and moves whole blocks: it writes the
segment and drops the blocks' tables. Measured, in the same run, on the same entries:

- the log book's own move: ``LogBook.rotate`` on a book of ``--entries`` entries of the length a
  received status's entry has, keeping the newest ``--keep`` (whole blocks of 1,000 move);
- the floor: the segment file alone (its bytes, as JSON Lines, fsynced);
- the same rows in one table removed with a DELETE, as the live table was kept before blocks, with
  ``secure_delete`` as SQLite is built here (Debian's overwrites freed pages) and off.

Each variant counts this process's ``/proc/self/io`` write_bytes from before the move until the WAL is
checkpointed into the database (``wal_checkpoint(TRUNCATE)``) and ``os.sync()`` has returned, divided by
the entries moved.

    .venv/bin/python bench/bench_logbook_move.py [--entries 30000 --keep 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.console.logbook import PAGE_SIZE, EntryType, LogBook
from hub.console.logbook_archive import segments
from hub.core.clock import ManualClock

NODE = "a1b2c3d4e5f60718"
COLUMNS = "seq, time, author, node, type, text, hash"


def written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise KeyError("write_bytes")


def text(n: int) -> str:
    """An entry as the console writes one for a received status (``hub.console.messages``)."""
    return f"Status fra Plejecenter nr. {n % 80} via internet: Normal, strøm: net [id {os.urandom(16).hex()}]"


async def blocks_move(folder: Path, entries: int, keep: int) -> tuple[int, int, int]:
    """The log book's move: (entries moved, bytes written, bytes of the segments)."""
    book = await LogBook.open(folder / "console.db", ManualClock(1_800_000_000), NODE)
    try:
        for start in range(0, entries, 1000):
            batch = min(1000, entries - start)
            await book.append_many([(EntryType.RECEIVED, text(start + i), "hub") for i in range(batch)])
        await book.sync()
        os.sync()
        before = written()
        moved = 0
        while found := await book.rotate(keep=keep):
            moved += found
        await book.sync()
    finally:
        await book.aclose()
    with sqlite3.connect(folder / "console.db") as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    os.sync()
    spent = written() - before
    assert book.archive is not None
    return moved, spent, sum(path.stat().st_size for path in segments(book.archive))


def delete_move(source: Path, folder: Path, upto: int, secure: bool | None) -> int:
    """The same live rows in one table, those up to ``upto`` removed with a DELETE: bytes written."""
    path = folder / "single.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        db.execute("PRAGMA journal_mode=WAL")
        if secure is not None:
            db.execute(f"PRAGMA secure_delete={int(secure)}")
        db.execute(
            "CREATE TABLE logbook (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, author TEXT NOT NULL,"
            " node TEXT NOT NULL, type TEXT NOT NULL, text TEXT NOT NULL, hash BLOB NOT NULL)"
        )
        db.execute(f"ATTACH DATABASE '{source}' AS book")
        db.execute(f"INSERT INTO logbook SELECT {COLUMNS} FROM book.logbook_rows")
        db.execute("DETACH DATABASE book")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        os.sync()
        before = written()
        db.execute("BEGIN IMMEDIATE")
        db.execute("DELETE FROM logbook WHERE seq <= ?", (upto,))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    os.sync()
    return written() - before


def rows_like(folder: Path, entries: int) -> Path:
    """A plain table of ``entries`` rows as the log book stores them, for the DELETE variants."""
    path = folder / "rows.db"
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE logbook_rows ({COLUMNS})")
        db.executemany(
            "INSERT INTO logbook_rows VALUES (?,?,?,?,?,?,?)",
            [
                (n, 1_800_000_000, "hub", NODE, "received", text(n), os.urandom(32))
                for n in range(1, entries + 1)
            ],
        )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=30_000, help="entries in the book before the move")
    parser.add_argument("--keep", type=int, default=20_000, help="entries the move keeps live")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as temporary:  # on this disk, not a tmpfs
        folder = Path(temporary)
        (folder / "book").mkdir()
        moved, spent, segment = asyncio.run(blocks_move(folder / "book", args.entries, args.keep))
        source = rows_like(folder, args.entries)
        deletes = {}
        for label, secure in (("as built here", None), ("off", False)):
            (folder / label).mkdir()
            deletes[label] = delete_move(source, folder / label, moved, secure)
    with sqlite3.connect(":memory:") as db:
        (built,) = db.execute("PRAGMA secure_delete").fetchone()
    print(f"{args.entries:,} entries, the newest {args.keep:,} kept: {moved:,} moved")
    print(f"{'bytes written per entry moved':<72}{'':>8}")
    print(f"{'  the log book (segment, then its blocks dropped)':<72}{spent / moved:>8.0f}")
    print(f"{'  floor: the segment alone (its size)':<72}{segment / moved:>8.0f}")
    for label, spent_delete in deletes.items():
        shown = f"secure_delete {label}" + (
            f" ({'on' if built else 'off'})" if label == "as built here" else ""
        )
        print(f"{'  one table, the rows deleted, ' + shown:<72}{spent_delete / moved:>8.0f}")
    print("(the DELETE variants count the database alone: add the segment for a move done that way)")


if __name__ == "__main__":
    main()
