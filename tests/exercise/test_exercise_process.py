"""An exercise on real ``beredt run`` processes, driven by the CLI: a scenario of eight injects with two
simulated outages. Every message the exercise makes arrives marked Exercise; the hubs fail over from the
"down" link to the other one for real (nothing is closed); a text typed with ``beredt send`` meanwhile is
an exercise message unless sent with ``--actual``, and that real message, sent while the exercise's
messages wait, is delivered before them; and ending the exercise restores the links."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.core.at_rest import KEY_FOLDER, DataKeys, Retention
from hub.core.frame import Status, decode_frame
from hub.relay.store_at_rest import FrameVault
from tests.hubproc import BEREDT, REPO, HubProcess

SCENARIO = """
name = "Strømsvigt i distrikt Syd"
duration = "2h"

[participants]
groups = ["plejehjem"]

[[injects]]
at = "0s"
kind = "message"
text = "Strømmen er gået i hele distrikt Syd"

[[injects]]
at = "0s"
kind = "outage"
hub = "Solbakken"
link = "internet"
duration = "1h"

[[injects]]
at = "1s"
kind = "message"
text = "Forvent mindst 72 timer uden net"

[[injects]]
at = "2s"
kind = "rollcall"
text = "Kører nødstrømmen?"
deadline = "15m"

[[injects]]
at = "3s"
kind = "message"
text = "Mobilnettet er nede"
priority = "urgent"

[[injects]]
at = "4s"
kind = "message"
text = "Brændstof kommer i eftermiddag"

[[injects]]
at = "6s"
kind = "outage"
hub = "Solbakken"
link = "reserve"
duration = "1h"

