"""``beredt user`` and ``beredt log``: users and log book checks from the shell, as real subprocesses."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from hub.console.logbook import EntryType, LogBook
from hub.console.users import Users
from hub.core.clock import SystemClock

PASSWORD = "korrekt-hest-batteri"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "beredt.toml"
    path.write_text('[node]\nname = "Aarhus krisestab"\nrole = "staff"\ndata_dir = "data"\n')
    return path


def admin(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub.cli", "--config", str(config), *args],
                          input=stdin, capture_output=True, text=True, timeout=60)  # fmt: skip


def test_add_list_passwd_remove_users(config: Path) -> None:
    added = admin(config, "user", "add", "hansen", "--role", "coordinator", "--name", "Vagtleder Hansen",
                  "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout == "tilføjede hansen (coordinator)\n"
    listed = admin(config, "user", "list")
    assert listed.stdout.splitlines() == ["BRUGER  ROLLE        NAVN              INSTITUTION",
                                          "hansen  coordinator  Vagtleder Hansen"]  # fmt: skip
    as_json = json.loads(admin(config, "user", "list", "--json").stdout)
    assert as_json == [{"username": "hansen", "role": "coordinator", "display_name": "Vagtleder Hansen",
                        "institution": ""}]  # fmt: skip

    async def login(password: str) -> str:
        users = await Users.open(config.parent / "data" / "console.db", SystemClock())
        try:
            return (await users.login("hansen", password)).user.display_name
        finally:
            await users.aclose()

    assert asyncio.run(login(PASSWORD)) == "Vagtleder Hansen"
    assert (
        admin(config, "user", "passwd", "hansen", "--password-stdin", stdin="nyt-kodeord-123\n").returncode
        == 0
    )
    assert asyncio.run(login("nyt-kodeord-123")) == "Vagtleder Hansen"
    assert admin(config, "user", "remove", "hansen").returncode == 0
    assert admin(config, "user", "list").stdout == "(ingen)\n"


def test_bad_input_is_a_clear_error(config: Path, tmp_path: Path) -> None:
    short = admin(config, "user", "add", "hansen", "--role", "viewer", "--password-stdin", stdin="kort\n")
    assert short.returncode == 2 and "adgangskode: brug mindst 10 tegn" in short.stderr
    institution = admin(config, "user", "add", "lindely", "--role", "institution", "--password-stdin",
                        stdin=PASSWORD + "\n")  # fmt: skip
    assert institution.returncode == 2 and "--institution: angiv node-id" in institution.stderr
    no_terminal = admin(config, "user", "add", "ole", "--role", "viewer")  # no tty, no --password-stdin
    assert (
        no_terminal.returncode == 2
        and "ingen terminal at spørge på; brug --password-stdin" in no_terminal.stderr
    )
    assert "Traceback" not in no_terminal.stderr
    missing = admin(tmp_path / "nowhere.toml", "user", "list")
    assert missing.returncode == 2 and "filen findes ikke" in missing.stderr
    anchor = admin(config, "log", "verify", "--anchor", "x")
    assert anchor.returncode == 2 and "--anchor: forventede NR:HASH" in anchor.stderr


def test_logbook_verify_and_export(config: Path) -> None:
    db = config.parent / "data" / "console.db"
    db.parent.mkdir()

    async def write() -> tuple[int, str] | None:
        book = await LogBook.open(db, SystemClock(), "39baf7fa63050926")
        try:
            await book.append(EntryType.DECISION, "Diesel til Lindely først", author="hansen")
            await book.append(EntryType.ACTION, "Tankvogn sendt", author="hansen")
            return await book.head()
        finally:
            await book.aclose()

    head = asyncio.run(write())
    assert head is not None
    ok = admin(config, "log", "verify", "--anchor", f"{head[0]}:{head[1]}")
    assert ok.returncode == 0 and ok.stdout.startswith("intakt: 2 indførsler")
    csv = admin(config, "log", "export")
    assert "Diesel til Lindely først" in csv.stdout and csv.stdout.startswith("seq,time,author")
    assert "<h1>Logbog</h1>" in admin(config, "log", "export", "--format", "html").stdout
    with sqlite3.connect(db) as raw:
        raw.execute("DROP TRIGGER logbook_000000001_no_update")
        raw.execute("UPDATE logbook_000000001 SET text = 'Diesel til Solbakken først' WHERE seq = 1")
    broken = admin(config, "log", "verify")
    assert broken.returncode == 3 and "BRUDT ved indførsel 1" in broken.stderr


def test_help_belongs_to_the_one_command_tree(config: Path) -> None:
    """``user`` and ``log`` are ordinary sub-commands: their help names them and their actions, and ``-c``
    works after the action as for every other command."""
    log_help = admin(config, "log", "--help")
    assert log_help.returncode == 0, log_help.stderr
    assert log_help.stdout.startswith("brug: beredt log ")
    assert "verify" in log_help.stdout and "export" in log_help.stdout
    assert "beredt log verify --anchor" in log_help.stdout and "user add" not in log_help.stdout
    add_help = admin(config, "user", "add", "--help")
    assert add_help.stdout.startswith("brug: beredt user add ") and "--password-stdin" in add_help.stdout
    after = subprocess.run([sys.executable, "-m", "hub.cli", "user", "list", "-c", str(config)],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert after.returncode == 0 and after.stdout == "(ingen)\n", after.stderr
