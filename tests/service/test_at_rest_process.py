"""Personal data at rest on real ``beredt run`` processes: copies of a hub's database files, taken while it
runs and after it stopped, hold neither the name nor the CPR number of the person its messages were about,
sealed or public; the hub itself still shows every message, also after a restart."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.console.logbook_chain import KEY_FILE, PLAIN_UNTIL_FILE, SENT_FILE
from tests.console.test_hub_process import Browser, add_user
from tests.hubproc import HubProcess, staff_and_care_home

NAME, CPR = "Vinterberg", "170345-1234"
PUBLIC_NAME, PUBLIC_CPR = "Bisgaard", "010160-4321"
PERSONAL = [NAME, CPR, CPR.replace("-", ""), PUBLIC_NAME, PUBLIC_CPR]


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff, home = staff_and_care_home(tmp_path, "Plejecenter Lindely")
    add_user(staff, "hansen", "coordinator")
    add_user(home, "lindely", "institution", "--institution", home.node_id)
    staff.start(timeout=120)
    home.start()
    try:
        yield staff, home
    finally:
        staff.kill()
        home.kill()


def copy_databases(hub: HubProcess, to: Path) -> list[Path]:
    to.mkdir(parents=True)
    copies = []
    for path in sorted((hub.dir / "data").glob("*.db*")):
        copies.append(Path(shutil.copy2(path, to / path.name)))
    return copies


def assert_nothing_personal(copies: list[Path]) -> None:
    """Neither the raw bytes (free pages and WAL included) nor what SQLite reads from the copies."""
    assert any(p.name == "store.db" for p in copies) and any(p.name == "console.db" for p in copies)
    for copy in copies:
        raw = copy.read_bytes()
        for word in PERSONAL:
            assert word.encode() not in raw, f"{word} in {copy.name}"
    for copy in copies:
        if copy.suffix != ".db":
            continue
        with sqlite3.connect(copy) as db:  # reads the copied WAL too
            dump = "\n".join(db.iterdump())
        db.close()
        for word in PERSONAL:
            assert word not in dump, f"{word} in what SQLite reads from {copy.name}"


def found(hub: HubProcess, term: str) -> list[dict[str, Any]]:
    """What ``beredt data search`` finds about ``term``."""
    findings: list[dict[str, Any]] = json.loads(hub.cli("data", "search", term, "--json"))
    return findings


def bodies(hub: HubProcess, ids: list[str]) -> str:
    return " ".join(str(hub.message(i)["body"]) for i in ids)


@pytest.mark.timeout(400)  # two hubs, a stop and a restart on a loaded 2-core machine
def test_copied_database_files_hold_nothing_personal_and_the_hub_still_shows_it(
    hubs: tuple[HubProcess, HubProcess], tmp_path: Path
) -> None:
    staff, home = hubs
    ids = [
        home.send(staff.node_id, "text", f"Karen {NAME}, CPR {CPR}, mangler ilt"),
        home.send(staff.node_id, "text", f"Jens {PUBLIC_NAME} ({PUBLIC_CPR}) er flyttet", public=True),
        home.send(staff.node_id, "status", {"facility": "Compromised", "text": f"{NAME} på iltkoncentrator"}),
        staff.send(home.node_id, "text", f"Hent {NAME} ({CPR.replace('-', '')}) kl. 14", public=True),
    ]
    # what people type into the consoles: a text and a roll-call's question from the staff, and the care
    # home's status button with a text (kept in the sent views, the roll-call archive and the board)
    coordinator, institution = Browser(staff), Browser(home)
    coordinator.login("hansen")
    institution.login("lindely")
    status, answer = coordinator.call(
        "POST", "messages", {"kind": "text", "to": home.node_id, "body": f"Hent {NAME} ({CPR}) kl. 15"}
    )
    assert status == 202, answer
    ids += answer["ids"]
    status, answer = coordinator.call("POST", "rollcalls", {"question": f"Er {NAME} flyttet?"})
    assert status == 202, answer
    status, answer = institution.call("POST", "status", {"preset": "help", "text": f"{NAME} mangler ilt"})
    assert status == 202, answer
    ids.append(answer["id"])
    staff.wait_for("the care home's messages", lambda: set(ids[:3]) <= {m["id"] for m in staff.inbox()})
    home.wait_for("the staff's message", lambda: ids[3] in {m["id"] for m in home.inbox()})
    home.wait_for("the console's text", lambda: ids[4] in {m["id"] for m in home.inbox()})
    staff.wait_for("the status button's status", lambda: ids[5] in {m["id"] for m in staff.inbox()})
    home.wait_for("the roll-call", lambda: any("flyttet" in str(m["body"]) for m in home.inbox()))
    shown = bodies(staff, ids[:3])
    assert NAME in shown and CPR in shown and PUBLIC_NAME in shown and PUBLIC_CPR in shown

    assert_nothing_personal(copy_databases(staff, tmp_path / "running-staff"))
    assert_nothing_personal(copy_databases(home, tmp_path / "running-home"))
    assert staff.stop() == 0 and home.stop() == 0
    assert_nothing_personal(copy_databases(staff, tmp_path / "stopped-staff"))
    assert_nothing_personal(copy_databases(home, tmp_path / "stopped-home"))

    staff.start(timeout=120)
    assert bodies(staff, ids[:3]) == shown
    keys = sorted((staff.dir / "data" / "at-rest-keys").iterdir())
    assert keys and all(k.stat().st_mode & 0o077 == 0 for k in keys)


@pytest.mark.timeout(400)  # two hubs and a restart on a loaded 2-core machine
def test_a_hub_erases_what_is_past_its_retention_as_it_starts(
    hubs: tuple[HubProcess, HubProcess], tmp_path: Path
) -> None:
    staff, home = hubs
    sent = home.send(staff.node_id, "text", f"Karen {NAME}, CPR {CPR}")
    staff.wait_for("the care home's message", lambda: sent in {m["id"] for m in staff.inbox()})
    coordinator = Browser(staff)
    coordinator.login("hansen")
    status, answer = coordinator.call(
        "POST", "messages", {"kind": "text", "to": home.node_id, "body": f"Hent {NAME} kl. 14"}
    )
    assert status == 202, answer
    assert {"message", "sent"} <= {f["place"] for f in found(staff, NAME)}  # the console's sent view too
    keys = staff.dir / "data" / "at-rest-keys"
    book_files = {KEY_FILE, PLAIN_UNTIL_FILE, SENT_FILE}
    day_keys = {k.name for k in keys.iterdir()} - book_files
    assert day_keys
    assert staff.stop() == 0
    staff.env["BEREDT_TEST_CLOCK_OFFSET"] = str(62 * 86400)  # two months on: past the 60 days of retention
    staff.start(timeout=120)
    staff.wait_for("the retention purge", lambda: "retention ended" in staff.log_tail(200), timeout=60)
    assert staff.request("GET", f"/v1/messages/{sent}")[0] == 404
    # the console's sent view lets go of what it sent that day too: nothing names her any more
    staff.wait_for("the sent view's purge", lambda: "the sent view forgot" in staff.log_tail(200), timeout=60)
    assert found(staff, NAME) == []
    # every day key of that day is gone (the sent view, saved again, is sealed under today's); the log
    # book's chain key and its records stay (no personal data in them, and without the key the book could
    # no longer be verified)
    held = {k.name for k in keys.iterdir()}
    assert not held & day_keys and KEY_FILE in held
    # the care home's message and whatever the hub itself had queued that day (a roster announcement)
    assert re.search(
        r"retention ended: erased [1-9]\d* stored messages, destroyed day keys", staff.log_tail(200)
    )
