"""The sample exercise runs on ``beredt demo`` as it is: the demo's five real hubs and its Mosquitto, the
scenario file of config/exercises/power-outage.toml started with the command the demo prints. Its names
resolve (the care homes' group, Plejehjemmet Solbakken), and its simulated outage of Solbakken's internet
makes that home's traffic fail over to MQTT for real while the other homes stay on the internet. Only
the outage's start is moved from five minutes to a few seconds, so the test need not wait."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import signal
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hub.api import local
from hub.cli.demo import HOMES, SAMPLE_EXERCISE
from hub.core.at_rest import KEY_FOLDER, DataKeys, Retention
from hub.core.frame import Kind, Status, decode_frame
from hub.relay.store_at_rest import FrameVault
from tests.cli.test_demo import _read_until
from tests.hubproc import BEREDT, REPO, wait_for_internet_up

SOLBAKKEN = HOMES.index("Plejehjemmet Solbakken") + 1
"""Its number in the demo's file names (plejehjem2.toml)."""
BOOKKEEPING = {Kind.ACK, Kind.HOP_ACK, Kind.ROSTER, Kind.READ_RECEIPT, Kind.EXERCISE_CONTROL,
               Kind.EXERCISE_SUMMARY}  # fmt: skip
"""Frames the hubs make for themselves, not messages a person sent."""


def api(socket: Path, method: str, path: str, body: Any = None) -> Any:
    status, answer = local.request(socket, method, path, body)
    assert status < 300, answer
    return answer


def summaries_at(folder: Path, socket: Path) -> int:
    """How many of the demo's hubs have their EXERCISE_SUMMARY at the running coordinator (its socket): each
    hub's log names the summaries it sent, and the coordinator's API says which it holds (it keeps them out
    of its inbox, and holds its store for itself alone)."""
    node = api(socket, "GET", "/healthz")["node"]
    held = 0
    for log in sorted(folder.glob("*.log")):
        text = log.read_text(encoding="utf-8", errors="replace")
        ids = re.findall(rf"summary of exercise \w+ sent to {node} as ([0-9a-f]{{32}})", text)
        held += any(local.request(socket, "GET", f"/v1/messages/{i}")[0] == 200 for i in ids)
    return held


def links_used(data: Path, since: float, until: float) -> dict[str, tuple[int, int, int]]:
    """Per link, from a stopped hub's own store: how many exercise messages it sent left by that link, their
    sends and bytes (a message's size for each send)."""
    vault = FrameVault(DataKeys(data / KEY_FOLDER), Retention())
    ids: dict[str, set[bytes]] = {}
    sends: dict[str, int] = {}
    sent_bytes: dict[str, int] = {}
    with contextlib.closing(sqlite3.connect(f"file:{data / 'store.db'}?mode=ro", uri=True)) as db:
        for message_id, stored, key_id, size, row in db.execute(
            "SELECT id, wire, key_id, size, row FROM messages"
            " WHERE local = 1 AND accepted_at BETWEEN ? AND ?",
            (since, until),
        ).fetchall():
            wire = vault.open(bytes(message_id), key_id, bytes(stored))
            assert wire is not None
            frame = decode_frame(wire)
            if frame.status is not Status.EXERCISE or frame.kind in BOOKKEEPING:
                continue
            for link, attempts in db.execute(
                "SELECT link, attempts FROM deliveries WHERE message_row = ? AND attempts > 0", (row,)
            ):
                ids.setdefault(link, set()).add(bytes(message_id))
                sends[link] = sends.get(link, 0) + attempts
                sent_bytes[link] = sent_bytes.get(link, 0) + attempts * size
    return {link: (len(ids[link]), sends[link], sent_bytes[link]) for link in ids}


