"""Process crashes under load: hubs SIGKILLed at random points lose no accepted message, deliver none twice.

A sender hub (municipality) takes messages over its API as fast as a client sends them, and relays them to a
care-home hub over the internet link. Either hub is killed with SIGKILL (no flush, no goodbye) at a random
moment, again and again, and restarted. In the end every message the sender answered 202 for must be in the
care home's inbox exactly once, and both SQLite stores must pass an integrity check.

A SIGKILL ends the process but not the machine: whatever the hub wrote is still in the kernel's page cache
and reaches the disk later, fsynced or not. Losing that cache as a power cut does is tested in
``test_power_loss.py``. The short variant runs in CI; ``--soak`` runs the long one.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.load import Load, integrity
from tests.hubproc import HubProcess, staff_and_care_home


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


def crashes(staff: HubProcess, home: HubProcess, *, kills: int, limit: int, seed: int) -> None:
    rng = random.Random(seed)
    with Load(staff, home.node_id, limit) as load:
        for kill in range(kills):
            victim = staff if kill % 2 == 0 else home
            # A random point in the stream: before, during or between the store's group commits.
            time.sleep(rng.uniform(0.05, 0.8))
            victim.kill()
            victim.start()
        staff.wait_for(
            "some load after the last restart", lambda: len(load.accepted) >= min(limit, 20), timeout=60
        )
    accepted = load.accepted
    print(f"{kills} crashes: {len(accepted)} messages accepted, {load.refused} refused or cut off")
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


def test_process_crashes_under_load_lose_and_duplicate_nothing(pair: tuple[HubProcess, HubProcess]) -> None:
    staff, home = pair
    crashes(staff, home, kills=4, limit=300, seed=1)


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_process_crashes_soak(pair: tuple[HubProcess, HubProcess]) -> None:
    staff, home = pair
    crashes(staff, home, kills=40, limit=950, seed=int(os.environ.get("BEREDT_SOAK_SEED", "7")))
