"""The roll-call archive is kept for its retention, then purged, and the log book says so."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from hub.console.logbook import EntryType
from hub.console.options import ConsoleOptions
from hub.core.frame import Priority
from tests.console.conftest import Pair
from tests.inproc import eventually


@pytest.fixture
def console_options() -> ConsoleOptions:
    # a week's retention, the archive checked at every tick
    return ConsoleOptions(tick_interval=0.1, rollcall_retention=7 * 86400, archive_purge_interval=0.1)


async def answered_and_closed(pair: Pair) -> str:
    staff, care = pair.staff.console, pair.care.console
    request = await staff.start_rollcall("Meld status", 30, [], author="hansen")
    await eventually(lambda: care.open_rollcall() is not None, timeout=30)
    await care.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")
    await eventually(lambda: request not in {c["request"] for c in staff.rollcalls.summary()}, timeout=30)
    return request


async def test_closed_roll_calls_past_the_retention_are_purged_and_logged(pair: Pair) -> None:
    staff = pair.staff.console
    old = await answered_and_closed(pair)
    db = pair.staff.hub.config.data_dir / "console.db"
    with sqlite3.connect(db) as raw:  # eight days pass for the first roll-call
        raw.execute("UPDATE rollcalls SET closed_at = closed_at - 8 * 86400 WHERE request = ?", (old,))
    recent = await answered_and_closed(pair)

    def rows(table: str, request: str) -> int:
        with sqlite3.connect(db) as raw:
            (count,) = raw.execute(f"SELECT count(*) FROM {table} WHERE request = ?", (request,)).fetchone()
            return int(count)

    await eventually(lambda: rows("rollcalls", old) == 0, timeout=30)
    assert rows("rollcall_targets", old) == 0
    assert rows("rollcalls", recent) == 1 and rows("rollcall_targets", recent) == 1
    assert [c["request"] for c in await staff.rollcall_view(10)] == [recent]
    # the purge's log-book entry is appended after its rows are gone: wait for it, not for a moment
    logged = "1 afsluttede statusrunder slettet fra arkivet (opbevares 7 døgn)"
    deadline = asyncio.get_running_loop().time() + 30
    while logged not in [e.text for e in await staff.logbook.entries() if e.type is EntryType.NOTE]:
        assert asyncio.get_running_loop().time() < deadline, "the purge was not logged"
        await asyncio.sleep(0.05)
