"""The link changes the after-action report reads keep the reason's code, so the report words it in
Danish; a table from before the code was kept gains the columns at the next change, and its old rows
still read (their reason then says where the details are)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from hub.console import link_history
from hub.exercise.report.collect import _link_events
from hub.relay.events import LinkHealthChanged
from hub.relay.link_reasons import Reason, Why

OLD_SCHEMA = """
CREATE TABLE link_changes (time REAL NOT NULL, link TEXT NOT NULL, peer TEXT, old TEXT NOT NULL,
                           new TEXT NOT NULL, reason TEXT NOT NULL);
INSERT INTO link_changes VALUES (10, 'lora', NULL, 'up', 'down', 'send failed: timeout');
"""


async def test_an_older_table_gains_the_code_and_the_report_words_it_in_danish(tmp_path: Path) -> None:
    path = tmp_path / "console.db"
    with sqlite3.connect(path) as old:
        old.executescript(OLD_SCHEMA)
    reason = Reason(Why.PROBE_SILENT, "aiohttp: Cannot connect", {"seconds": "5"})
    change = LinkHealthChanged("lora", "00112233aabbccdd", "down", "up", reason)
    async with aiosqlite.connect(path) as db:
        await link_history.record(db, 20.0, change)
    with sqlite3.connect(path) as db:
        events = _link_events(db, 0, 30, lambda peer: f"Plejecenter {peer[:4]}")
    assert [(e.at, e.peer, e.text, e.reason) for e in events] == [
        (10, None, "oppe → nede", "detaljer i hubbens log"),
        (20, "Plejecenter 0011", "nede → oppe", "intet svar på prøve inden for 5 s"),
    ]


async def test_a_new_table_keeps_the_code_from_the_first_change(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "console.db") as db:
        await link_history.record(
            db, 5.0, LinkHealthChanged("net", None, "up", "down", Reason(Why.LINK_DOWN))
        )
    with sqlite3.connect(tmp_path / "console.db") as db:
        (event,) = _link_events(db, 0, 10, str)
    assert event.reason == "forbindelsen meldt nede"
