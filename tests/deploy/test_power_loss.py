"""Power loss: the page cache is lost as when the power goes, and nothing the hub acknowledged is lost.

A SIGKILL (``test_process_crash.py``) ends the process, not the machine: what the hub wrote without an
fsync still reaches the disk from the page cache, so a missing fsync passes that test. Here the staff
hub's folder lives on its own ext4 disk on a loop device (``tests/deploy/loopdisk.py``); to cut the power
the hub is SIGKILLed and the disk replaced at once by a copy of what had reached its block device, which
is what an SD card holds after a cut. A loop device because it is what works on a root shell without
device-mapper (no dm-flakey here), and because it loses exactly the unsynced writes; an LD_PRELOAD shim
that fails fsync would test the error path, not what a cut loses. Each test first shows the cut is real:
a file written without fsync is gone afterwards.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.core.identity import Identity
from hub.relay.roster import Roster
from tests.deploy.load import Load, integrity
from tests.deploy.loopdisk import LoopDisk, skip_reason
from tests.hubproc import HubProcess, staff_and_care_home

pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[LoopDisk]:
    disk = LoopDisk(tmp_path / "disk")
    try:
        yield disk
    finally:
        disk.close()


CANARY = "only in the page cache"


def write_canary(disk: LoopDisk) -> Path:
    """A file written and closed but never fsynced: a real cut loses what it holds (the hub's fsyncs may
    commit ext4's journal and with it the file's name, but not its data)."""
    canary = disk.mount / "canary"
    canary.write_text(CANARY)
    return canary


def lost(canary: Path) -> bool:
    return not canary.exists() or canary.read_text(errors="replace") != CANARY


def test_a_power_cut_under_load_loses_nothing_acknowledged(tmp_path: Path, disk: LoopDisk) -> None:
    staff, home = staff_and_care_home(tmp_path, staff_dir=disk.mount / "staff")
    os.sync()  # the hubs were set up long before the cut, as on a Pi in service
    staff.start()
    home.start()
    try:
        with Load(staff, home.node_id, limit=10_000) as load:
            staff.wait_for("some accepted messages", lambda: len(load.accepted) >= 40, timeout=60)
            canary = write_canary(disk)
            random.seed(3)
            staff.wait_for(
                "a moment later", lambda: len(load.accepted) >= 40 + random.randrange(40), timeout=60
            )
            staff.kill()
            disk.cut()
        accepted = dict(load.accepted)
        assert lost(canary), "the cut kept unsynced data: it did not lose the page cache"
        print(f"power cut after {len(accepted)} accepted messages ({load.refused} refused or cut off)")
        assert integrity(staff) == "ok"
        staff.start()

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
    finally:
        staff.kill()
        home.kill()


def test_identity_and_roster_survive_a_cut_right_after_they_are_written(
    tmp_path: Path, disk: LoopDisk
) -> None:
    """``beredt init`` and ``beredt roster add`` return only once their files would survive a cut."""
    home = HubProcess.create(tmp_path / "home", "Plejecenter Solbakken", "care-home")
    staff = HubProcess.create(disk.mount / "staff", "Aarhus krisestab", "staff")
    staff.trust(home)
    canary = write_canary(disk)
    disk.cut()
    assert lost(canary), "the cut kept unsynced data: it did not lose the page cache"
    identity = Identity.load(staff.dir / "data" / "identity.key")
    assert identity.node_id.hex() == staff.node_id
    roster = Roster.load(identity.card, staff.dir / "data" / "roster.toml")
    assert roster.get(bytes.fromhex(home.node_id)) is not None
