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
