"""An exercise status never reaches the real status board: a care home that 'evacuates' in an exercise
must not turn red among the real statuses, nor answer the console's (real) roll-call."""

from __future__ import annotations

from hub.core.frame import Priority, Status
from tests.console.conftest import Pair
from tests.inproc import eventually


async def test_an_exercise_status_stays_off_the_real_board(pair: Pair) -> None:
    staff, care = pair.staff.console, pair.care.console

    def statuses() -> list[tuple[str, str]]:
        return [(m["body"]["facility"], m["status"]) for m in staff.messages if m["kind"] == "status"]

    await care.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely",
                            cap_status=Status.ACTUAL)  # fmt: skip
    await eventually(lambda: statuses() == [("Normal", "actual")])
    ((row,),) = [staff.board_rows()]
    assert row["status"]["facility"] == "Normal"

    request = await staff.start_rollcall("Meld status", 30, [], author="hansen")
    await eventually(lambda: care.open_rollcall() is not None)
    await care.quick_status({"facility": "Evacuating"}, Priority.URGENT, author="lindely",
                            cap_status=Status.EXERCISE)  # fmt: skip
    await eventually(lambda: statuses()[0] == ("Evacuating", "exercise"))
    (row,) = staff.board_rows()
    assert row["status"]["facility"] == "Normal" and row["concern"] != "critical"
    assert row["rollcall"] != "answered"
    (call,) = await staff.rollcall_view(10)
    assert call["request"] == request and call["targets"][0]["answer"] is None


async def test_a_roll_call_during_an_exercise_is_the_exercise_s_unless_chosen_real(pair: Pair) -> None:
    """While the staff hub takes part in an exercise its console's roll-call is an exercise one, as
    everything a person sends then: marked ØVELSE, answered by the care home's exercise status, kept off
    the real board; a real roll-call meanwhile is an explicit choice, answered only by a real status."""
    staff, care = pair.staff.console, pair.care.console
    me = pair.staff.hub.identity.node_id.hex()
    until = int(pair.staff.hub.clock.time()) + 3600
    start = {"exercise": "0000abcd", "action": "start", "name": "Øvelse", "until": until}
    for site in (pair.staff, pair.care):  # as the signed control does at each hub
        site.hub.exercise.act(start, me)

    drill = await staff.start_rollcall("Meld status", 30, [], author="hansen")
    await eventually(lambda: (care.open_rollcall() or {}).get("body", {}).get("request") == drill)
    asked = care.open_rollcall()
    assert asked is not None and asked["status"] == "exercise"
    assert asked["body"]["question"] == "ØVELSE: Meld status"
    (row,) = staff.board_rows()
    assert row["rollcall"] in (None, "")  # not pending on the real board
    await care.quick_status(
        {"facility": "Evacuating"}, Priority.URGENT, author="lindely"
    )  # ØVELSE by default
    await eventually(lambda: staff.rollcalls.get(drill) is None or staff.rollcalls.get(drill).done)  # type: ignore[union-attr]
    (call,) = await staff.rollcall_view(10)
    assert call["request"] == drill and call["exercise"] is True
    assert call["targets"][0]["answer"]["body"]["facility"] == "Evacuating"
    (row,) = staff.board_rows()
    assert row["status"] is None and row["rollcall"] in (None, "")

    real = await staff.start_rollcall("Brand? Meld status", 30, [], author="hansen", status=Status.ACTUAL)
    await eventually(lambda: (care.open_rollcall() or {}).get("body", {}).get("request") == real)
    assert care.open_rollcall()["status"] == "actual"  # type: ignore[index]
    await eventually(lambda: staff.board_rows()[0]["rollcall"] == "pending")
    await care.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")  # still ØVELSE
    await eventually(lambda: len([m for m in staff.messages if m["kind"] == "status"]) == 2)
    assert staff.rollcalls.get(real) is not None and not staff.rollcalls.get(real).done  # type: ignore[union-attr]
    await care.quick_status(
        {"facility": "Normal"}, Priority.NORMAL, author="lindely", cap_status=Status.ACTUAL
    )
    await eventually(lambda: staff.board_rows()[0]["rollcall"] == "answered")
    assert staff.board_rows()[0]["status"]["facility"] == "Normal"
