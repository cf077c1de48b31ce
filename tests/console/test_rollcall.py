"""Statusrunde board: deadlines, resends over the next link, escalation and answers over any link."""

from __future__ import annotations

import json

import pytest

from hub.console.rollcall import Escalate, Resend, RollCallBoard, Target, TargetState
from hub.core.clock import ManualClock

LINDELY, SOLBAKKEN, BAKKEHUSET = "1111111111111111", "2222222222222222", "3333333333333333"
LINKS = {
    LINDELY: ["internet", "lora", "sine"],
    SOLBAKKEN: ["internet", "sine"],
    BAKKEHUSET: ["sine"],
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def board(clock: ManualClock) -> RollCallBoard:
    board = RollCallBoard(clock, resend_window=300)
    board.start("a1b2c3d4", "Meld status", clock.time() + 1800, LINKS)
    return board


def states(board: RollCallBoard) -> dict[str, TargetState]:
    call = board.get("a1b2c3d4")
    assert call is not None
    return {k: t.state for k, t in call.targets.items()}


def test_nothing_happens_before_the_deadline(board: RollCallBoard, clock: ManualClock) -> None:
    clock.advance(1799)
    assert board.tick() == []
    assert set(states(board).values()) == {TargetState.PENDING}


def test_past_deadline_resend_over_next_link_then_escalate(board: RollCallBoard, clock: ManualClock) -> None:
    clock.advance(1800)
    first = board.tick()
    deadline = int(clock.time()) + 300
    assert first == [
        Resend("a1b2c3d4", LINDELY, "lora", 2, "Meld status", deadline),
        Resend("a1b2c3d4", SOLBAKKEN, "sine", 2, "Meld status", deadline),
        Escalate("a1b2c3d4", BAKKEHUSET, ("sine",)),
    ]
    assert states(board) == {
        LINDELY: TargetState.OVERDUE,
        SOLBAKKEN: TargetState.OVERDUE,
        BAKKEHUSET: TargetState.ESCALATED,
    }
    assert board.tick() == []  # each step happens once
    clock.advance(300)
    assert board.tick() == [
        Resend("a1b2c3d4", LINDELY, "sine", 3, "Meld status", int(clock.time()) + 300),
        Escalate("a1b2c3d4", SOLBAKKEN, ("internet", "sine")),
    ]
    clock.advance(300)
    assert board.tick() == [Escalate("a1b2c3d4", LINDELY, ("internet", "lora", "sine"))]
    clock.advance(3600)
    assert board.tick() == []  # escalated targets stay escalated


def test_answers_match_by_request_id_over_any_link(board: RollCallBoard, clock: ManualClock) -> None:
    clock.advance(60)
    # the roll-call went out over the internet, the answer came back over SINE
    answer = board.answer(LINDELY, "a1b2c3d4", link="sine", body={"facility": "Normal"})
    assert answer is not None and answer.link == "sine" and not answer.late
    assert states(board)[LINDELY] is TargetState.ANSWERED
    # the same status arriving over LoRa a minute later is a duplicate
    clock.advance(60)
    assert board.answer(LINDELY, "a1b2c3d4", link="lora", body={"facility": "Normal"}) is None
    call = board.get("a1b2c3d4")
    assert call is not None and call.targets[LINDELY].answer == answer
    clock.advance(1800)
    assert [d.institution for d in board.tick()] == [SOLBAKKEN, BAKKEHUSET]


def test_late_answers_after_escalation_still_count(board: RollCallBoard, clock: ManualClock) -> None:
    clock.advance(1800)
    board.tick()
    assert states(board)[BAKKEHUSET] is TargetState.ESCALATED
    answer = board.answer(BAKKEHUSET, "a1b2c3d4", link="sine", body={"facility": "Compromised"})
    assert answer is not None and answer.late
    assert states(board)[BAKKEHUSET] is TargetState.ANSWERED


def test_unknown_requests_and_strangers_are_not_answers(board: RollCallBoard) -> None:
    assert board.answer(LINDELY, "ffffffff", link="internet") is None
    assert board.answer("9999999999999999", "a1b2c3d4", link="internet") is None
    assert set(states(board).values()) == {TargetState.PENDING}


def test_done_when_everyone_answered(board: RollCallBoard) -> None:
    call = board.get("a1b2c3d4")
    assert call is not None and not call.done
    for institution in LINKS:
        board.answer(institution, "a1b2c3d4", link="internet")
    assert call.done
    board.close("a1b2c3d4")
    assert board.get("a1b2c3d4") is None


def test_summary_is_json_and_lists_the_worst_first(board: RollCallBoard, clock: ManualClock) -> None:
    board.answer(SOLBAKKEN, "a1b2c3d4", link="mqtt", body={"facility": "Normal"})
    clock.advance(1800)
    board.tick()
    (summary,) = json.loads(json.dumps(board.summary()))
    assert summary["counts"] == {"pending": 0, "answered": 1, "overdue": 1, "escalated": 1}
    assert [t["institution"] for t in summary["targets"]] == [BAKKEHUSET, LINDELY, SOLBAKKEN]
    assert summary["targets"][1]["attempts"] == [
        {"link": "internet", "at": 1_800_000_000},
        {"link": "lora", "at": 1_800_001_800},
    ]
    assert summary["targets"][2]["answer"]["link"] == "mqtt"


def test_new_request_ids_are_eight_hex_digits_and_unique(clock: ManualClock) -> None:
    board = RollCallBoard(clock)
    ids = {board.new_request_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 8 and int(i, 16) >= 0 for i in ids)


@pytest.mark.parametrize(
    ("request_id", "deadline_in", "institutions", "message"),
    [
        ("a1b2c3d4", 60, {LINDELY: ["sine"]}, "findes allerede"),
        ("00000002", 60, {}, "mindst én institution"),
        ("00000003", 0, {LINDELY: ["sine"]}, "deadline: skal ligge i fremtiden"),
        ("00000004", 60, {LINDELY: []}, f"institutions.{LINDELY}: ingen forbindelse"),
    ],
)
def test_bad_roll_calls_are_refused(
    board: RollCallBoard,
    clock: ManualClock,
    request_id: str,
    deadline_in: int,
    institutions: dict[str, list[str]],
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        board.start(request_id, "?", clock.time() + deadline_in, institutions)


def test_illegal_transitions_raise() -> None:
    target = Target(LINDELY, ("sine",), 0.0, state=TargetState.ANSWERED)
    with pytest.raises(ValueError, match="cannot go from answered to overdue"):
        target.move(TargetState.OVERDUE)
    escalated = Target(LINDELY, ("sine",), 0.0, state=TargetState.ESCALATED)
    with pytest.raises(ValueError, match="cannot go from escalated to pending"):
        escalated.move(TargetState.PENDING)


def test_resend_window_must_be_positive(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="resend_window"):
        RollCallBoard(clock, resend_window=0)


def test_snapshot_and_restore_carry_on_after_a_restart(board: RollCallBoard, clock: ManualClock) -> None:
    board.answer(SOLBAKKEN, "a1b2c3d4", link="sine", body={"facility": "Normal"})
    clock.advance(1800)
    board.tick()
    saved = json.loads(json.dumps(board.snapshot()))
    again = RollCallBoard(clock, resend_window=300)
    again.restore(saved)
    assert again.summary() == board.summary()
    clock.advance(300)
    assert again.tick() == board.tick()  # the next step is the same on both
    assert again.answer(LINDELY, "a1b2c3d4", link="lora") is not None


@pytest.mark.parametrize(
    "damaged",
    [
        [{"request": "x"}],
        [{"request": "x", "question": "?", "started": 0, "deadline": 0,
          "targets": [{"institution": "n", "links": [], "deadline": 0, "state": "lost", "attempts": [],
                       "answer": None}]}],
        [{"request": "x", "question": "?", "started": "soon", "deadline": 0, "targets": []}],
    ],
)  # fmt: skip
def test_a_damaged_snapshot_is_refused_whole(clock: ManualClock, damaged: list[dict[str, object]]) -> None:
    board = RollCallBoard(clock)
    with pytest.raises(ValueError, match="roll-call snapshot is damaged"):
        board.restore(damaged)
    assert board.summary() == []


def test_a_roll_call_everyone_answered_is_finished_at_once(board: RollCallBoard) -> None:
    assert board.finished(late_window=3600) == []
    for institution in LINKS:
        board.answer(institution, "a1b2c3d4", link="internet")
    assert board.finished(late_window=3600) == ["a1b2c3d4"]
    closed = board.close("a1b2c3d4")
    assert closed is not None and closed.done
    assert len(board) == 0 and board.get("a1b2c3d4") is None
    assert board.answer(LINDELY, "a1b2c3d4", link="lora") is None  # a closed roll-call takes no answers


def test_a_roll_call_nobody_waits_on_is_finished_after_the_late_window(
    board: RollCallBoard, clock: ManualClock
) -> None:
    board.answer(LINDELY, "a1b2c3d4", link="internet")
    for _ in range(3):  # resends until every remaining target is escalated
        clock.advance(1800)
        board.tick()
    assert {s for s in states(board).values()} == {TargetState.ANSWERED, TargetState.ESCALATED}
    call = board.get("a1b2c3d4")
    assert call is not None
    clock.advance(max(t.deadline for t in call.targets.values()) + 3599 - clock.time())
    assert board.finished(late_window=3600) == []  # a late answer may still come
    clock.advance(1)
    assert board.finished(late_window=3600) == ["a1b2c3d4"]


def test_summary_is_bounded(clock: ManualClock) -> None:
    board = RollCallBoard(clock)
    for n in range(5):
        board.start(f"r{n}", "Meld status", clock.time() + 600, {LINDELY: ["internet"]})
        clock.advance(1)
    assert [c["request"] for c in board.summary(limit=2)] == ["r4", "r3"]
