"""The console picks up after a restart: roll-calls in flight, answers given, instructions confirmed."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

import pytest

from hub.console.logbook import EntryType
from hub.console.options import ConsoleOptions
from hub.console.service import Console
from hub.core.frame import Kind, Priority
from tests.console.conftest import Pair
from tests.console.test_routes import Client, clients  # noqa: F401 (a fixture)
from tests.inproc import eventually


async def test_roll_call_state_survives_a_console_restart(pair: Pair) -> None:
    staff, care = pair.staff.console, pair.care.console
    request = await staff.start_rollcall("Meld status", 30, [], author="hansen")
    await eventually(lambda: care.open_rollcall() is not None)
    in_flight = await Console.open(pair.staff.hub, staff.options)
    try:
        (call,) = in_flight.rollcalls.summary()
        assert call["request"] == request and call["targets"][0]["state"] == "pending"
    finally:
        await in_flight.aclose()
    alert = {"event": "Strømsvigt", "urgency": "Immediate", "severity": "Severe", "certainty": "Observed"}
    sent = await staff.send(Kind.ALERT, pair.care.hub.node_id, alert, author="hansen")
    await eventually(lambda: any(m["id"] == sent for m in care.messages))
    await care.confirm_read(sent, author="lindely", by="Nattevagt")
    await care.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")
    await eventually(lambda: len(staff.rollcalls) == 0, timeout=30)  # answered by all, so closed

    again = await Console.open(pair.staff.hub, staff.options)
    try:
        (call,) = await again.rollcall_view(10)
        assert call["request"] == request and call["targets"][0]["state"] == "answered"
        assert call["closed_at"] is not None
        assert again.board_rows()[0]["rollcall"] == "answered"
    finally:
        await again.aclose()
    care_again = await Console.open(pair.care.hub, care.options)
    try:
        assert care_again.open_rollcall() is None  # answered before the restart: no banner again
        assert sent in care_again.read
    finally:
        await care_again.aclose()


async def test_damaged_saved_state_is_reported_in_the_log_book(pair: Pair) -> None:
    db = pair.staff.hub.config.data_dir / "console.db"
    with sqlite3.connect(db, timeout=30) as raw:  # the running console may be mid-commit
        raw.execute("INSERT OR REPLACE INTO console_state VALUES ('rollcalls', '[{\"request\": 1}]')")
    again = await Console.open(pair.staff.hub, pair.staff.console.options)
    try:
        assert again.rollcalls.summary() == []
        # the running console may log link changes meanwhile: look for the omission, not at the last line
        omissions = [e.text for e in await again.logbook.entries() if e.type is EntryType.OMISSION]
        assert any("kunne ikke genskabes" in text for text in omissions), omissions
    finally:
        await again.aclose()


@pytest.fixture
def console_options() -> ConsoleOptions:
    # the board saved at once, so a restart after the store forgot the messages finds it
    return ConsoleOptions(tick_interval=0.1, board_save_interval=0.1)


async def test_board_comes_back_from_its_rows_after_the_store_forgot_the_messages(pair: Pair) -> None:
    staff, care = pair.staff.console, pair.care.console
    await care.quick_status({"facility": "Normal", "power": "generator", "fuel_hours": 30}, Priority.NORMAL,
                            author="lindely")  # fmt: skip
    node = pair.care.hub.node_id.hex()
    db = pair.staff.hub.config.data_dir / "console.db"

    def saved() -> bool:
        with sqlite3.connect(db, timeout=30) as raw:  # the running console may be mid-commit
            return raw.execute("SELECT count(*) FROM board WHERE node = ?", (node,)).fetchone()[0] == 1

    await eventually(saved, timeout=30)
    # days later: the status expired and was purged from the store
    assert await pair.staff.hub.store.purge(time.time() + 10 * 86400) >= 1
    assert await pair.staff.hub.store.inbox() == []
    again = await Console.open(pair.staff.hub, staff.options)
    try:
        (row,) = again.board_rows()
        assert row["node"] == node and row["status"]["fuel_hours"] == 30
        assert row["last_heard"] is not None and row["last_link"] == "memory"
    finally:
        await again.aclose()


async def test_finished_roll_calls_move_to_the_archive_a_row_at_a_time(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    staff, care = pair.staff.console, pair.care.console
    request = await staff.start_rollcall("Meld status", 30, [], author="hansen")
    await eventually(lambda: care.open_rollcall() is not None, timeout=30)
    await care.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")
    await eventually(lambda: len(staff.rollcalls) == 0, timeout=30)  # answered by all: closed
    db = pair.staff.hub.config.data_dir / "console.db"
    with sqlite3.connect(db, timeout=30) as raw:  # the running console may be mid-commit
        (closed_at,) = raw.execute("SELECT closed_at FROM rollcalls WHERE request = ?", (request,)).fetchone()
        institution, document = raw.execute(
            "SELECT institution, document FROM rollcall_targets WHERE request = ?", (request,)
        ).fetchone()
    assert isinstance(document, bytes), "sealed at rest (hub.core.at_rest.DocumentSealer)"
    assert staff.sealer.open(document, f"rollcall:{request}:{institution}")["state"] == "answered"
    coordinator = clients(pair.staff.url)
    await coordinator.login("hansen")
    (call,) = (await coordinator.ok("GET", "rollcalls"))["rollcalls"]
    assert call["request"] == request and call["closed_at"] == closed_at
    assert call["counts"]["answered"] == 1
    status, data = await coordinator.call("GET", "rollcalls?limit=51")
    assert status == 400 and data["error"].startswith("limit")
    again = await Console.open(pair.staff.hub, staff.options)
    try:
        assert len(again.rollcalls) == 0  # the archive is not loaded at start
    finally:
        await again.aclose()
