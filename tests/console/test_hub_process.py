"""The console on real ``beredt run`` processes: a roll-call answered over the internet link, and a log book
that survives a SIGKILL intact, with the entry of a received message it still held written at the start."""

from __future__ import annotations

import http.cookiejar
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hubproc import REPO, HubProcess, staff_and_care_home

PASSWORD = "korrekt-hest-batteri"


class Browser:
    """Cookies and the CSRF header, over plain urllib like any small script would."""

    def __init__(self, hub: HubProcess) -> None:
        self.base = f"http://127.0.0.1:{hub.api_port}/console/api/"
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.csrf = ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "X-CSRF-Token": self.csrf}
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def login(self, username: str) -> None:
        status, body = self.call("POST", "login", {"username": username, "password": PASSWORD})
        assert status == 200, body
        self.csrf = body["csrf"]


def add_user(hub: HubProcess, username: str, role: str, *extra: str) -> None:
    command = [sys.executable, "-m", "hub.cli", "--config", str(hub.config_path), "user", "add",
               username, "--role", role, "--password-stdin", *extra]  # fmt: skip
    subprocess.run(
        command, input=PASSWORD + "\n", text=True, check=True, capture_output=True, cwd=REPO, timeout=60
    )


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff, care = staff_and_care_home(tmp_path, "Plejecenter Lindely")
    add_user(staff, "hansen", "coordinator")
    add_user(care, "lindely", "institution", "--institution", care.node_id)
    staff.start()
    care.start()
    try:
        yield staff, care
    finally:
        staff.kill()
        care.kill()


def test_roll_call_over_the_internet_link_and_log_book_after_sigkill(
    hubs: tuple[HubProcess, HubProcess],
) -> None:
    staff, care = hubs
    coordinator, institution = Browser(staff), Browser(care)
    coordinator.login("hansen")
    institution.login("lindely")
    status, started = coordinator.call("POST", "rollcalls", {"question": "Meld status", "minutes": 30})
    assert status == 202, started
    care.wait_for(
        "the roll-call", lambda: institution.call("GET", "messages")[1]["open_rollcall"] is not None
    )
    status, sent = institution.call(
        "POST", "status", {"preset": "help", "power": "generator", "fuel_hours": 8}
    )
    assert status == 202, sent

    def answered() -> bool:
        calls = coordinator.call("GET", "rollcalls")[1]["rollcalls"]
        return bool(calls) and calls[0]["targets"][0]["state"] == "answered"

    staff.wait_for("the answer on the board", answered)
    target = coordinator.call("GET", "rollcalls")[1]["rollcalls"][0]["targets"][0]
    assert target["answer"]["link"] == "internet" and target["answer"]["body"]["fuel_hours"] == 8

    before = coordinator.call("GET", "logbook")[1]
    # the answer's entry is held (written within [logbook] received_hold_seconds, 60 s by default), unless
    # an entry of the hub's own (a link that changed) was written meanwhile and took it along
    held = not [e for e in before["entries"] if e["type"] == "received"]
    staff.restart()  # SIGKILL, then start again
    coordinator = Browser(staff)
    coordinator.login("hansen")
    after = coordinator.call("GET", "logbook")[1]
    assert after["broken"] is None
    assert after["entries"][-len(before["entries"]) :] == before["entries"]  # newest first
    # ... and the crash lost it: the start wrote it, once, saying so
    (caught,) = [e for e in after["entries"] if e["type"] == "received"]
    assert "fra Plejecenter Lindely" in caught["text"]
    assert caught["text"].endswith("(ført ind ved genstart)") == held
    staff.restart()
    coordinator = Browser(staff)
    coordinator.login("hansen")
    again = coordinator.call("GET", "logbook")[1]["entries"]
    assert [e for e in again if e["type"] == "received"] == [caught]  # not written a second time
    # the board comes back from durable state: the care home's last status and when it was heard
    (row,) = coordinator.call("GET", "board")[1]["institutions"]
    assert row["status"]["fuel_hours"] == 8 and row["last_heard"] is not None
