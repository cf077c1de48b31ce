"""Storage at start-up, with real ``beredt run`` processes: a lost store stops the start with a clear
message and its own exit code, a damaged record is moved aside while the rest is delivered, and a damaged
console database costs the console, never the relay."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
from pathlib import Path

from tests.hubproc import BEREDT, REPO, HubProcess, staff_and_care_home

EXIT_STORE_MISSING = 3


def _run_refused(hub: HubProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BEREDT, "run", "--config", str(hub.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_a_lost_store_refuses_to_start_until_a_new_one_is_asked_for(tmp_path: Path) -> None:
    staff, home = staff_and_care_home(tmp_path)
    staff.start()
    try:
        for n in range(3):  # queued: the care home is not running
            staff.send(home.node_id, "text", f"Besked {n} til Solbakken")
        assert staff.stop() == 0
        data = staff.dir / "data"
        for part in data.glob("store.db*"):  # what `rm store.db*` removes: the store and its WAL files
            part.unlink()
        assert (data / "identity.store-id").exists()

        deleted = _run_refused(staff)
        assert deleted.returncode == EXIT_STORE_MISSING, deleted.stderr
        assert "missing" in deleted.stderr and "--new-store" in deleted.stderr
        assert not (data / "store.db").exists(), "a refused start must not leave an empty store behind"

        (data / "store.db").write_bytes(b"")
        emptied = _run_refused(staff)
        assert emptied.returncode == EXIT_STORE_MISSING, emptied.stderr
        assert "empty" in emptied.stderr

        staff.start(options=["--new-store"])
        assert staff.get("/healthz")["live_messages"] == 0
        assert staff.stop() == 0
        staff.start()  # the new store is this hub's store from now on
    finally:
        staff.kill()


def test_a_damaged_record_is_quarantined_and_the_others_delivered(tmp_path: Path) -> None:
    staff, home = staff_and_care_home(tmp_path)
    staff.start()
    try:
        sent = [staff.send(home.node_id, "text", f"Besked {n} til Solbakken") for n in range(5)]
        assert staff.stop() == 0
        damaged = bytes.fromhex(sent[2])
        with contextlib.closing(sqlite3.connect(staff.dir / "data" / "store.db")) as db:
            (wire,) = db.execute("SELECT wire FROM messages WHERE id=?", (damaged,)).fetchone()
            flipped = wire[:40] + bytes([wire[40] ^ 0xFF]) + wire[41:]  # one bit rotted on the SD card
            db.execute("UPDATE messages SET wire=? WHERE id=?", (flipped, damaged))
            db.commit()

        staff.start()
        home.start()
        assert staff.get("/healthz")["quarantined"] == 1
        intact = set(sent) - {sent[2]}
        home.wait_for("the four intact messages", lambda: {m["id"] for m in home.inbox()} >= intact)
        assert sent[2] not in {m["id"] for m in home.inbox()}
        assert staff.request("GET", f"/v1/messages/{sent[2]}")[0] == 404
        assert f"message {sent[2]} is damaged" in (staff.dir / "hub.log").read_text()
    finally:
        staff.kill()
        home.kill()


def test_a_damaged_console_database_disables_only_the_console(tmp_path: Path) -> None:
    staff, home = staff_and_care_home(tmp_path)
    (staff.dir / "data").mkdir(exist_ok=True)
    (staff.dir / "data" / "console.db").write_bytes(b"not a database " * 512)
    staff.start()
    home.start()
    try:
        console = staff.get("/healthz")["console"]
        assert console.startswith("disabled: console database unusable"), console
        status, answer = staff.request("GET", "/console/api/me")
        assert status == 503 and "slået fra" in answer["error"]
        message_id = staff.send(home.node_id, "text", "Relæet kører uden konsollen")
        home.wait_for(
            "a message relayed without the console", lambda: any(m["id"] == message_id for m in home.inbox())
        )
    finally:
        staff.kill()
        home.kill()
