"""The console picks up after a restart: roll-calls in flight, answers given, instructions confirmed."""

from __future__ import annotations

import sqlite3

from hub.console.logbook import EntryType
from hub.console.service import Console
from hub.core.frame import Kind, Priority
from tests.console.conftest import Pair
from tests.inproc import eventually


async def test_roll_call_state_survives_a_console_restart(pair: Pair) -> None:
    staff, care = pair.staff.console, pair.care.console
    request = await staff.start_rollcall("Meld status", 30, [], author="hansen")
    await eventually(lambda: care.open_rollcall() is not None)
    alert = {"event": "Strømsvigt", "urgency": "Immediate", "severity": "Severe", "certainty": "Observed"}
    sent = await staff.send(Kind.ALERT, pair.care.hub.node_id, alert, author="hansen")
    await eventually(lambda: any(m["id"] == sent for m in care.messages))
    await care.confirm_read(sent, author="lindely", by="Nattevagt")
    await care.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")
    await eventually(lambda: staff.rollcalls.summary()[0]["counts"]["answered"] == 1)

    again = await Console.open(pair.staff.hub, staff.options)
    try:
        (call,) = again.rollcalls.summary()
        assert call["request"] == request and call["targets"][0]["state"] == "answered"
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
    with sqlite3.connect(db) as raw:
        raw.execute("INSERT OR REPLACE INTO console_state VALUES ('rollcalls', '[{\"request\": 1}]')")
    again = await Console.open(pair.staff.hub, pair.staff.console.options)
    try:
        assert again.rollcalls.summary() == []
        # the running console may log link changes meanwhile: look for the omission, not at the last line
        omissions = [e.text for e in await again.logbook.entries() if e.type is EntryType.OMISSION]
        assert any("kunne ikke genskabes" in text for text in omissions), omissions
    finally:
        await again.aclose()
