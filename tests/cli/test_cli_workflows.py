"""Crisis workflows from the command line alone, as on a headless Pi: roll-call, board, users, log book."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubproc import BEREDT, REPO, HubProcess, staff_and_care_home


@pytest.fixture
def staff_and_home(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff, home = staff_and_care_home(tmp_path, "Plejehjemmet Solgaarden")
    staff.start()
    home.start()
    try:
        yield staff, home
    finally:
        staff.kill()
        home.kill()


def test_rollcall_answered_from_the_cli_shows_on_the_board(
    staff_and_home: tuple[HubProcess, HubProcess],
) -> None:
    staff, home = staff_and_home
    request = staff.cli("rollcall", "start", home.node_id, "--question", "Meld status", "--minutes", "30")
    request_id = request.strip().splitlines()[-1]
    assert len(request_id) == 8

    home.wait_for("the roll-call", lambda: any(m["kind"] == "rollcall" for m in home.inbox()))
    home.cli("send", "status", staff.node_id, "facility=Normal", "power=generator", "fuel_hours=30",
             f"rollcall={request_id}")  # fmt: skip

    def answered() -> bool:
        board = json.loads(_stdout(staff, "board"))
        row = next(r for r in board if r["node"] == home.node_id)
        return row["rollcall"] == "answered" and row["status"]["fuel_hours"] == 30

    staff.wait_for("the answer on the board", answered)
    table = staff.cli("board")
    assert "Plejehjemmet Solgaarden" in table and "answered" in table


def _stdout(hub: HubProcess, *args: str) -> str:
    result = subprocess.run([*BEREDT, args[0], "--config", str(hub.config_path), *args[1:], "--json"],
                            capture_output=True, text=True, cwd=REPO, timeout=60, check=True)  # fmt: skip
    return result.stdout


def test_users_and_log_book_from_the_cli(staff_and_home: tuple[HubProcess, HubProcess]) -> None:
    staff, home = staff_and_home
    added = subprocess.run(
        [*BEREDT, "user", "--config", str(staff.config_path), "add", "hansen", "--role", "coordinator",
         "--password-stdin"],
        input="en lang og god adgangskode\n", capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "hansen" in staff.cli("user", "list")
    staff.send(home.node_id, "text", "Husk at tanke generatoren")
    staff.wait_for(
        "the log book entry",
        lambda: "besked til Plejehjemmet Solgaarden" in staff.cli("log", "export"),
    )
    assert "intact" in staff.cli("log", "verify")