[[injects]]
at = "8s"
kind = "message"
text = "Varmestuen på rådhuset er åben"
"""


def two_links(hub: HubProcess) -> str:
    """A second internet link, "reserve", on a port of its own; returns its URL."""
    port = hub.link_port + 1000 if hub.link_port < 64000 else hub.link_port - 1000
    hub.add_link("reserve", {"kind": "internet", "listen": f"127.0.0.1:{port}"})
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff = HubProcess.create(tmp_path / "staff", "Kommune", "staff")
    home = HubProcess.create(tmp_path / "home", "Solbakken", "care-home")
    staff_reserve, home_reserve = two_links(staff), two_links(home)
    links = {"internet": home.internet_url, "reserve": home_reserve}
    staff.config["peers"].append(
        {"node": home.node_id, "name": home.name, "groups": ["plejehjem"], "links": links}
    )
    home.add_peer(staff, {"internet": staff.internet_url, "reserve": staff_reserve})
    staff.set_default_route([home])
    home.set_default_route([staff])
    staff.trust(home)
    home.trust(staff)
    try:
        staff.start()
        home.start()
        yield staff, home
    finally:
        staff.stop()
        home.stop()


def link_state(hub: HubProcess, link: str, peer: HubProcess) -> str | None:
    rows = hub.get("/v1/links")["links"]
    return next((r["state"] for r in rows if r["link"] == link and r["peer"] == peer.node_id), None)


def texts(inbox: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["body"] if isinstance(m["body"], str) else m["body"].get("question", ""): m for m in inbox}


def went_first(staff: HubProcess, real: dict[str, Any], drill: dict[str, Any]) -> bool:
    """Whether the real message, held with the exercise's one by the outage, reached the home first.
    Staff queues it first; it may still arrive second when its first try reached the home a moment
    before the exercise's end did (over the other link) and was dropped by the outage the end lifts:
    then the staff hub tried it again, so that try is recorded on its delivery."""
    if real["received"] <= drill["received"]:
        return True
    hops = staff.get(f"/v1/messages/{real['id']}")["hops"]
    return any(h["attempts"] > 1 for h in hops)


@pytest.mark.timeout(400)  # real processes on a loaded 2-core machine
def test_an_exercise_on_real_hubs(hubs: tuple[HubProcess, HubProcess], tmp_path: Path) -> None:
    staff, home = hubs
    scenario = tmp_path / "syd.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    out = staff.cli("exercise", "start", str(scenario), "--by", "hansen")
    assert "Strømsvigt i distrikt Syd" in out and "kører" in out

    # the first five injects' messages arrive, marked, over "reserve": "internet" counts as down
    home.wait_for("the exercise's first messages", lambda: len(home.inbox()) >= 5, timeout=30)
    banner = home.get("/v1/exercise")["banner"]
    assert banner is not None and banner["name"] == "Strømsvigt i distrikt Syd"
    first = [m for m in home.inbox() if m["body"] != "ØVELSE: Strømmen er gået i hele distrikt Syd"]
    assert {m["status"] for m in home.inbox()} == {"exercise"}
    assert {m["via"] for m in first} == {"reserve"}
    assert all(str(texts([m]).popitem()[0]).startswith("ØVELSE: ") for m in home.inbox())
    assert link_state(staff, "internet", home) == "down"

    # both links "down": the last inject waits at the staff hub, and so does a real message after it
    def last_inject_sent() -> bool:
        return any(i["text"].startswith("Indspil 8.") for i in staff.get("/v1/exercise")["timeline"])

    staff.wait_for("the last inject", last_inject_sent, timeout=30)
    # what a person sends during the exercise is an exercise message, and the CLI says so; a real one
    # takes --actual, and is said to be real
    typed = staff.cli("send", "text", home.node_id, "Husk at tanke generatoren")
    assert "ØVELSE: sendt som øvelsesbesked" in typed
    out = staff.cli("send", "text", home.node_id, "Rigtig besked: vandværket melder driftsstop", "--actual")
    assert "REEL HÆNDELSE – IKKE ØVELSE" in out
    real = out.splitlines()[0]
    assert len(home.inbox()) == 5

    out = staff.cli("exercise", "end", "--by", "hansen")
    assert "slut" in out
    home.wait_for("everything", lambda: len(home.inbox()) >= 8, timeout=30)
    inbox = home.inbox()
    by_text = texts(inbox)
    late = by_text["ØVELSE: Varmestuen på rådhuset er åben"]
    assert by_text["Rigtig besked: vandværket melder driftsstop"]["id"] == real
    assert by_text["Rigtig besked: vandværket melder driftsstop"]["status"] == "actual"
    assert went_first(staff, by_text["Rigtig besked: vandværket melder driftsstop"], late)
    assert late["status"] == "exercise"
    typed_in = by_text["Husk at tanke generatoren"]
    assert typed_in["status"] == "exercise"
    assert went_first(staff, by_text["Rigtig besked: vandværket melder driftsstop"], typed_in)

    # the end restored the links: no banner, and the next message takes "internet" again
    assert home.get("/v1/exercise")["banner"] is None and staff.get("/v1/exercise")["banner"] is None
    staff.wait_for("internet to Solbakken up again", lambda: link_state(staff, "internet", home) == "up")
    assert not any(row["simulated"] for row in home.get("/v1/links")["links"])
    after = staff.send(home.node_id, "text", "Efter øvelsen")
    home.wait_for("the message after", lambda: any(m["id"] == after for m in home.inbox()))
    assert next(m for m in home.inbox() if m["id"] == after)["via"] == "internet"

    # the journal has it all: eight injects sent, two outages lifted by the end, the CLI's timeline
    view = staff.get("/v1/exercise?id=" + staff.get("/v1/exercise")["exercises"][0]["id"])
    injects = [i for i in view["timeline"] if i["type"] == "inject"]
    assert len(injects) == 8 and view["shown"]["state"] == "ended"
    staff.cli(
        "exercise", "note", "Solbakken svarede hurtigt", "--by", "observatør", "--id", view["shown"]["id"]
    )
    status = staff.cli("exercise", "status", "--id", view["shown"]["id"])
    assert "Solbakken svarede hurtigt" in status
    assert "forløb Øvelsen kører" in status and " phase " not in status  # Danish for people

    # the exercise messages the care home got, each acknowledged end to end at the coordinator (its API)
    sent = [m["id"] for m in home.inbox() if m["status"] == "exercise" and m["from"] == staff.node_id]
    staff.wait_for(
        "every exercise message acknowledged",
        lambda: all(staff.message(i)["end_to_end_acked"] for i in sent),
    )

    # the after-action report from the coordinator's folder: beside the running hub, which holds its store,
    # the command stops at once and says how to get the report; stopped, the report is made
    report_dir = tmp_path / "evaluering"
    command = [*BEREDT, "exercise", "report", "--config", str(staff.config_path), view["shown"]["id"]]
    held = subprocess.run([*command, "--out", str(report_dir)], capture_output=True, text=True, cwd=REPO,
                          timeout=300)  # fmt: skip
    assert held.returncode != 0 and "Traceback" not in held.stderr, held.stderr
    assert "er låst af den kørende hub" in held.stderr and "stop hubben først" in held.stderr
    assert f"/console/api/exercise-report/{view['shown']['id']}/rapport.html" in held.stderr
    assert not report_dir.exists()
    assert staff.stop() == 0
    staff.cli("exercise", "report", view["shown"]["id"], "--out", str(report_dir), timeout=300)

    # its messages are the store's exercise messages (the real one left out), each delivered as the store
    # recorded it
    store = sqlite3.connect(staff.dir / "data" / "store.db")
    vault = FrameVault(DataKeys(staff.dir / "data" / KEY_FOLDER), Retention())

    def exercise_messages() -> dict[str, float | None]:
        found: dict[str, float | None] = {}
        for i, stored, acked, key_id in store.execute(
            "SELECT id, wire, e2e_acked_at, key_id FROM messages WHERE local = 1 AND kind IN (1, 4)"
        ):
            opened = vault.open(bytes(i), key_id, bytes(stored))
            assert opened is not None
            if decode_frame(opened).status is Status.EXERCISE:
                found[bytes(i).hex()] = acked
        return found

    with (report_dir / "csv" / "beskeder.csv").open(encoding="utf-8-sig", newline="") as table:
        reported = {row["id"]: row for row in csv.DictReader(table)}
    recorded = exercise_messages()
    assert set(reported) == set(recorded) and len(recorded) == 7  # six injected, one typed during it
    accepted = dict(store.execute("SELECT hex(id), accepted_at FROM messages WHERE local = 1"))
    for message_id, acked in recorded.items():
        assert acked is not None
        delay = str(round(acked - accepted[message_id.upper()]))
        assert reported[message_id]["leveringstid_s"] == delay
    assert {row["forbindelse"] for row in reported.values()} <= {"internet", "reserve"}
    assert "ledet fra Kommune ·" in (report_dir / "rapport.html").read_text(encoding="utf-8")
    pages = subprocess.run(
        ["pdftoppm", "-r", "30", "-png", str(report_dir / "rapport.pdf"), str(tmp_path / "side")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert pages.returncode == 0 and len(list(tmp_path.glob("side-*.png"))) >= 3