def link_changes(data: Path, since: float, until: float) -> list[tuple[float, str, str, str]]:
    """(time, link, new state, reason code) of every change a hub's console recorded of its links."""
    with contextlib.closing(sqlite3.connect(f"file:{data / 'console.db'}?mode=ro", uri=True)) as db:
        return db.execute(
            "SELECT time, link, new, reason_code FROM link_changes WHERE time BETWEEN ? AND ? ORDER BY time",
            (since, until),
        ).fetchall()


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def wait(what: str, check: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.timeout(500)  # five hubs and a broker on a loaded 2-core machine
def test_the_sample_exercise_fails_a_demo_home_over_to_mqtt(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    with subprocess.Popen([*BEREDT, "demo", "--dir", str(folder), "--port", "0"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, cwd=REPO, start_new_session=True) as demo:  # fmt: skip
        assert demo.stdin is not None and demo.stdout is not None
        try:
            lines = _read_until(demo.stdout, "Skriv i", demo)
            assert any("MQTT gennem Mosquitto" in line for line in lines), lines
            (hint,) = [line for line in lines if line.startswith("Øvelse: ")]
            command = hint.removeprefix("Øvelse: ").split(" (")[0].split()
            assert command[:4] == ["beredt", "exercise", "start", SAMPLE_EXERCISE]
            sample = (REPO / SAMPLE_EXERCISE).read_text(encoding="utf-8")
            assert sample.count('at = "5m"') == 1
            wait_for_internet_up(folder)  # the homes not in the outage must be reached by the internet
            scenario = tmp_path / "power-outage.toml"
            scenario.write_text(sample.replace('at = "5m"', 'at = "3s"'), encoding="utf-8")
            started = subprocess.run([*BEREDT, *command[1:3], str(scenario), *command[4:], "--by", "hansen"],
                                     capture_output=True, text=True, cwd=REPO, timeout=120)  # fmt: skip
            assert started.returncode == 0, started.stderr
            assert "Strømsvigt i tre døgn" in started.stdout

            staff = folder / "kommune-data" / local.SOCKET_NAME
            homes = [folder / f"plejehjem{n}-data" / local.SOCKET_NAME for n in range(1, len(HOMES) + 1)]
            solbakken = homes[SOLBAKKEN - 1]
            for home in homes:  # the first inject reaches every home of the group
                wait(
                    "the first inject", lambda home=home: len(api(home, "GET", "/v1/inbox")["messages"]) >= 1
                )
            wait(
                "Solbakken's internet simulated down",
                lambda: any(
                    r["link"] == "internet" and r["simulated"]
                    for r in api(solbakken, "GET", "/v1/links")["links"]
                ),
            )
            # a message to Solbakken now, and its answer, cross MQTT; another home's still the internet
            node = api(solbakken, "GET", "/healthz")["node"]
            sent = api(
                staff, "POST", "/v1/messages", {"to": node, "body": "Hvordan går det med nødstrømmen?"}
            )
            wait("the message at Solbakken", lambda: any(
                m["id"] == sent["id"] for m in api(solbakken, "GET", "/v1/inbox")["messages"]))  # fmt: skip
            got = next(m for m in api(solbakken, "GET", "/v1/inbox")["messages"] if m["id"] == sent["id"])
            assert got["status"] == "exercise" and got["via"] == "mqtt"
            staff_node = api(staff, "GET", "/healthz")["node"]
            status = {"to": staff_node, "kind": "status", "body": {"facility": "Compromised"}}
            answer = api(solbakken, "POST", "/v1/messages", status)
            wait(
                "the answer delivered",
                lambda: api(solbakken, "GET", f"/v1/messages/{answer['id']}")["end_to_end_acked"],
            )
            hops = api(solbakken, "GET", f"/v1/messages/{answer['id']}")["hops"]
            assert {h["link"] for h in hops if h["state"] == "hop-acked"} == {"mqtt"}
            lindely = api(homes[0], "GET", "/v1/inbox")["messages"]
            assert {m["via"] for m in lindely} == {"internet"}

            ended = subprocess.run([*BEREDT, "exercise", "end", *command[4:], "--by", "hansen"],
                                   capture_output=True, text=True, cwd=REPO, timeout=120)  # fmt: skip
            assert ended.returncode == 0, ended.stderr
            wait("the outage lifted", lambda: not any(
                r["simulated"] for r in api(solbakken, "GET", "/v1/links")["links"]))  # fmt: skip

            # behind the relay, only Solbakken knows its answer left by MQTT: at the end every hub (each
            # home, and the relay, which nobody uses a console on) sends the coordinator its own account,
            # and the report shows it as Solbakken's, with the numbers Solbakken's own store and console
            # recorded
            exercise = api(staff, "GET", "/v1/exercise")["exercises"][0]["id"]
            others = len(HOMES) + 1  # the homes and the relay
            wait("every hub's summary at the coordinator", lambda: summaries_at(folder, staff) == others)
            # the running hubs hold their stores: the report, and the test's own reads, wait for the stop
            demo.stdin.write("q\n")
            demo.stdin.flush()
            assert demo.wait(60) == 0
            out = tmp_path / "rapport"
            report = subprocess.run([*BEREDT, "exercise", "report", exercise, "--out", str(out),
                                     *command[4:]], capture_output=True, text=True, cwd=REPO,
                                    timeout=300)  # fmt: skip
            assert report.returncode == 0, report.stderr
            used = csv_rows(out / "csv" / "meldt_forbrug.csv")
            changes = csv_rows(out / "csv" / "meldte_forbindelser.csv")
            reported = [u for u in used if u["hub"] == "Plejehjemmet Solbakken"]
            since, until = (datetime.fromisoformat(reported[0][k]).timestamp() for k in ("fra", "til"))
            home_dir = folder / f"plejehjem{SOLBAKKEN}-data"
            recorded = links_used(home_dir, since, until)
            assert recorded["mqtt"][0] >= 1  # the answer above
            assert {u["forbindelse"]: (int(u["beskeder"]), int(u["afsendelser"]), int(u["bytes"]))
                    for u in reported} == recorded  # fmt: skip
            home_changes = link_changes(home_dir, since, until)
            assert ("internet", "down", "simulated") in {(c[1], c[2], c[3]) for c in home_changes}
            assert [(int(datetime.fromisoformat(c["tid"]).timestamp()), c["forbindelse"], c["tilstand"])
                    for c in changes if c["hub"] == "Plejehjemmet Solbakken"] == [
                        (int(at), link, new) for at, link, new, _ in home_changes]  # fmt: skip
            page = (out / "rapport.html").read_text(encoding="utf-8")
            assert (
                '<h4>Plejehjemmet Solbakken <span class="detail">(egen opgørelse for' in page
                and "ingen opgørelse modtaget" not in page
            )
        finally:
            # the demo's hubs and Mosquitto are in its process group: a failed test leaves none running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(60)
