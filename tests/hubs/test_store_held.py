"""A running hub holds its store for itself alone (SQLite's ``unix-excl`` VFS, ``hub.relay.store_file``):
another process opening ``store.db`` gets "database is locked" at once, no ``store.db-shm`` is written, and
the hub's own reads and writes go on (a status received, the board, the API). Stopped, the store is an
ordinary SQLite file that holds what the hub stored."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.hubproc import staff_and_care_home

OPEN_STORE = textwrap.dedent(
    """
    import sqlite3, sys
    uri, = sys.argv[1:]
    try:
        with sqlite3.connect(uri, uri=True, timeout=0) as db:
            print(db.execute("SELECT count(*) FROM messages").fetchone()[0])
    except sqlite3.Error as exc:
        print(type(exc).__name__, exc, file=sys.stderr)
        sys.exit(1)
    """
)


def open_elsewhere(uri: str) -> subprocess.CompletedProcess[str]:
    """``store.db`` opened by another process, as ``sqlite3 store.db`` or a script would, without waiting."""
    return subprocess.run([sys.executable, "-c", OPEN_STORE, uri], capture_output=True, text=True, timeout=60)


def board_status(board: dict[str, list[dict[str, object]]], name: str) -> str:
    """The status the board shows for institution ``name``."""
    return " ".join(str(row["status"]) for row in board["institutions"] if row["name"] == name)


def test_another_process_is_refused_while_the_hub_reads_and_writes_on(tmp_path: Path) -> None:
    staff, home = staff_and_care_home(tmp_path, "Plejecenter Solbakken")
    staff.start()
    home.start()
    try:
        first = home.send(staff.node_id, "status", {"facility": "Normal", "text": "Alt vel"})
        staff.wait_for("the first status", lambda: any(m["id"] == first for m in staff.inbox()))
        store = staff.dir / "data" / "store.db"
        for uri in (f"file:{store}", f"file:{store}?mode=ro"):
            started = time.monotonic()
            refused = open_elsewhere(uri)
            assert refused.returncode == 1 and "database is locked" in refused.stderr, refused
            assert time.monotonic() - started < 5, "refused at once"
        assert not store.with_name("store.db-shm").exists(), "the WAL index stays in the hub's memory"

        # the hub's own reads and writes go on beside the refusal
        second = home.send(staff.node_id, "status", {"facility": "Compromised", "text": "Nødstrøm"})
        staff.wait_for("the second status", lambda: any(m["id"] == second for m in staff.inbox()))
        staff.wait_for(
            "the board to show it",
            lambda: "Compromised" in board_status(staff.get("/v1/board"), "Plejecenter Solbakken"),
        )
        home.wait_for("the end-to-end ack", lambda: bool(home.message(second)["end_to_end_acked"]))
        assert "database is locked" in open_elsewhere(f"file:{store}").stderr
        assert not store.with_name("store.db-shm").exists()
        assert staff.stop() == 0
        with contextlib.closing(sqlite3.connect(store, timeout=0)) as db:  # stopped: an ordinary file
            ids = {bytes(row[0]).hex() for row in db.execute("SELECT id FROM messages WHERE for_me = 1")}
        assert {first, second} <= ids
    finally:
        staff.kill()
        home.kill()
