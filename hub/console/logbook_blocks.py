"""The live log book's table, kept in blocks: ``logbook`` is a view over tables of ``BLOCK`` consecutive
entries each, ``logbook_<first seq>``, and the archive takes whole blocks.

Why blocks: the entries that move to an archive segment must leave ``console.db``, and how they leave is
what the SD card pays for. A DELETE of the oldest rows rewrites every page it empties, into the WAL and
again at the checkpoint; a DROP TABLE hands a block's pages to the free list, writing one page per 250 of
them, with ``secure_delete`` off for the drop (SQLite as Debian builds it overwrites freed pages with zeros;
the rows dropped are in the segment in full, so that protects nothing). ``bench/bench_logbook_move.py``:
315 bytes written per entry moved, of which the segment is 288, where a DELETE of the same rows from one
table wrote 428 more. Queries read the view; SQLite merges its blocks in seq order by their primary keys,
so a page of the newest entries reads only the blocks it needs.

Each block has the triggers that refuse UPDATE and DELETE. A book made before blocks keeps its table as
one more block, ``logbook_legacy``, which moves whole once all its entries are due.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aiosqlite

BLOCK = 1000
"""Entries per block: an hour of 80 care homes' statuses. The live table holds up to a block more than
it keeps."""
VIEW = "logbook"
LEGACY = "logbook_legacy"
_COLUMNS = "seq, time, author, node, type, text, hash"
_NAME = re.compile(r"logbook_\d{9,}")
"""A block's table, and nothing else: a table made by hand beside them (``logbook_000000001_copy``) is not
one."""
_TABLE = """CREATE TABLE "{name}" (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    author TEXT NOT NULL,
    node TEXT NOT NULL,
    type TEXT NOT NULL,
    text TEXT NOT NULL,
    hash BLOB NOT NULL
)"""
_APPEND_ONLY = """CREATE TRIGGER IF NOT EXISTS "{name}_no_{what}" BEFORE {what} ON "{name}"
BEGIN SELECT RAISE(ABORT, 'the log book is append-only'); END"""


@dataclass(frozen=True, slots=True)
class Block:
    name: str
    low: int | None  # its oldest seq; None: empty
    high: int | None  # its newest seq


def name(seq: int, size: int = BLOCK) -> str:
    """The table of the block that holds ``seq`` (1 and up)."""
    return f"logbook_{(seq - 1) // size * size + 1:09d}"


async def tables(db: aiosqlite.Connection) -> list[str]:
    """The block tables there are, the legacy one included."""
    rows = await db.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'logbook_*' ORDER BY name"
    )
    return [str(row[0]) for row in rows if _NAME.fullmatch(row[0]) or row[0] == LEGACY]


async def blocks(db: aiosqlite.Connection) -> list[Block]:
    """Every block with the range of seqs it holds, oldest first (an empty one by where its name puts it;
    the legacy table first)."""
    found = []
    for table in await tables(db):
        # two subqueries: each end is then one look-up in the primary key, not a walk of the block
        async with db.execute(
            f'SELECT (SELECT min(seq) FROM "{table}"), (SELECT max(seq) FROM "{table}")'
        ) as cur:
            low, high = await cur.fetchone() or (None, None)
        found.append(Block(table, low, high))
    return sorted(found, key=lambda b: b.low or (0 if b.name == LEGACY else int(b.name.split("_")[1])))


def due(found: list[Block], cut: int, archived: int, most: int) -> list[Block]:
    """The blocks a rotation moves, of ``found`` (oldest first): each holding only entries up to seq
    ``cut``, as many as hold at most ``most`` entries past ``archived`` (the archive's newest seq) but at
    least one block. An empty block goes only if it is the legacy table: the newest block is empty from
    the moment it is made until its first entry, and older ones are not held up by it."""
    chosen: list[Block] = []
    count = 0
    for block in found:
        if block.high is None or block.low is None:
            if block.name == LEGACY:
                chosen.append(block)
            continue
        if block.high > cut:
            break
        new = max(0, block.high - max(block.low, archived + 1) + 1)
        if count and count + new > most:
            break
        chosen.append(block)
        count += new
    return chosen


async def ensure(db: aiosqlite.Connection, seqs: list[int], size: int = BLOCK) -> None:
    """Make the blocks these seqs go in where missing, and the view over them anew if any was; within the
    caller's write transaction, so a block and the view are made with the entries that need them or not
    at all."""
    made = sorted({name(seq, size) for seq in seqs} - set(await tables(db)))
    for table in made:
        await db.execute(_TABLE.format(name=table))
        await _guard(db, table)
    if made:
        await view(db)


async def guard(db: aiosqlite.Connection) -> None:
    """Give every block its append-only triggers back where they were dropped."""
    for table in await tables(db):
        await _guard(db, table)


async def _guard(db: aiosqlite.Connection, table: str) -> None:
    for what in ("update", "delete"):
        await db.execute(_APPEND_ONLY.format(name=table, what=what))


async def adopt_legacy(db: aiosqlite.Connection) -> None:
    """Turn a book's single table, as books were kept before blocks, into its oldest block, without its
    triggers (``guard`` gives it a block's); within the caller's write transaction."""
    rows = await db.execute_fetchall("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (VIEW,))
    if not rows:
        return
    await db.execute(f"ALTER TABLE {VIEW} RENAME TO {LEGACY}")
    for what in ("update", "delete"):  # they went with it, under the single table's names
        await db.execute(f"DROP TRIGGER IF EXISTS logbook_no_{what}")
    await view(db)


async def drop(db: aiosqlite.Connection, names: list[str]) -> None:
    """Drop these blocks and make the view over the rest; within the caller's write transaction."""
    for table in names:
        await db.execute(f'DROP TABLE "{table}"')
    await view(db)


async def view(db: aiosqlite.Connection) -> None:
    """(Re)make ``logbook`` over every block there is."""
    await db.execute(f"DROP VIEW IF EXISTS {VIEW}")
    terms = [f'SELECT {_COLUMNS} FROM "{table}"' for table in await tables(db)]
    if terms:
        await db.execute(f"CREATE VIEW {VIEW} AS " + " UNION ALL ".join(terms))


async def has_view(db: aiosqlite.Connection) -> bool:
    rows = await db.execute_fetchall("SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ?", (VIEW,))
    return bool(rows)
