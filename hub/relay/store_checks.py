"""Storage safety at open: noticing a store that was lost or swapped, and records that can no longer be
trusted.

Each store carries a random store id (its ``meta`` table), and the hub records that id in a small file
beside its identity, ``identity.store-id``, outside the ``store.db*`` names: deleting the store with its
WAL files (``rm store.db*``) leaves the record, so the loss is noticed. If the record is there and the
store is missing, empty, or holds another id (another hub's store, an old copy), the hub refuses to start
rather than silently drop what it held. A stored record whose bytes no longer hash to its id (or whose id
or priority is malformed) is reported so the store can quarantine it.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from hub.core.errors import StoreError, StoreMissing
from hub.core.frame import ID_SIZE, SIGNATURE_SIZE, Priority, wire_id

STORE_RECORD = "identity.store-id"  # which store this hub holds; not matched by store.db*
LEGACY_MARK_SUFFIX = ".created"  # store.db.created: the older evidence, kept beside the store itself
_NEW_STORE_HINT = (
    "Restore the file from a backup, or, if an empty store is intended, start once with"
    " 'beredt run --new-store'"
)


@dataclass(frozen=True, slots=True)
class StoreRecord:
    store_id: str | None  # None: only the older mark says that there was a store
    created: str


def record_path(path: Path) -> Path:
    return path.with_name(STORE_RECORD)


def _legacy_mark(path: Path) -> Path:
    return path.with_name(path.name + LEGACY_MARK_SUFFIX)


def read_record(path: Path) -> StoreRecord | None:
    """What this hub recorded about the store at ``path``; None if it never had one."""
    record = record_path(path)
    if record.exists():
        fields = dict(line.split(" ", 1) for line in record.read_text().splitlines() if " " in line)
        return StoreRecord(fields.get("store"), fields.get("created", "at an unknown time"))
    legacy = _legacy_mark(path)
    if legacy.exists():
        return StoreRecord(None, legacy.read_text().strip())
    return None


def refuse_lost_store(path: Path, new_store: bool) -> None:
    """Raise ``StoreMissing`` if this hub had a store at ``path`` and it is now missing or empty."""
    record = read_record(path)
    if new_store or record is None or (path.exists() and path.stat().st_size > 0):
        return
    state = "missing" if not path.exists() else "empty (0 bytes)"
    raise StoreMissing(
        f"the store {path} is {state}, but this hub had one (created {record.created}, recorded in"
        f" {record_path(path)}): starting would drop every message it held. {_NEW_STORE_HINT}"
    )


async def claim_store(db: aiosqlite.Connection, path: Path, *, new_store: bool) -> None:
    """Check that the store open as ``db`` is the one this hub recorded, then (re)write the record.

    A store without an id gets one: a new store, or one written before stores had ids. ``new_store``
    makes whatever store is there this hub's store from now on. Raises ``StoreError``."""
    try:
        await _claim(db, path, new_store)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot record which store this hub holds ({path}): {exc}") from exc


async def _claim(db: aiosqlite.Connection, path: Path, new_store: bool) -> None:
    await db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    async with db.execute("SELECT value FROM meta WHERE key = 'store_id'") as cursor:
        row = await cursor.fetchone()
    held: str | None = row[0] if row else None
    record = read_record(path)
    if not new_store and record is not None and record.store_id is not None and held != record.store_id:
        raise StoreMissing(
            f"the store {path} is not the store this hub had: it holds store {held or 'without an id'},"
            f" but {record_path(path)} says store {record.store_id} (created {record.created}). It may be"
            f" another hub's store or an old copy; starting would drop every message the hub's own store"
            f" held. Put the right file back, or start once with 'beredt run --new-store' to make this"
            f" store the hub's store"
        )
    if held is None:
        held = secrets.token_hex(8)
        await db.execute("INSERT INTO meta(key, value) VALUES ('store_id', ?)", (held,))
    await db.commit()
    if new_store or record is None or record.store_id != held:
        created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        if record is not None and record.store_id == held:
            created = record.created
        _write_record(record_path(path), f"store {held}\ncreated {created}\n")
    _legacy_mark(path).unlink(missing_ok=True)


def _write_record(target: Path, text: str) -> None:
    """Write whole or not at all: a torn record after a power cut would stop the next start."""
    scratch = target.with_name(target.name + ".new")
    with open(scratch, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(scratch, target)


_PRIORITIES = frozenset(int(p) for p in Priority)


def damage(message_id: Any, wire: Any, priority: Any) -> str | None:
    """Why a stored message cannot be trusted, or None if it is intact."""
    if not isinstance(message_id, bytes) or len(message_id) != ID_SIZE:
        return "its id is not a message id"
    if not isinstance(wire, bytes) or len(wire) <= SIGNATURE_SIZE + 2:
        return "its frame is missing or truncated"
    if wire_id(wire) != message_id:
        return "its frame's bytes no longer match its id"
    if priority not in _PRIORITIES:
        return f"its priority {priority!r} is not one of {sorted(_PRIORITIES)}"
    return None
