"""A burst of routine traffic on the mesh, in simulated time: the legal hour holds, life-safety goes first."""

from __future__ import annotations

import asyncio

from hub.core.frame import Priority
from transports.lora_airtime import WINDOW, AirtimeBudget, ModemPreset, packet_airtime
from transports.lora_send import PriorityGate

LEGAL_SECONDS_PER_HOUR = 360.0


def test_a_burst_of_500_routine_packets_stays_inside_the_rolling_hour() -> None:
    budget = AirtimeBudget(LEGAL_SECONDS_PER_HOUR * 0.9)
    airtime = packet_airtime(200, ModemPreset.LONG_FAST)
    now, sent, queue = 0.0, [], 500
    while queue:  # a radio that sends whenever the budget allows, in simulated seconds
        decision = budget.decide(now, airtime, Priority.ROUTINE)
        if decision.allowed:
            budget.record(now, airtime)
            sent.append(now)
            queue -= 1
            now += airtime
        else:
            now += max(decision.retry_after, 0.001)
    for start in sent:  # every rolling hour, wherever it starts, stays within the legal 360 s
        in_window = sum(1 for t in sent if start <= t < start + WINDOW)
        assert in_window * airtime <= LEGAL_SECONDS_PER_HOUR
    life_safety = budget.decide(sent[-1], airtime, Priority.LIFE_SAFETY)
    assert life_safety.allowed, "routine traffic leaves room for a life-safety packet"


async def test_life_safety_queued_behind_routine_goes_first() -> None:
    gate, order, on_air = PriorityGate(), [], asyncio.Event()

    async def send(name: str, priority: Priority, hold: asyncio.Event | None = None) -> None:
        async with gate.turn(int(priority)):
            order.append(name)
            if hold is not None:
                await hold.wait()  # a slow LoRa packet on the air while the others queue up

    holder = asyncio.create_task(send("on the air", Priority.ROUTINE, on_air))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(send(f"routine {n}", Priority.ROUTINE)) for n in range(500)]
    waiting.append(asyncio.create_task(send("life-safety", Priority.LIFE_SAFETY)))
    while gate.depth < 502:  # noqa: ASYNC110 - until everyone is queued behind the packet on the air
        await asyncio.sleep(0)
    on_air.set()
    await asyncio.gather(holder, *waiting)
    assert order[0] == "on the air"
    assert order[1] == "life-safety"
    assert order[2:] == [f"routine {n}" for n in range(500)]
