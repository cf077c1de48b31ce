"""Status board ranking: worst concern first, then the longest silent."""

from __future__ import annotations

import json

import pytest

from hub.console.board import Concern, Institution, StatusBoard, concern

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("status", "priority", "rollcall", "expected"),
    [
        (None, None, None, Concern.UNKNOWN),
        ({"facility": "Normal"}, "normal", None, Concern.OK),
        ({"facility": "Normal"}, "normal", "answered", Concern.OK),
        ({"facility": "Normal"}, "life-safety", None, Concern.CRITICAL),
        ({"facility": "Evacuating"}, "urgent", None, Concern.CRITICAL),
        ({"facility": "Closed"}, "normal", None, Concern.CRITICAL),
        ({"facility": "Normal"}, "normal", "escalated", Concern.CRITICAL),
        ({"facility": "Normal"}, "normal", "overdue", Concern.HELP),
        ({"facility": "Compromised"}, "urgent", None, Concern.HELP),
        ({"facility": "Normal", "needs": ["water"]}, "normal", None, Concern.HELP),
        ({"facility": "Normal", "staffing": "Insufficient"}, "normal", None, Concern.HELP),
        ({"facility": "Normal", "power": "generator", "fuel_hours": 11}, "normal", None, Concern.HELP),
        ({"facility": "Normal", "power": "generator", "fuel_hours": 12}, "normal", None, Concern.OK),
        ({"facility": "Normal", "power": "mains", "fuel_hours": 0}, "normal", None, Concern.OK),
        ({"facility": "Normal", "residents": {"needing_help": 2}}, "normal", None, Concern.HELP),
    ],
)
def test_concern(
    status: dict[str, object] | None, priority: str | None, rollcall: str | None, expected: Concern
) -> None:
    item = Institution("n", "n", status=status, status_priority=priority, rollcall=rollcall)
    assert concern(item) is expected


def test_rows_sort_by_concern_then_silence() -> None:
    board = StatusBoard()
    board.heard("a", "Alfa OK, hørt for nylig", NOW - 60, "internet", "internet")
    board.status("a", "Alfa OK, hørt for nylig", {"facility": "Normal"}, "normal", NOW - 60)
    board.heard("b", "Bravo OK, tavs længe", NOW - 5 * 3600, "sine", "SINE")
    board.status("b", "Bravo OK, tavs længe", {"facility": "Normal"}, "normal", NOW - 5 * 3600)
    board.know("c", "Charlie aldrig hørt")
    board.heard("d", "Delta nød", NOW - 10, "lora", "LoRa")
    board.status("d", "Delta nød", {"facility": "Compromised"}, "life-safety", NOW - 10)
    board.heard("e", "Echo hjælp", NOW - 30, "mqtt", "MQTT")
    board.status("e", "Echo hjælp", {"facility": "Normal", "needs": ["oxygen"]}, "urgent", NOW - 30)
    rows = json.loads(json.dumps(board.rows(NOW)))
    assert [r["node"] for r in rows] == ["d", "e", "c", "b", "a"]
    bravo = rows[3]
    assert bravo["silent_for"] == 5 * 3600 and bravo["last_link_kind"] == "SINE" and bravo["concern"] == "ok"
    assert rows[2]["last_heard"] is None and rows[2]["silent_for"] is None


def test_older_news_never_overwrites_newer() -> None:
    board = StatusBoard()
    board.heard("a", "Alfa", NOW, "sine", "SINE")
    board.status("a", "Alfa", {"facility": "Compromised"}, "urgent", NOW)
    # a copy of an older status arriving late over a slow link
    board.heard("a", "Alfa", NOW - 600, "satellite", "satellit")
    board.status("a", "Alfa", {"facility": "Normal"}, "normal", NOW - 600)
    (row,) = board.rows(NOW)
    assert row["status"] == {"facility": "Compromised"} and row["last_link_kind"] == "SINE"


def test_radio_status_counts_when_it_is_the_newest_news() -> None:
    board = StatusBoard()
    board.status("a", "Alfa", {"facility": "Normal"}, "normal", NOW - 600)
    board.radio("a", "Alfa", "needs-power", 0x8002, NOW - 60)
    (row,) = board.rows(NOW)
    assert row["concern"] == "help" and row["radio"] == {
        "status": "needs-power",
        "value": 0x8002,
        "at": NOW - 60,
    }
    board.status("a", "Alfa", {"facility": "Normal"}, "normal", NOW)  # a full status supersedes it
    assert board.rows(NOW)[0]["concern"] == "ok"
    board.radio("b", "Bravo", "ok", 0x8001, NOW)
    board.radio("c", "Charlie", None, 0x9999, NOW)  # outside the status plan: someone should look
    board.radio("c", "Charlie", "ok", 0x8001, NOW - 3600)  # older news never overwrites newer
    concerns = {r["node"]: r["concern"] for r in board.rows(NOW)}
    assert concerns == {"a": "ok", "b": "ok", "c": "help"}
