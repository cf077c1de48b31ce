"""What staff type into the log book stays out of the append-only book, on a real ``beredt run``.

The book records who wrote what kind of entry and a salted digest of the text; the text itself is kept
beside it, shown by the console and the exports while it is held, and can be erased without breaking
the chain.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.test_hub_process import Browser, add_user
from tests.hubproc import HubProcess

pytestmark = pytest.mark.timeout(300)

NOTE = "Borger Jens Hansen, Østergade 4, faldet og har brug for ilt"


@pytest.fixture
def staff(tmp_path: Path) -> Iterator[HubProcess]:
    hub = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff")
    add_user(hub, "hansen", "coordinator")
    add_user(hub, "tilskuer", "viewer")
    hub.start(timeout=120)
    try:
        yield hub
    finally:
        hub.kill()


def fetch(browser: Browser, path: str) -> str:
    """A console export as the browser downloads it."""
    with browser.opener.open(browser.base + path, timeout=15) as response:
        return str(response.read().decode())


def test_a_typed_note_is_kept_beside_the_book_and_can_be_erased(staff: HubProcess) -> None:
    coordinator = Browser(staff)
    coordinator.login("hansen")
    status, _ = coordinator.call("POST", "logbook", {"type": "decision", "text": NOTE})
    assert status == 201
    entry = coordinator.call("GET", "logbook")[1]["entries"][0]
    assert entry["type"] == "decision" and entry["author"] == "hansen"
    assert entry["note"] == NOTE  # the coordinator still reads what was written
    assert "Hansen" not in entry["text"] and entry["text"].startswith("tekst ")
    assert f"({len(NOTE)} tegn)" in entry["text"]

    database = staff.dir / "data" / "console.db"
    with sqlite3.connect(database) as db:
        book = " ".join(row[0] for row in db.execute("SELECT text FROM logbook"))
    assert "Hansen" not in book and "Østergade" not in book
    # the text kept beside the book is sealed under a day key outside the database: a copied
    # console.db (with its WAL) reads nothing of it
    copied = b"".join(p.read_bytes() for p in database.parent.glob("console.db*"))
    assert b"Hansen" not in copied and "Østergade".encode() not in copied

    exported = staff.cli("log", "export", "--format", "csv")
    assert NOTE in exported  # the export shows the text while it is held

    # a viewer reads the book and exports it, without the staff's texts, and is told so
    viewer = Browser(staff)
    viewer.login("tilskuer")
    seen = next(e for e in viewer.call("GET", "logbook")[1]["entries"] if e["seq"] == entry["seq"])
    assert seen["note"] is None and seen["text"] == entry["text"]
    for reader, shows in ((coordinator, True), (viewer, False)):
        report, table = fetch(reader, "logbook.html"), fetch(reader, "logbook.csv")
        assert (NOTE in report) is shows and (NOTE in table) is shows
        assert ("kan indeholde personoplysninger" in report) is shows
        assert ("din rolle må ikke se personoplysninger" in report) is not shows

    # a data subject's request finds the text typed into the book and erases it: the chain still holds,
    # the entry stays, its words are gone
    (finding,) = json.loads(staff.cli("data", "search", "jens hansen", "--json"))
    assert finding["place"] == "logbook" and finding["id"] == str(entry["seq"]) and finding["content"] == NOTE
    assert "logbog" in staff.cli("data", "search", "Østergade")
    out = staff.cli("data", "erase", "Jens Hansen", "--yes", "--by", "hansen")
    assert "1 logbogstekster" in out, out
    assert json.loads(staff.cli("data", "search", "Jens Hansen", "--json")) == []
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT COUNT(*) FROM note_texts").fetchone() == (0,)
    assert staff.cli("log", "verify").startswith("intakt")
    after = coordinator.call("GET", "logbook")[1]
    assert after["broken"] is None
    erased = next(e for e in after["entries"] if e["seq"] == entry["seq"])
    assert erased["note"] is None and erased["text"] == entry["text"]
    report = staff.cli("log", "export", "--format", "html")
    assert "(teksten er slettet)" in report and "Hansen" not in report
