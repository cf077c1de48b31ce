"""Crisis workflows from the command line alone, as on a headless Pi: roll-call, board, users, log book."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubproc import BEREDT, REPO, HubProcess, staff_and_care_home


@pytest.fixture
def staff_and_home(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff, home = staff_and_care_home(tmp_path, "Plejehjemmet Solgaarden")
    try:  # a start that times out leaves no hub running for the rest of the run
        staff.start()
        home.start()
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
    calls = staff.cli("rollcall", "list")  # a table with local times, not JSON with Unix times
    assert calls.splitlines()[0].split() == ["STATUSRUNDE", "SPØRGSMÅL", "FRIST", "INSTITUTION", "TILSTAND",
                                             "SVARET"]  # fmt: skip
    assert request_id in calls and "afventer" in calls and "{" not in calls  # states in Danish too
    assert json.loads(_stdout(staff, "rollcall", "list"))[0]["request"] == request_id

    home.wait_for("the roll-call", lambda: any(m["kind"] == "rollcall" for m in home.inbox()))
    home.cli("send", "status", staff.node_id, "facility=Normal", "power=generator", "fuel_hours=30",
             f"rollcall={request_id}")  # fmt: skip

    def answered() -> bool:
        board = json.loads(_stdout(staff, "board"))
        row = next(r for r in board if r["node"] == home.node_id)
        return row["rollcall"] == "answered" and row["status"]["fuel_hours"] == 30

    staff.wait_for("the answer on the board", answered)
    table = staff.cli("board")
    assert "Plejehjemmet Solgaarden" in table and "svaret" in table and "answered" not in table
    links = staff.cli("links")
    assert "oppe" in links and " up " not in links

    # the short id 'inbox' prints is accepted by 'message', which answers in words and local times
    short = next(line.split()[0] for line in staff.cli("inbox").splitlines()[1:] if " status " in line)
    assert len(short) == 12
    shown = staff.cli("message", short)
    assert "slags:      status" in shown and "modtager:" in shown and "{" in shown  # the body stays JSON
    # a recipient by its roster name, as people know it
    printed = staff.cli("send", "text", "Plejehjemmet", "Brændstof kommer kl. 14").splitlines()
    sent = printed[0]
    # accepted by its own hub is not received: 'send' says it is queued and not yet acknowledged
    assert printed[1] == (
        "gemt i denne hub og lagt i kø; modtageren har ikke kvitteret endnu; følg leveringen med:"
        f" beredt message {sent[:12]}"
    )
    home.wait_for("the text", lambda: any(m["body"] == "Brændstof kommer kl. 14" for m in home.inbox()))
    # a sent message by its short id too, as 'send' suggests following it
    shown = staff.cli("message", sent[:12])
    assert f"id:         {sent}" in shown and "Brændstof kommer kl. 14" in shown
    assert "til:        Plejehjemmet Solgaarden" in shown  # the recipient by name, as the sender by name
    # once the hop has acknowledged it, its state reads in Danish too ('done' is the store's word)
    staff.wait_for("the state in words", lambda: "tilstand:   afsluttet" in staff.cli("message", sent[:12]))
    too_short = subprocess.run([*BEREDT, "message", sent[:3], "-c", str(staff.config_path)],
                               capture_output=True, text=True, cwd=REPO, timeout=60)  # fmt: skip
    assert too_short.returncode != 0 and "mindst 4" in too_short.stderr

    # a kind the care home's role may not send: refused by its own hub with the reason, no id printed
    # (-c between the fields: the fields after it are still fields)
    refused = subprocess.run([*BEREDT, "send", "sitrep", staff.node_id, "number=1", "-c",
                              str(home.config_path), "phase=Initial", "summary=Strømsvigt"],
                             capture_output=True, text=True, cwd=REPO, timeout=60)  # fmt: skip
    assert refused.returncode == 1 and refused.stdout == "", refused.stdout
    assert "en institutions hub må ikke sende sitrep-beskeder" in refused.stderr, refused.stderr


def test_a_second_hub_on_the_same_data_folder_is_refused(
    staff_and_home: tuple[HubProcess, HubProcess],
) -> None:
    staff, _ = staff_and_home
    twin = staff.config_path.with_name("twin.toml")
    twin.write_text(staff.config_path.read_text().replace(str(staff.api_port), "1").replace(
        str(staff.link_port), "2"))  # fmt: skip
    refused = subprocess.run([*BEREDT, "run", "-c", str(twin)], capture_output=True, text=True, cwd=REPO,
                             timeout=60)  # fmt: skip
    assert refused.returncode == 2
    assert "en anden beredt run bruger allerede datamappen" in refused.stderr
    data = staff.dir / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("store.db", "console.db", "identity.key"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name


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
    assert "intakt" in staff.cli("log", "verify")
