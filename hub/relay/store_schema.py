"""Opening the store's database: its pragmas, tables, the migrations of older stores, the integrity check.

Every connection goes through ``store_file.store_uri`` (SQLite's ``unix-excl`` VFS): no ``store.db-shm`` is
written on the SD card, and no other process can open the store while the hub runs (see ``store_file``)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import aiosqlite

from hub.core.errors import StoreError
from hub.relay.store_at_rest import add_key_column
from hub.relay.store_file import is_held, store_uri
from hub.relay.store_upkeep import WAL_TRUNCATE_AT

log = logging.getLogger("beredt.store")

BUSY_TIMEOUT_MS = 30_000
"""How long a commit waits for the checkpointer's lock; a TRUNCATE of 16 MiB on a slow card takes seconds."""
PAGE_SIZE = 512
"""Bytes per page of a store made now (SQLite's smallest): a commit writes each page it changed whole to the
WAL, and most of ours change a small row of each table and index, so a status's commit writes about half
the bytes it wrote with 1 KiB pages (an older store keeps the page size it was made with)."""

MESSAGES = """
CREATE TABLE IF NOT EXISTS {name}(
    row INTEGER PRIMARY KEY,
    id BLOB,
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
    e2e_acked_at REAL,
    key_id TEXT
)"""
"""Messages in the order they were stored: ``row`` only grows, so a new message and the updates of recent
ones change the newest pages. There is no index of the random ``id``: one would take a write at a random
place per message. The store keeps each id's row in memory (``store_census`` reads them at open) and
reaches rows by it; a tool reading the file finds a message by id with a scan."""
DELIVERIES = """
CREATE TABLE IF NOT EXISTS {name}(
    message_row INTEGER NOT NULL,
    hop BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    link TEXT,
    next_hop BLOB,
    last_error TEXT,
    updated REAL NOT NULL,
    PRIMARY KEY (message_row, hop)
) WITHOUT ROWID"""
"""One row per (message, next hop), keyed by the message's ``row``: the rows of new messages are
appended, and one b-tree holds them (no second index of random message ids to write)."""
INDEXES = """
CREATE INDEX IF NOT EXISTS messages_inbox ON messages(accepted_at) WHERE for_me = 1;
CREATE INDEX IF NOT EXISTS messages_live ON messages(priority, accepted_at) WHERE state = 'active';
DROP INDEX IF EXISTS deliveries_open;
"""
"""``messages_inbox`` serves the console's and the API's reads of new messages (one per received status) and
``messages_live`` a resumption page of one hop and priority: without them both would scan every message kept.
Open deliveries have no index: one cost a WAL page in each status's commit (the delivery of the hub's
end-to-end ack is queued in it, and the previous one's settled), while its readers (the health and link
counts, the hops to resume) are occasional, and a scan of the deliveries table is short (10 ms at load 5
for the 25,000 rows that 80 care homes' acknowledged statuses leave in a day, until purged; ``/healthz``
shares one count a second among all who ask)."""
_QUARANTINE = """
CREATE TABLE IF NOT EXISTS quarantine(
    message_id BLOB,
    wire BLOB,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
);
"""


CONNECTION_PRAGMAS = (
    "PRAGMA synchronous=FULL",
    "PRAGMA wal_autocheckpoint=0",  # checkpoints run on their own connection
    # a TRUNCATE checkpoint (the WAL past its limit under sustained writes) holds writers off while
    # it copies: a commit waits for it rather than failing with "database is locked"
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    f"PRAGMA journal_size_limit={WAL_TRUNCATE_AT}",
    "PRAGMA secure_delete=ON",  # an erased or resealed frame leaves zeros behind
)
"""Settings of each connection that writes to the store (they hold per connection)."""


def connect_writer(path: Path) -> sqlite3.Connection:
    """The store writer's own connection to a store ``open_database`` has set up (raises ``sqlite3.Error``).
    Used from one thread at a time, the writer's."""
    db = sqlite3.connect(store_uri(path), uri=True, check_same_thread=False)
    try:
        for pragma in CONNECTION_PRAGMAS:
            db.execute(pragma)
    except sqlite3.Error:
        db.close()
        raise
    return db


