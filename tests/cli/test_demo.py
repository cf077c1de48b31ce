"""'beredt demo': five real hubs that talk, consoles that log in, an internet that can be cut so traffic
moves to MQTT (a real Mosquitto the demo starts), a relay that can be cut and restored, and nothing left
running after 'q'."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from hub.api import local
from hub.cli.demo import PASSWORD
from tests.hubproc import BEREDT, REPO, wait_for_internet_up


def _login(url: str, user: str) -> int:
    request = urllib.request.Request(url.replace("/console/", "/console/api/login"), method="POST",
                                     data=json.dumps({"username": user, "password": PASSWORD}).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=15) as response:
        return int(response.status)


def _say(demo: subprocess.Popen[str], command: str) -> str:
    assert demo.stdin is not None and demo.stdout is not None
    demo.stdin.write(command + "\n")
    demo.stdin.flush()
    return demo.stdout.readline().strip()


def _delivered_over(socket: Path, to: str, text: str) -> str:
    """Send from the staff hub; the link its end-to-end-acknowledged message left on."""
    status, answer = local.request(socket, "POST", "/v1/messages", {"to": to, "body": text})
    assert status == 202, answer
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, state = local.request(socket, "GET", f"/v1/messages/{answer['id']}")
        if state["end_to_end_acked"] and state["hops"][0]["link"]:
            return str(state["hops"][0]["link"])
        time.sleep(0.2)
    raise AssertionError(f"not delivered: {state}")


def _links(socket: Path) -> list[dict[str, Any]]:
    _, answer = local.request(socket, "GET", "/v1/links")
    links: list[dict[str, Any]] = answer["links"]
    return links


def _read_until(stdout: IO[str], prefix: str, demo: subprocess.Popen[str]) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while not any(line.startswith(prefix) for line in lines):
        assert time.monotonic() < deadline and demo.poll() is None, lines
        lines.append(stdout.readline())
    return lines


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """The demo's folder; whatever still runs from it after the test (a failed one) is killed, so the
    demo's hubs and broker never stay behind for the rest of the suite."""
    folder = tmp_path / "demo"
    yield folder
    subprocess.run(["pkill", "-KILL", "-f", str(folder)], check=False)


@pytest.mark.timeout(400)  # five hubs and a broker on a loaded 2-core machine
def test_demo_fails_over_from_internet_to_mqtt_and_cuts_the_relay(folder: Path) -> None:
    with subprocess.Popen([*BEREDT, "demo", "--dir", str(folder), "--port", "0"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, cwd=REPO) as demo:  # fmt: skip
        assert demo.stdin is not None and demo.stdout is not None
        try:
            lines = _read_until(demo.stdout, "Skriv i", demo)
            assert any("MQTT gennem Mosquitto" in line for line in lines), lines
            consoles = [line.split() for line in lines if "/console/" in line]
            assert len(consoles) == 4  # the staff hub and three care homes
            for words in consoles:
                assert _login(words[-3], words[-1]) == 200
            staff = folder / "kommune-data" / local.SOCKET_NAME
            shown = subprocess.run([*BEREDT, "id", "-c", str(folder / "plejehjem1.toml")],
                                   capture_output=True, text=True, cwd=REPO, check=True)  # fmt: skip
            home = shown.stdout.split()[0]  # 'beredt id' prints the node id, then the card
            wait_for_internet_up(folder)
            assert _delivered_over(staff, home, "Før afbrydelsen") == "internet"

            assert _say(demo, "i") == "internettet er afbrudt: beskederne går nu over MQTT"
            assert _delivered_over(staff, home, "Under afbrydelsen") == "mqtt"
            assert any(r["link"] == "internet" and r["state"] == "down" for r in _links(staff))

            assert _say(demo, "i") == "internettet er tilbage"
            assert _say(demo, "r") == "relæet er afbrudt"
            assert _say(demo, "r") == "relæet kører igen"
            demo.stdin.write("q\n")
            demo.stdin.flush()
            assert demo.wait(60) == 0
        finally:
            if demo.poll() is None:
                demo.kill()
    leftover = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, text=True)
    assert leftover.stdout == "", "hubs or the broker still running after 'q'"


@pytest.mark.timeout(400)
def test_demo_stopped_with_sigterm_takes_its_hubs_and_broker_along(folder: Path) -> None:
    with subprocess.Popen([*BEREDT, "demo", "--dir", str(folder), "--port", "0"],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True, cwd=REPO) as demo:  # fmt: skip
        assert demo.stdout is not None
        try:
            _read_until(demo.stdout, "Skriv i", demo)
            demo.terminate()
            assert demo.wait(90) == 0
        finally:
            if demo.poll() is None:
                demo.kill()
    leftover = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, text=True)
    assert leftover.stdout == "", "hubs or the broker still running after SIGTERM"
