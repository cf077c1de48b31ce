"""The sample exercise runs on ``beredt demo`` as it is: the demo's five real hubs and its Mosquitto, the
scenario file of config/exercises/power-outage.toml started with the command the demo prints. Its names
resolve (the care homes' group, Plejehjemmet Solbakken), and its simulated outage of Solbakken's internet
makes that home's traffic fail over to MQTT for real while the other homes stay on the internet. Only
the outage's start is moved from five minutes to a few seconds, so the test need not wait."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from hub.api import local
from hub.cli.demo import HOMES, SAMPLE_EXERCISE
from tests.cli.test_demo import _read_until
from tests.hubproc import BEREDT, REPO

SOLBAKKEN = HOMES.index("Plejehjemmet Solbakken") + 1
"""Its number in the demo's file names (plejehjem2.toml)."""


def api(socket: Path, method: str, path: str, body: Any = None) -> Any:
    status, answer = local.request(socket, method, path, body)
    assert status < 300, answer
    return answer


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
                          text=True, cwd=REPO) as demo:  # fmt: skip
        assert demo.stdin is not None and demo.stdout is not None
        try:
            lines = _read_until(demo.stdout, "Skriv i", demo)
            assert any("MQTT gennem Mosquitto" in line for line in lines), lines
            (hint,) = [line for line in lines if line.startswith("Øvelse: ")]
            command = hint.removeprefix("Øvelse: ").split(" (")[0].split()
            assert command[:4] == ["beredt", "exercise", "start", SAMPLE_EXERCISE]
            sample = (REPO / SAMPLE_EXERCISE).read_text(encoding="utf-8")
            assert sample.count('at = "5m"') == 1
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
            demo.stdin.write("q\n")
            demo.stdin.flush()
            assert demo.wait(60) == 0
        finally:
            if demo.poll() is None:
                demo.kill()
