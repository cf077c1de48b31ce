"""A roll-call nobody answers is sent again over the next link, then escalated, and the log book says so."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.console.options import ConsoleOptions
from hub.core.clock import ManualClock
from hub.core.frame import Kind, Priority
from tests.console.conftest import Pair
from tests.inproc import eventually


@pytest.fixture
def link_names() -> tuple[str, ...]:
    return ("memory", "backup")


@pytest.fixture
def manual() -> ManualClock:
    return ManualClock(start=time.time())


@pytest.fixture
def console_options(manual: ManualClock) -> ConsoleOptions:
    return ConsoleOptions(tick_interval=0.05, resend_window=300, clock=manual)


def rollcalls_at_care_home(pair: Pair) -> list[dict[str, object]]:
    return [m for m in pair.care.console.messages if m["kind"] == Kind.ROLLCALL.name.lower()]


async def decisions(pair: Pair, count: int) -> list[str]:
    for _ in range(400):
        entries = await pair.staff.console.logbook.entries()
        found = [e.text for e in entries if e.type == "decision"]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} decisions in the log book")


async def test_resend_over_next_link_then_escalate(pair: Pair, manual: ManualClock) -> None:
    console = pair.staff.console
    request = await console.start_rollcall("Meld status", 30, [], author="hansen")
    await eventually(lambda: len(rollcalls_at_care_home(pair)) == 1)

    manual.advance(30 * 60)
    (resend,) = await decisions(pair, 1)
    assert resend == (f"Intet svar fra Plejecenter Lindely på statusrunde {request} inden fristen: "
                      "sender igen (forsøg 2, næste forbindelse: backup (memory))")  # fmt: skip
    # the second copy carries the same request id and a fresh deadline
    await eventually(lambda: len(rollcalls_at_care_home(pair)) == 2)
    first, second = rollcalls_at_care_home(pair)[::-1]
    assert first["body"]["request"] == second["body"]["request"] == request  # type: ignore[index]
    assert second["body"]["deadline"] > first["body"]["deadline"]  # type: ignore[index,operator]
    assert console.board_rows()[0]["rollcall"] == "overdue"

    manual.advance(300)
    _, escalation = await decisions(pair, 2)
    assert escalation == (f"Ingen kontakt med Plejecenter Lindely (statusrunde {request}, "
                          "prøvet memory, backup (memory)): send nogen ud")  # fmt: skip
    (row,) = console.board_rows()
    assert row["concern"] == "critical" and row["rollcall"] == "escalated"

    # a late answer still counts and clears the alarm
    await pair.care.console.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")
    await eventually(lambda: console.board_rows()[0]["rollcall"] == "answered")
    # answered by everyone, the roll-call may already be closed into the archive: read the view of both
    (summary,) = await console.rollcall_view(10)
    assert summary["targets"][0]["answer"]["late"] is True
