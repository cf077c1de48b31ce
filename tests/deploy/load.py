"""What the crash and power-loss tests share: a client that keeps sending, and the store's integrity check."""

from __future__ import annotations

import contextlib
import http.client
import sqlite3
import threading

from tests.hubproc import HubError, HubProcess


class Load:
    """A client posting numbered messages to ``hub`` from a thread; remembers which were accepted."""

    def __init__(self, hub: HubProcess, to: str, limit: int) -> None:
        self.hub = hub
        self.to = to
        self.limit = limit
        self.accepted: dict[str, str] = {}  # message id -> body
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load", daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set() and number < self.limit:
            body = f"strømsvigt rapport {number}"
            try:
                message_id = self.hub.send(self.to, "text", body)
            except (OSError, http.client.HTTPException, HubError, ValueError):
                # The hub is down or died mid-request: this one was never acknowledged, so it is not
                # counted; it may still arrive (once), which is fine.
                self.refused += 1
                self._stop.wait(0.05)
            else:
                self.accepted[message_id] = body
            number += 1
            self._stop.wait(0.01)


def integrity(hub: HubProcess) -> str:
    with contextlib.closing(sqlite3.connect(hub.dir / "data" / "store.db")) as db:  # `with db` keeps it open
        result: str = db.execute("PRAGMA integrity_check").fetchone()[0]
        return result