async def open_database(path: Path) -> aiosqlite.Connection:
    """Connect to the store at ``path``, set it up (or bring an older one up to date) and check its pages;
    ``StoreError`` when it cannot be opened or is damaged."""
    try:
        db = await aiosqlite.connect(store_uri(path), uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {path}: {exc}") from exc
    try:
        # only take effect while the file has no tables: a new store has small pages (PAGE_SIZE) and
        # frees purged pages as it goes
        await db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        await db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        await db.execute("PRAGMA journal_mode=WAL")
        for pragma in CONNECTION_PRAGMAS:  # it writes too: the census's quarantine, the migrations
            await db.execute(pragma)
        await db.executescript(
            f"{MESSAGES.format(name='messages')};\n{DELIVERIES.format(name='deliveries')};\n{_QUARANTINE}"
        )
        await bring_up_to_date(db)
        await db.executescript(INDEXES)
        await db.commit()
        async with db.execute("PRAGMA quick_check") as cursor:
            row = await cursor.fetchone()
    except sqlite3.Error as exc:
        await db.close()  # its worker thread would otherwise outlive us
        held = " (another process has it open: a sqlite3 shell, a report?)" if is_held(exc) else ""
        raise StoreError(f"cannot open store {path}: {exc}{held}") from exc
    if row is None or row[0] != "ok":
        await db.close()
        raise StoreError(f"store {path} failed its integrity check: {row}")
    return db


_MESSAGE_FIELDS = (
    "id, wire, sender, recipient, kind, priority, created, expires, size, local, for_me, state, accepted_at,"
    " via, e2e_acked_at, key_id"
)
_DELIVERY_FIELDS = "hop, state, attempts, next_attempt, link, next_hop, last_error, updated"


async def bring_up_to_date(db: aiosqlite.Connection) -> None:
    """Give a store written by an earlier version the columns and keys of this one (raises
    ``sqlite3.Error``). Its messages get a ``row`` (their rowid, so their order is kept) and its deliveries
    are keyed by it, in one transaction: a stop halfway leaves the old tables, and the next open starts
    again. Deliveries of a message no longer stored are dropped (nothing could resume them)."""
    await add_key_column(db)
    async with db.execute("PRAGMA table_info(deliveries)") as cursor:
        columns = {row[1] async for row in cursor}
    if "message_row" in columns:
        await db.execute("DROP INDEX IF EXISTS messages_id")  # a store of the version that had one
        return
    if "next_hop" not in columns:  # a store written before deliveries recorded their carrier
        await db.execute("ALTER TABLE deliveries ADD COLUMN next_hop BLOB")
    async with db.execute("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM deliveries)") as cur:
        counts = await cur.fetchone()
    messages, deliveries = counts if counts else (0, 0)
    log.info(
        "store: keying %d messages and %d deliveries by row (once, for this version)", messages, deliveries
    )
    await db.execute("BEGIN IMMEDIATE")
    await db.execute(MESSAGES.format(name="messages_keyed"))
    await db.execute(
        f"INSERT INTO messages_keyed(row, {_MESSAGE_FIELDS}) SELECT rowid, {_MESSAGE_FIELDS} FROM messages"
    )
    await db.execute(DELIVERIES.format(name="deliveries_keyed"))
    await db.execute(
        f"INSERT OR IGNORE INTO deliveries_keyed(message_row, {_DELIVERY_FIELDS})"
        f" SELECT m.rowid, {', '.join('d.' + f for f in _DELIVERY_FIELDS.split(', '))}"
        " FROM deliveries d JOIN messages m ON m.id = d.message_id"  # the old table's index of ids
    )
    for table in ("deliveries", "messages"):
        await db.execute(f"DROP TABLE {table}")
        await db.execute(f"ALTER TABLE {table}_keyed RENAME TO {table}")
    async with db.execute("SELECT count(*) FROM deliveries") as cursor:
        kept = await cursor.fetchone()
    await db.commit()
    dropped = deliveries - (kept[0] if kept else 0)
    log.info(
        "store: keyed by row%s",
        f"; {dropped} deliveries of messages no longer stored dropped" if dropped else "",
    )
