"""What one received status costs the SD card in the store's WAL, by how its commit is made.

The three-day benchmark (``bench_three_days.py``) measures the whole hub; this one isolates the store's
share to show where its floor lies. It writes to a store made as the hub makes one (``store_schema``: the
same tables and indexes, 512-byte pages, ``synchronous=FULL``, opened through ``store_file``'s VFS, so no
``-shm``), after 504 statuses of warm-up, and counts this process's ``/proc/self/io`` write_bytes over
``--statuses`` statuses, per status. Rows carry random bytes of the sizes a sealed status (132 bytes) and a
sealed end-to-end ack (139 bytes) have in a real store. Variants:

- no commit window: each status in its own fsynced commit, with the hub's end-to-end ack to it (its
  message row and delivery row) and the previous ack's delivery settled, as a staff hub commits them at 80
  care homes;
- without the stored ack: each status alone in its fsynced commit;
- two, three and six statuses (with their acks) sharing one fsynced commit, as the commit window
  (`[timing] commit_window`) makes at a steady rate (it ends at six, ``store_writer.COMPANY``);
- the floor, measured in the same run: the status's bytes appended to a plain file and fsynced, the
  least any durable write per status costs (the kernel writes whole 4 KiB pages).

The WAL is not checkpointed during a variant: the copy into the database comes on top (in the hub, once
an hour, shared by every status of that hour).

    .venv/bin/python bench/bench_commit_floor.py [--statuses 300]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.relay.store_file import store_uri
from hub.relay.store_schema import CONNECTION_PRAGMAS, DELIVERIES, INDEXES, MESSAGES, PAGE_SIZE

STATUS_BYTES, ACK_BYTES = 132, 139
WARM_UP = 504  # a multiple of every commit size below: the measured part starts with a commit
_INSERT = (
    "INSERT INTO messages(row, id, wire, sender, recipient, kind, priority, created, expires, size, local,"
    " for_me, state, accepted_at, via, key_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise KeyError("write_bytes")


class Store:
    """A store file made as the hub makes one, written with plain SQL."""

    def __init__(self, folder: Path) -> None:
        self.db = sqlite3.connect(store_uri(folder / "store.db"), uri=True, isolation_level=None)
        self.db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        self.db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self.db.execute("PRAGMA journal_mode=WAL")
        for pragma in CONNECTION_PRAGMAS:
            self.db.execute(pragma)
        self.db.executescript(
            f"{MESSAGES.format(name='messages')};{DELIVERIES.format(name='deliveries')};{INDEXES}"
        )
        self.row = 0

    def insert(self, kind: int, for_me: int, state: str, size: int) -> int:
        self.row += 1
        now = time.time()
        self.db.execute(
            _INSERT,
            (self.row, os.urandom(16), os.urandom(size), os.urandom(8), os.urandom(8), kind, 1, int(now),
             int(now) + 86400, size, 0, for_me, state, now, "internet", "d20261206"),
        )  # fmt: skip
        return self.row

    def status(self, *, ack: bool) -> None:
        self.insert(3, 1, "delivered", STATUS_BYTES)
        if ack:
            row = self.insert(6, 0, "active", ACK_BYTES)
            self.db.execute(
                "INSERT INTO deliveries(message_row, hop, state, updated) VALUES (?,?,?,?)",
                (row, os.urandom(8), "queued", time.time()),
            )
            if row > 2:  # the previous status's ack was hop-acked meanwhile: settled in this commit
                self.db.execute("UPDATE deliveries SET state='hop-acked' WHERE message_row=?", (row - 2,))
                self.db.execute("UPDATE messages SET state='done' WHERE row=?", (row - 2,))

    def close(self) -> None:
        self.db.close()


def per_status(statuses: int, *, ack: bool, per_commit: int) -> float:
    """Bytes written per status, ``per_commit`` statuses to an fsynced commit."""
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent) as folder:
        store = Store(Path(folder))
        try:
            start = 0
            for n in range(WARM_UP + statuses):
                if n == WARM_UP:
                    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    os.sync()
                    start = written()
                if n % per_commit == 0:
                    store.db.execute("BEGIN")
                store.status(ack=ack)
                if n % per_commit == per_commit - 1:
                    store.db.execute("COMMIT")
            return (written() - start) / statuses
        finally:
            store.close()


def file_floor(statuses: int) -> float:
    """Bytes written per status appending its bytes to a plain file, fsynced each time."""
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent.parent) as folder:
        fd = os.open(Path(folder) / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.sync()
            start = written()
            for _ in range(statuses):
                os.write(fd, os.urandom(STATUS_BYTES))
                os.fsync(fd)
            return (written() - start) / statuses
        finally:
            os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--statuses", type=int, default=300, help="statuses measured per variant (multiple of 6)"
    )
    args = parser.parse_args()
    n = max(6, args.statuses // 6 * 6)
    floor = file_floor(n)
    rows = [
        (
            "no commit window: one status + the hub's end-to-end ack per fsynced commit",
            per_status(n, ack=True, per_commit=1),
        ),
        (
            "without the stored end-to-end ack: one status per fsynced commit",
            per_status(n, ack=False, per_commit=1),
        ),
        ("two statuses (and their acks) per fsynced commit", per_status(n, ack=True, per_commit=2)),
        ("three statuses (and their acks) per fsynced commit", per_status(n, ack=True, per_commit=3)),
        ("six statuses (and their acks) per fsynced commit", per_status(n, ack=True, per_commit=6)),
    ]
    print(f"store WAL bytes written per status ({n} statuses per variant, after {WARM_UP} of warm-up)")
    print(f"  {'floor: the status appended to a file, fsynced':70} {floor / 1024:5.1f} KB")
    for name, value in rows:
        print(f"  {name:70} {value / 1024:5.1f} KB  ({value / floor:.1f}x the floor)")
    print(
        "The budget for the whole hub is 8 KB per status, checkpoints, the console and every file included."
    )


if __name__ == "__main__":
    main()
