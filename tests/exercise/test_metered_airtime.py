"""LoRa airtime in the after-action report is metered: two real hubs on the fake mesh (the real
``meshtastic`` library against fake radios), LoRa their only link, play an exercise. What each hub's link
spent on the exercise's frames must equal the airtime of exactly those packets the fake radio received
from it (every frame marked Exercise, the controls and acknowledgements too), and the report the
coordinator's hub writes shows that figure, marked "målt". A real message sent meanwhile is not counted.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.core.frame import VERSION, Status, decode_frame
from hub.relay.exercise_usage import USAGE_FILE
from tests.exercise.meshpair import HOME_RADIO as B
from tests.exercise.meshpair import STAFF_RADIO as A
from tests.exercise.meshpair import mesh_pair
from tests.hubproc import HubProcess
from tests.transports.test_lora import MeshInBackground
from transports.lora_airtime import ModemPreset, packet_airtime

SCENARIO = """
name = "Stormflod"
duration = "1h"

[participants]
nodes = ["Plejehjemmet Solgaarden"]

[targets]
lora_airtime = "10m"

[[injects]]
at = "0s"
kind = "message"
text = "Vandet stiger ved havnen"

[[injects]]
at = "2s"
kind = "message"
text = "Sandsække på vej"
"""


@pytest.fixture
def mesh_hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, MeshInBackground]]:
    with mesh_pair(tmp_path) as hubs:
        yield hubs


def exercise_airtime(packets: list[bytes]) -> float:
    """Seconds on air of the packets that carry a frame marked Exercise, whole or cut into fragments
    (type 2: a 7-byte header of type, 4-byte set id, index and count), reassembled here from the air."""
    total, pieces = 0.0, {}
    for packet in packets:
        if packet[0] == VERSION:
            if decode_frame(packet).status is Status.EXERCISE:
                total += packet_airtime(len(packet), ModemPreset.LONG_FAST)
        elif packet[0] == 2:
            pieces.setdefault(packet[1:5], []).append(packet)
    for fragments in pieces.values():
        by_index = {f[5]: f for f in fragments}
        if len(by_index) != fragments[0][6]:
            continue  # never whole: no frame to read a status from
        frame = decode_frame(b"".join(by_index[i][7:] for i in sorted(by_index)))
        if frame.status is Status.EXERCISE:
            total += sum(packet_airtime(len(f), ModemPreset.LONG_FAST) for f in fragments)
    return total


def metered(hub: HubProcess, exercise: str) -> dict[str, dict[str, float]]:
    path = hub.dir / "data" / USAGE_FILE
    if not path.is_file():
        return {}
    tallies: dict[str, dict[str, float]] = json.loads(path.read_text()).get(exercise, {})
    return tallies


@pytest.mark.timeout(600)
def test_the_report_meters_what_the_radio_put_on_the_air_for_the_exercise(
    mesh_hubs: tuple[HubProcess, HubProcess, MeshInBackground], tmp_path: Path
) -> None:
    staff, home, mesh = mesh_hubs
    scenario = tmp_path / "stormflod.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    staff.cli("exercise", "start", str(scenario), "--by", "hansen")
    exercise = staff.get("/v1/exercise")["exercises"][0]["id"]
    home.wait_for("both injects over LoRa", lambda: len(home.inbox()) >= 2, timeout=120)
    answer = home.send(staff.node_id, "status", {"facility": "Compromised", "text": "Vand i kælderen"})
    real = home.send(staff.node_id, "text", "Rigtig: vandværket melder driftsstop", status="actual")
    staff.wait_for(
        "the answer and the real message", lambda: {answer, real} <= {m["id"] for m in staff.inbox()}
    )
    injects = [m["id"] for m in home.inbox() if m["status"] == "exercise"]
    staff.wait_for(
        "the end-to-end acks of the injects",
        lambda: all(staff.message(i)["end_to_end_acked"] for i in injects),
        timeout=120,
    )
    home.wait_for("the end-to-end acks at the home", lambda: home.message(answer)["end_to_end_acked"])
    staff.cli("exercise", "end", "--by", "hansen")
    home.wait_for("the end", lambda: home.get("/v1/exercise")["banner"] is None, timeout=120)

    def settled(hub: HubProcess, num: int) -> bool:
        spent = metered(hub, exercise).get("lora", {}).get("airtime_s", 0.0)
        return spent == pytest.approx(exercise_airtime(mesh.frames_from(num)), abs=1e-6)

    # each hub writes its tallies within a second; what it metered is what its radio was given
    deadline = time.monotonic() + 60
    while not (settled(staff, A) and settled(home, B)) and time.monotonic() < deadline:
        time.sleep(0.2)
    on_air = exercise_airtime(mesh.frames_from(A))
    assert on_air > 0 and metered(staff, exercise)["lora"]["airtime_s"] == pytest.approx(on_air, abs=1e-6)
    assert exercise_airtime(mesh.frames_from(B)) > 0
    assert metered(home, exercise)["lora"]["airtime_s"] == pytest.approx(
        exercise_airtime(mesh.frames_from(B)), abs=1e-6
    )
    everything = sum(packet_airtime(len(p), ModemPreset.LONG_FAST) for p in mesh.frames_from(B))
    assert everything > exercise_airtime(mesh.frames_from(B))  # the real message is not the exercise's

    out = tmp_path / "rapport"
    assert staff.stop() == 0  # the running hub holds its store for itself alone: the report comes after
    staff.cli("exercise", "report", exercise, "--out", str(out), timeout=300)
    with (out / "csv" / "forbrug.csv").open(encoding="utf-8-sig", newline="") as file:
        (lora,) = [row for row in csv.DictReader(file) if row["forbindelse"] == "lora"]
    assert float(lora["sendetid_s"]) == pytest.approx(on_air, abs=0.001)
    page = (out / "rapport.html").read_text(encoding="utf-8")
    assert "LoRa-sendetid brugt (målt)" in page and f"{on_air:.1f} s".replace(".", ",") in page
