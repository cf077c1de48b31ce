"""How the hub opens its store's file: through SQLite's ``unix-excl`` VFS, never the default one.

On an SD card the bytes written per received status are budgeted. With the default VFS the WAL index lives
in ``store.db-shm``, a memory-mapped file: every commit dirties a few of its 4 KiB pages and the kernel
writes them back every 30 s, about 3 KB per status. ``unix-excl`` keeps the WAL index in the process's heap
instead (the hub's connections to the store share it, and no ``-shm`` file is made) and holds the
database's lock for as long as one of them is open. So no other process can open the store while the hub
runs: ``sqlite3 store.db`` and ``beredt exercise report`` get "database is locked" at once. Stop the hub
first (``sudo systemctl stop beredt``); the file is an ordinary SQLite database again after that.

Every connection of this process to the store uses it, read-write (``mode=ro`` does not take the hold).
SQLite keeps one record per file and process, shared by its unix VFSes: the file's locks and its WAL
index. Whichever connection takes the file's first lock sets that record up: one through this VFS takes
the hold and keeps the index in memory; one through the default VFS, or a read-only one, maps
``store.db-shm`` and takes no hold, and the hub's connections opened beside it then share that, so other
processes open the store as if it were not held. Opened after the hub's, such a connection shares their
hold and index, and closing it keeps them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.request import pathname2url

from hub.core.errors import StoreHeld

VFS = "unix-excl"


def store_uri(path: Path, *, mode: str | None = None) -> str:
    """The SQLite URI of the store at ``path`` through ``VFS`` (connect with ``uri=True``); ``mode="rw"``: the
    file must exist (the default creates it). The path is quoted: a space, ``?`` or ``#`` in it is a name."""
    query = f"vfs={VFS}" + (f"&mode={mode}" if mode else "")
    return f"file:{pathname2url(str(path.absolute()))}?{query}"


def is_held(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another process holds the store's file (SQLITE_BUSY on taking its lock)."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


def held_error(path: Path) -> StoreHeld:
    """The error of a store another process (a running hub) holds, in Danish for the operator."""
    return StoreHeld(
        f"lageret {path} er låst af den kørende hub: mens hubben kører, kan intet andet program åbne det;"
        " stop hubben først (sudo systemctl stop beredt)"
    )
