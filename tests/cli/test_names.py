"""Any name a coordinator types survives the files Beredt writes: quotes, a newline and æøå.

The config (``beredt init``), the identity key file and the roster are written by a TOML library, so a
name is escaped, never pasted into the file. Each file is read back the way the hub reads it, and the
hubs are started with ``beredt run``.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from drill.topology import free_port
from hub.core.errors import ConfigError
from hub.core.identity import Identity
from hub.relay.roster import Roster
from hub.service import config as config_module
from tests.hubproc import BEREDT, REPO

NAME = 'Plejecenter "Solbakken"\nÆblehaven på Øen'


def beredt(*args: str) -> str:
    result = subprocess.run([*BEREDT, *args], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def init(path: Path, name: str, role: str) -> tuple[int, str]:
    api_port = free_port()
    beredt("init", "--config", str(path), "--name", name, "--role", role,
           "--api-port", str(api_port), "--link-port", str(free_port()))  # fmt: skip
    return api_port, beredt("id", "--config", str(path), "--card-only").strip()


def healthz(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"beredt run exited with {process.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                answer: dict[str, Any] = json.loads(response.read())
            if answer["ok"]:
                return answer
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the hub did not become ready")


def test_a_name_with_quotes_a_newline_and_danish_letters_round_trips(tmp_path: Path) -> None:
    home_port, home_card = init(tmp_path / "home.toml", NAME, "care-home")
    staff_port, staff_card = init(tmp_path / "staff.toml", "Krisestab Æbeltoft", "staff")
    beredt("roster", "add", "--config", str(tmp_path / "staff.toml"), home_card)
    beredt("roster", "add", "--config", str(tmp_path / "home.toml"), staff_card)

    home = config_module.load(tmp_path / "home.toml")
    staff = config_module.load(tmp_path / "staff.toml")
    assert home.name == NAME
    assert Identity.load(home.identity_path).name == NAME
    roster = Roster.load(Identity.load(staff.identity_path).card, staff.roster_path)
    assert [entry.card.name for entry in roster if entry.card.name != staff.name] == [NAME]

    processes = [
        subprocess.Popen([*BEREDT, "run", "--config", str(tmp_path / f"{hub}.toml")], cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for hub in ("home", "staff")
    ]  # fmt: skip
    try:
        assert healthz(home_port, processes[0])["name"] == NAME
        assert healthz(staff_port, processes[1])["name"] == "Krisestab Æbeltoft"
    finally:
        for process in processes:
            process.terminate()
            process.wait(20)


def test_a_name_with_a_colon_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "beredt.toml"
    path.write_text('[node]\nname = "Plejecenter: Solbakken"\n')
    with pytest.raises(ConfigError, match="adskiller delene af et nodekort") as caught:
        config_module.load(path)
    assert (caught.value.file, caught.value.key) == (str(path), "node.name")
