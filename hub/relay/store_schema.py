"""Opening the store's database: its pragmas, tables, the migrations of older stores, the integrity check."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from hub.core.errors import StoreError
from hub.relay.store_at_rest import add_key_column
from hub.relay.store_upkeep import WAL_TRUNCATE_AT

BUSY_TIMEOUT_MS = 30_000
"""How long a commit waits for the checkpointer's lock; a TRUNCATE of 16 MiB on a slow card takes seconds."""
PAGE_SIZE = 1024
"""Bytes per page of a store made now: a commit writes each page it changed whole, and most of ours change
a small row of each table and index (an older store keeps 4096)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages(
    id BLOB PRIMARY KEY,
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
    e2e_acked_at REAL
);
CREATE INDEX IF NOT EXISTS messages_inbox ON messages(accepted_at) WHERE for_me = 1;
CREATE INDEX IF NOT EXISTS messages_live ON messages(priority, accepted_at) WHERE state = 'active';
CREATE TABLE IF NOT EXISTS deliveries(
    message_id BLOB NOT NULL,
    hop BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    link TEXT,
    next_hop BLOB,
    last_error TEXT,
    updated REAL NOT NULL,
    PRIMARY KEY (message_id, hop)
);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(state) WHERE state IN ('queued', 'sent');
CREATE TABLE IF NOT EXISTS quarantine(
    message_id BLOB,
    wire BLOB,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
);
"""


async def open_database(path: Path) -> aiosqlite.Connection:
    """Connect to the store at ``path``, set it up (or bring an older one up to date) and check its pages;
    ``StoreError`` when it cannot be opened or is damaged."""
    try:
        db = await aiosqlite.connect(path)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {path}: {exc}") from exc
    try:
        # only take effect while the file has no tables: a new store has small pages (PAGE_SIZE) and
        # frees purged pages as it goes
        await db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        await db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run on their own connection
        # a TRUNCATE checkpoint (the WAL past its limit under sustained writes) holds writers off while
        # it copies: a commit waits for it rather than failing with "database is locked"
        await db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await db.execute(f"PRAGMA journal_size_limit={WAL_TRUNCATE_AT}")
        await db.execute("PRAGMA secure_delete=ON")  # an erased or resealed frame leaves zeros behind
        await db.executescript(_SCHEMA)
        await add_key_column(db)
        async with db.execute("PRAGMA table_info(deliveries)") as cursor:
            columns = {row[1] async for row in cursor}
        if "next_hop" not in columns:  # a store written before deliveries recorded their carrier
            await db.execute("ALTER TABLE deliveries ADD COLUMN next_hop BLOB")
        await db.commit()
        async with db.execute("PRAGMA quick_check") as cursor:
            row = await cursor.fetchone()
    except sqlite3.Error as exc:
        await db.close()  # its worker thread would otherwise outlive us
        raise StoreError(f"cannot open store {path}: {exc}") from exc
    if row is None or row[0] != "ok":
        await db.close()
        raise StoreError(f"store {path} failed its integrity check: {row}")
    return db
