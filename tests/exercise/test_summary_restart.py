"""A participant's account of an exercise survives a restart, with real ``beredt run`` processes: a care
home stopped while the exercise's window ends sends its final summary when it starts again, and after
that restart it still answers the coordinator's ``beredt exercise collect``."""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.core.frame import Kind
from tests.hubproc import HubProcess, staff_and_care_home

SCENARIO = """
name = "Kort nattevagt"
duration = "20s"

[participants]
groups = ["plejehjem"]

[[injects]]
at = "0s"
kind = "message"
text = "Strømmen er gået"
"""


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff, home = staff_and_care_home(tmp_path, "Solbakken")
    staff.config["peers"][0]["groups"] = ["plejehjem"]  # the scenario's participants
    staff.write_config()
    try:
        staff.start()
        home.start()
        yield staff, home
    finally:
        staff.stop()
        home.stop()


def stored_summaries(staff: HubProcess, home: HubProcess) -> int:
    """EXERCISE_SUMMARY frames from ``home`` in the stopped staff hub's store, however they were sent (the
    running hub holds its store for itself alone)."""
    path = staff.dir / "data" / "store.db"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM messages WHERE kind = ? AND sender = ? AND local = 0",
            (int(Kind.EXERCISE_SUMMARY), bytes.fromhex(home.node_id)),
        ).fetchone()
    return int(count)


def summaries(staff: HubProcess, home: HubProcess) -> int:
    """EXERCISE_SUMMARY frames from ``home`` in the running staff hub's store: those the home says it sent
    (its log names each one's id) that the staff hub holds (its API; it keeps them out of its inbox)."""
    sent = re.findall(
        rf"summary of exercise \w+ sent to {staff.node_id} as ([0-9a-f]{{32}})", home.log_tail(10_000)
    )
    return sum(1 for message_id in sent if staff.request("GET", f"/v1/messages/{message_id}")[0] == 200)


@pytest.mark.timeout(300)  # two real hubs, restarted, on a loaded 2-core machine
def test_a_summary_owed_across_a_restart_is_sent_and_collect_is_answered_after_it(
    hubs: tuple[HubProcess, HubProcess], tmp_path: Path
) -> None:
    staff, home = hubs
    scenario = tmp_path / "nat.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    staff.cli("exercise", "start", str(scenario), "--by", "hansen")
    home.wait_for("the exercise at the home", lambda: home.get("/v1/exercise")["banner"] is not None)
    until = home.get("/v1/exercise")["banner"]["until"]

    home.stop()  # stopped while the exercise runs: its window ends meanwhile
    deadline = time.monotonic() + 120
    while time.time() <= until + 1:
        assert time.monotonic() < deadline
        time.sleep(0.5)  # waiting out the exercise's own 20 s window on the wall clock, not syncing
    assert summaries(staff, home) == 0
    home.start()
    home.wait_for("the final summary after the restart", lambda: summaries(staff, home) == 1, timeout=90)
    assert home.get("/v1/exercise")["banner"] is None

    home.restart()  # sent: not owed again, but the coordinator may still ask
    kept = json.loads((home.dir / "data" / "exercise.json").read_text(encoding="utf-8"))
    assert kept["final_unsent"] is None and kept["last"]["name"] == "Kort nattevagt"
    exercise = staff.get("/v1/exercise")["exercises"][0]["id"]
    staff.cli("exercise", "collect", "--id", exercise, "--by", "hansen")
    home.wait_for("the summary asked for after a restart", lambda: summaries(staff, home) >= 2, timeout=90)
    assert summaries(staff, home) == 2  # asked once, sent once (the control is applied once)
    # the home's log names what it sent; the staff hub's store holds all it got, whatever sent it
    assert home.stop() == 0 and staff.stop() == 0
    assert stored_summaries(staff, home) == 2
