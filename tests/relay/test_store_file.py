"""The store's file through SQLite's ``unix-excl`` VFS: no ``-shm`` file, no other process while it is open,
an ordinary SQLite file before and after."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hub.core.errors import StoreError
from hub.exercise.report.collect import read_store
from hub.relay.delivery import DeliveryState
from hub.relay.store import Store
from hub.relay.store_file import store_uri
from tests.relay.test_store import HOP, accept, all_pending, frame


def other_process(path: Path, sql: str) -> subprocess.CompletedProcess[str]:
    """``sql`` run on ``path`` by another process through SQLite's default VFS, as ``sqlite3 store.db`` does
    (no busy wait): its rows on stdout, or the error on stderr."""
    script = textwrap.dedent(
        """
        import sqlite3, sys
        db = sqlite3.connect(sys.argv[1], timeout=0)
        for row in db.execute(sys.argv[2]):
            print(*row)
        db.commit()
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(path), sql], capture_output=True, text=True, timeout=60
    )


async def test_while_open_no_shm_is_written_and_another_process_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = await Store.open(path)
    ids = [await accept(store, frame(payload=bytes([i]))) for i in range(3)]
    assert path.with_name("store.db-wal").exists()
    assert not path.with_name("store.db-shm").exists(), "the WAL index is kept in memory, not on the card"

    started = time.monotonic()
    refused = other_process(path, "SELECT count(*) FROM messages")
    assert refused.returncode != 0 and "database is locked" in refused.stderr, refused
    assert time.monotonic() - started < 5, "refused at once, not after a wait"

    # a reader in the store's own process (the console's report) reads beside it, and leaves it held
    with read_store(path) as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (3,)
    assert "database is locked" in other_process(path, "SELECT count(*) FROM messages").stderr
    store.record_delivery(ids[0], HOP, DeliveryState.HOP_ACKED, attempts=1, next_attempt=0, link="internet")
    await store.flush()
    assert len(await all_pending(store)) == 2
    assert not path.with_name("store.db-shm").exists()
    await store.close()

    # closed, it is an ordinary SQLite file: the compaction the store's docstring names works on it
    assert other_process(path, "SELECT count(*) FROM messages").stdout.split() == ["3"]
    compacted = other_process(path, "PRAGMA auto_vacuum=INCREMENTAL")
    assert compacted.returncode == 0, compacted.stderr
    assert other_process(path, "VACUUM").returncode == 0
    reopened = await Store.open(path)
    assert {p.message_id for p in await all_pending(reopened)} == set(ids[1:])
    await reopened.close()


async def test_another_process_reading_the_store_gets_the_danish_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = await Store.open(path)
    await accept(store, frame())
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from hub.core.errors import StoreHeld
        from hub.exercise.report.collect import read_store
        try:
            with read_store(Path(sys.argv[1])):
                pass
        except StoreHeld as exc:
            print(exc)
        """
    )
    started = time.monotonic()
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    await store.close()
    assert "er låst af den kørende hub" in out.stdout and "stop hubben først" in out.stdout, out
    assert time.monotonic() - started < 10
    with read_store(path) as db:  # the hub stopped: read as before
        assert db.execute("SELECT count(*) FROM messages").fetchone() == (1,)


async def test_a_store_left_with_its_shm_by_the_default_vfs_opens_with_what_its_wal_holds(
    tmp_path: Path,
) -> None:
    """A store of an earlier version, stopped hard: its last commit only in the WAL, a ``-shm`` beside it."""
    path = tmp_path / "store.db"
    store = await Store.open(path)
    ids = [await accept(store, frame(payload=bytes([i]))) for i in range(2)]
    await store.close()
    script = textwrap.dedent(
        """
        import os, sqlite3, sys
        db = sqlite3.connect(sys.argv[1])
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("UPDATE deliveries SET state = 'hop-acked' WHERE message_row = 1")
        db.commit()
        os._exit(0)  # no close: the WAL and the -shm stay, as after a power cut
        """
    )
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script, str(path)], check=True, timeout=60)
    assert path.with_name("store.db-shm").exists() and path.with_name("store.db-wal").stat().st_size > 0

    reopened = await Store.open(path)
    assert {p.message_id for p in await all_pending(reopened)} == {ids[1]}
    await reopened.close()


@pytest.mark.parametrize("folder", ["med mellemrum", "spørgsmål?", "nr#2", "100%", "a?b#c d%20e"])
async def test_a_path_with_uri_characters_is_the_file_it_names(tmp_path: Path, folder: str) -> None:
    path = tmp_path / folder / "store.db"
    path.parent.mkdir()
    store = await Store.open(path)
    await accept(store, frame())
    await store.close()
    assert "store.db" in {p.name for p in path.parent.iterdir()}
    assert os.listdir(tmp_path) == [folder], "nothing made under a name cut at ? or #"
    assert "?" not in store_uri(path).split("?", 1)[0] and "#" not in store_uri(path)
    reopened = await Store.open(path)
    assert reopened.live_messages == 1
    await reopened.close()


def test_the_uri_names_the_vfs_and_the_mode() -> None:
    assert store_uri(Path("/data/a b/store.db")) == "file:/data/a%20b/store.db?vfs=unix-excl"
    assert store_uri(Path("/x/store.db"), mode="rw") == "file:/x/store.db?vfs=unix-excl&mode=rw"


HOLD = textwrap.dedent(
    """
    import sqlite3, sys
    db = sqlite3.connect(sys.argv[1])
    db.execute("BEGIN")
    db.execute("SELECT count(*) FROM messages").fetchone()
    print("open", flush=True)
    sys.stdin.read()
    """
)
"""A ``sqlite3`` shell left open on the store, in a read transaction, until its stdin closes."""


async def test_the_store_does_not_open_while_another_process_has_it_open(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    await (await Store.open(path)).close()
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD, str(path), stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert await holder.stdout.readline() == b"open\n"
        with pytest.raises(StoreError, match=r"database is locked \(another process has it open"):
            await Store.open(path)
    finally:
        await holder.communicate(b"")
    reopened = await Store.open(path)  # closed: the hub starts
    await reopened.close()
