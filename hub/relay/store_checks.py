"""Storage safety at open: noticing a store that was lost, and records that can no longer be trusted.

A store leaves a mark file beside itself when first made; if the mark is there and the store is missing
or empty, the hub refuses to start rather than silently drop what it held. A stored record whose bytes no
longer hash to its id (or whose id or priority is malformed) is reported so the store can quarantine it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hub.core.errors import StoreMissing
from hub.core.frame import ID_SIZE, SIGNATURE_SIZE, Priority, wire_id

STORE_MARK_SUFFIX = ".created"  # store.db.created: proof that this hub had a store, so losing it is noticed


def mark_path(path: Path) -> Path:
    return path.with_name(path.name + STORE_MARK_SUFFIX)


def refuse_lost_store(path: Path, new_store: bool) -> None:
    """Raise ``StoreMissing`` if this hub had a store at ``path`` and it is now missing or empty."""
    mark = mark_path(path)
    if new_store or not mark.exists() or (path.exists() and path.stat().st_size > 0):
        return
    state = "missing" if not path.exists() else "empty (0 bytes)"
    raise StoreMissing(
        f"the store {path} is {state}, but this hub had one (created {mark.read_text().strip()}):"
        " starting would drop every message it held. Restore the file from a backup, or, if an"
        " empty store is intended, start once with 'beredt run --new-store'"
    )


def mark_store(path: Path, *, renew: bool) -> None:
    """Leave the mark that this hub has a store at ``path`` (renewed when a new store was asked for)."""
    mark = mark_path(path)
    if renew or not mark.exists():
        mark.write_text(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()) + "\n")


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
