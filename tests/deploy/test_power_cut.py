"""Power cuts under load: hubs SIGKILLed at random points lose no accepted message and deliver none twice.

A sender hub (municipality) takes messages over its API as fast as a client sends them, and relays them to a
care-home hub over the internet link. Either hub is killed with SIGKILL (no flush, no goodbye, as when the
power goes) at a random moment, again and again, and restarted. In the end every message the sender
answered 202 for must be in the care home's inbox exactly once, and both SQLite stores must pass an
integrity check. The short variant runs in CI; set ``BEREDT_SOAK=1`` for the long one.
"""

from __future__ import annotations

import http.client
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubproc import HubError, HubProcess, staff_and_care_home


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff, home = staff_and_care_home(tmp_path)
    staff.start()
    home.start()
    try:
        yield staff, home
    finally:
        staff.kill()
        home.kill()


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
    with sqlite3.connect(hub.dir / "data" / "store.db") as db:
        result: str = db.execute("PRAGMA integrity_check").fetchone()[0]
        return result


def power_cuts(staff: HubProcess, home: HubProcess, *, cuts: int, limit: int, seed: int) -> None:
    rng = random.Random(seed)
    with Load(staff, home.node_id, limit) as load:
        for cut in range(cuts):
            victim = staff if cut % 2 == 0 else home
            # A random point in the stream: before, during or between the store's group commits.
            time.sleep(rng.uniform(0.05, 0.8))
            victim.kill()
            victim.start()
        staff.wait_for(
            "some load after the last restart", lambda: len(load.accepted) >= min(limit, 20), timeout=60
        )
    accepted = load.accepted
    print(f"{cuts} power cuts: {len(accepted)} messages accepted, {load.refused} refused or cut off")
    assert accepted, "the load never got a message accepted"

    def delivered() -> bool:
        return set(accepted) <= {m["id"] for m in home.inbox()}

    home.wait_for(f"all {len(accepted)} accepted messages", delivered, timeout=90)
    inbox = [m for m in home.inbox() if m["kind"] == "text"]
    ids = [m["id"] for m in inbox]
    bodies = [m["body"] for m in inbox]
    assert len(ids) == len(set(ids)), "a message was delivered to the application twice"
    assert len(bodies) == len(set(bodies)), "the same report arrived twice under different ids"
    for message_id, body in accepted.items():
        assert next(m["body"] for m in inbox if m["id"] == message_id) == body
    assert staff.stop() == 0
    assert home.stop() == 0
    assert integrity(staff) == "ok"
    assert integrity(home) == "ok"


def test_power_cuts_under_load_lose_and_duplicate_nothing(pair: tuple[HubProcess, HubProcess]) -> None:
    staff, home = pair
    power_cuts(staff, home, cuts=4, limit=300, seed=1)


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_power_cuts_soak(pair: tuple[HubProcess, HubProcess]) -> None:
    staff, home = pair
    power_cuts(staff, home, cuts=40, limit=950, seed=int(os.environ.get("BEREDT_SOAK_SEED", "7")))
