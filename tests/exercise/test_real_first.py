"""Real traffic overtakes an exercise's backlog: two real hubs whose only link is LoRa (the fake mesh, the
real ``meshtastic`` library) with a small airtime budget. The exercise's messages fill the routine share
of the hour and the rest of them wait at the staff hub for the budget; a real message sent after them
goes at once over the same radio and arrives while the exercise's messages it overtook are still held.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.exercise.meshpair import mesh_pair
from tests.hubproc import HubProcess
from tests.transports.test_lora import MeshInBackground

BUDGET = 12.0
"""Seconds of airtime a hub allows itself per hour: routine (and every exercise frame) may fill 60 %,
about four packets, a normal-priority real message up to 80 %."""
EXERCISE_MESSAGES = 8
SCENARIO = """
name = "Storm over kommunen"
duration = "1h"

[participants]
nodes = ["Plejehjemmet Solgaarden"]

[[injects]]
at = "0s"
kind = "message"
text = "Stormen tager til i aften"
"""


@pytest.fixture
def mesh_hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, MeshInBackground]]:
    with mesh_pair(tmp_path, {"airtime_budget_seconds": BUDGET}) as hubs:
        yield hubs


def held_at_staff(staff: HubProcess, message_id: str) -> bool:
    """The staff hub still holds the message: not handed to the radio, not delivered."""
    message = staff.message(message_id)
    return not message["end_to_end_acked"] and all(h["state"] != "hop-acked" for h in message["hops"])


def airtime_used(staff: HubProcess) -> float:
    lora = next(r for r in staff.get("/v1/links")["links"] if r["link"] == "lora")
    return float(lora["details"]["airtime_used_s"])


@pytest.mark.timeout(600)
def test_a_real_message_overtakes_a_backlog_of_exercise_messages_on_a_budgeted_radio(
    mesh_hubs: tuple[HubProcess, HubProcess, MeshInBackground], tmp_path: Path
) -> None:
    staff, home, _ = mesh_hubs
    scenario = tmp_path / "storm.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    staff.cli("exercise", "start", str(scenario), "--by", "hansen")
    home.wait_for("the exercise's first message", lambda: len(home.inbox()) >= 1, timeout=120)
    backlog = []
    for number in range(EXERCISE_MESSAGES):  # what a person sends during the exercise is the exercise's
        out = staff.cli("send", "text", home.node_id, f"Øvelsesbesked {number}: sandsække til kælderen")
        assert "ØVELSE: sendt som øvelsesbesked" in out
        backlog.append(out.split()[0])

    def held() -> list[str]:
        arrived = {m["id"] for m in home.inbox()}
        return [m for m in backlog if m not in arrived]

    # the routine share fills: some of the exercise's messages go, the rest are held for the budget
    staff.wait_for("the budget to hold exercise messages back", lambda: len(held()) >= 3, timeout=120)
    before = held()
    assert all(held_at_staff(staff, m) for m in before)
    assert airtime_used(staff) > 0.5 * BUDGET  # the routine share is spent: that is what holds them

    out = staff.cli(
        "send", "text", home.node_id, "Rigtig besked: vejen til plejehjemmet er spærret", "--actual"
    )
    assert "REEL HÆNDELSE – IKKE ØVELSE" in out
    real = out.split()[0]
    home.wait_for("the real message", lambda: any(m["id"] == real for m in home.inbox()), timeout=120)
    by_id = {m["id"]: m for m in home.inbox()}
    assert by_id[real]["status"] == "actual"
    still_held = [m for m in before if m not in by_id]
    assert len(still_held) >= 3, "the real message did not overtake a backlog"
    assert all(held_at_staff(staff, m) for m in still_held)
    assert all(by_id[m]["status"] == "exercise" for m in backlog if m in by_id)
