"""Exercises in the engine: real traffic first on every queue, and simulated outages that make the hubs
fail over for real without closing a link, lifted by the exercise's end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.core.clock import ManualClock
from hub.core.frame import Kind, Priority, Status
from hub.core.ranked import URGENT_RANK
from hub.core.transport import Cost
from hub.relay.events import EventBus
from hub.relay.exercises import MAX_OUTAGES, MAX_WINDOW, ExerciseState, SummaryDue
from hub.relay.health import HealthBoard, LinkState
from hub.relay.lanes import frame_rank, is_drill
from hub.relay.policy import Policy
from hub.relay.router import Router
from hub.relay.settings import Timing
from hub.relay.store import Store
from tests.inproc import eventually, running
from tests.relay.engine_kit import ME, PEER, wired
from tests.relay.test_failover import A, B, configs, delivered, link_used
from transports.memory import MemoryMedium


def text(payload: bytes, priority: Priority, status: Status = Status.ACTUAL) -> bytes:
    frame = ME.sign(
        Kind.TEXT,
        PEER.node_id,
        payload,
        created=1_800_000_000,
        ttl_minutes=60,
        priority=priority,
        status=status,
    )
    return frame.encode()


def test_a_drill_frame_ranks_as_routine_on_arrival() -> None:
    drill = text(b"x", Priority.LIFE_SAFETY, Status.EXERCISE)
    assert is_drill(drill) and frame_rank(drill) == Priority.ROUTINE
    real = text(b"x", Priority.URGENT)
    assert not is_drill(real) and frame_rank(real) == Priority.URGENT
    control = ME.sign(Kind.EXERCISE_CONTROL, PEER.node_id, b"\xa0", created=1_800_000_000, ttl_minutes=60,
                      status=Status.EXERCISE).encode()  # fmt: skip
    assert frame_rank(control) == URGENT_RANK  # read before the data it came with (an end lifts first)


async def test_a_real_routine_frame_is_queued_before_a_life_safety_exercise_frame(tmp_path: Path) -> None:
    async with wired({"slow": MemoryMedium()}) as wiring:
        store = await Store.open(tmp_path / "store.db")
        try:
            router = Router(
                me=ME.node_id, store=store, links=wiring.links, policy=Policy(order=("slow",), metered_min=0),
                timing=Timing(), clock=wiring.clock, events=EventBus(), routes={},
                default_route=(PEER.node_id,),
            )  # fmt: skip
            drill = text(b"drill", Priority.LIFE_SAFETY, Status.EXERCISE)
            real = text(b"real", Priority.ROUTINE)
            for wire, priority in ((drill, Priority.LIFE_SAFETY), (real, Priority.ROUTINE)):
                router.track(wire[:16], wire, PEER.node_id, priority, 1_900_000_000, [PEER.node_id])
            router.dispatch_due()  # both due at once: the router's worker queue decides who goes first
            first = (await router.outbound.take("slow"))[0].delivery  # a radio takes one at a time
            second = (await router.outbound.take("slow"))[0].delivery
            assert (first.wire, second.wire) == (real, drill)
            assert (
                second.policy_priority == Priority.NORMAL
                and second.send_priority(Cost.FREE) == Priority.ROUTINE
            )
        finally:
            await store.close()


async def test_an_outage_acts_only_inside_its_exercise_and_expires_by_itself() -> None:
    clock = ManualClock()
    health = HealthBoard()
    async with wired({"internet": MemoryMedium()}, health=health) as wiring:
        state = ExerciseState(ME.node_id, health, wiring.links, clock, EventBus())
        peer = PEER.node_id.hex()
        outage = {"exercise": "0000abcd", "action": "outage", "node": peer, "link": "internet",
                  "until": int(clock.time()) + 600}  # fmt: skip
        assert not state.act(outage, "coordinator")  # no exercise running: nothing happens
        assert health.state("internet", peer) is LinkState.UP
        start = {
            "exercise": "0000abcd",
            "action": "start",
            "name": "Øvelse",
            "until": int(clock.time()) + 3600,
        }
        assert state.act(start, "coordinator") and state.act(outage, "coordinator")
        assert health.state("internet", peer) is LinkState.DOWN
        assert not state.act({**outage, "exercise": "ffff0000"}, "coordinator")  # another exercise
        clock.advance(601)
        state.expire()
        assert health.state("internet", peer) is LinkState.UP and state.active is not None
        clock.advance(3000)
        state.expire()
        assert state.active is None
        forever = {**start, "exercise": "0000beef", "until": 2**32 - 1}
        assert state.act(forever, "coordinator") and state.active is not None
        assert state.active.until == clock.time() + MAX_WINDOW  # a control cannot keep a hub in for ever


async def test_a_simulated_outage_fails_over_for_real_and_the_end_restores_the_link(tmp_path: Path) -> None:
    ca, cb, fast, _ = configs(tmp_path)
    async with running(ca, A) as a, running(cb, B) as b:  # type: ignore[arg-type]
        a.roster.add(B.card)
        b.roster.add(A.card)
        until = int(a.clock.time()) + 3600
        await a.send_exercise_control(
            {"exercise": "0a0b0c0d", "action": "start", "name": "Øvelse", "until": until}
        )
        await eventually(lambda: b.exercise.active is not None)
        await a.send_exercise_control(
            {
                "exercise": "0a0b0c0d",
                "action": "outage",
                "node": B.node_id.hex(),
                "link": "fast",
                "until": until,
            }
        )
        await eventually(lambda: b.health.simulated("fast", None) is not None)
        assert a.links.state("fast", B.node_id) is LinkState.DOWN  # both ends treat it as down
        assert b.links.state("fast", A.node_id) is LinkState.DOWN
        assert MemoryMedium.named(fast).reachable("b")  # and nothing was actually closed

        during = await a.submit(Kind.TEXT, B.node_id, b"under udfaldet", status=Status.EXERCISE)
        await delivered(b, 1)
        assert await link_used(a, during) == "slow"

        await a.send_exercise_control({"exercise": "0a0b0c0d", "action": "end"})
        await eventually(lambda: b.exercise.active is None and b.health.simulated("fast", None) is None)
        await eventually(lambda: a.links.state("fast", B.node_id) is LinkState.UP, timeout=15)
        after = await a.submit(Kind.TEXT, B.node_id, b"efter", status=Status.ACTUAL)
        await delivered(b, 2)
        assert await link_used(a, after) == "fast"
        stored = [await b.store.message(i) for i in (during, after)]
        assert [m.wire[2] >> 2 & 3 if m else None for m in stored] == [Status.EXERCISE, Status.ACTUAL]


async def test_the_end_reaches_a_hub_whose_every_link_the_exercise_took_down(tmp_path: Path) -> None:
    """A hub deaf on every link by the exercise's outages still hears the exercise's own controls: else
    the end that lifts them would be dropped by them, and the hub would stay deaf until they ran out."""
    ca, cb, _, _ = configs(tmp_path)
    async with running(ca, A) as a, running(cb, B) as b:  # type: ignore[arg-type]
        a.roster.add(B.card)
        b.roster.add(A.card)
        until = int(a.clock.time()) + 3600
        start = {"exercise": "0a0b0c0e", "action": "start", "name": "Øvelse", "until": until}
        await a.send_exercise_control(start)
        await eventually(lambda: b.exercise.active is not None)
        for link in ("fast", "slow"):  # as if both outage controls had reached b (a's links stay up)
            outage = {"exercise": "0a0b0c0e", "action": "outage", "node": B.node_id.hex(), "link": link}
            assert b.exercise.act({**outage, "until": until}, A.node_id.hex())
        await eventually(lambda: all(b.health.simulated(k, None) is not None for k in ("fast", "slow")))
        during = await a.submit(Kind.TEXT, B.node_id, b"under udfaldet", status=Status.EXERCISE)

        await a.send_exercise_control({"exercise": "0a0b0c0e", "action": "end"})
        await eventually(lambda: b.exercise.active is None, timeout=15)
        assert all(b.health.simulated(k, None) is None for k in ("fast", "slow"))
        await eventually(lambda: a.router.open_count() == 0, timeout=30)  # the text went after the end
        assert (await b.store.message(during)) is not None
        assert not b.exercise.act(start, A.node_id.hex())  # a start that comes after its end: ignored
        assert b.exercise.active is None


async def test_the_state_survives_a_restart_and_outages_stay_bounded(tmp_path: Path) -> None:
    clock = ManualClock()
    path = tmp_path / "exercise.json"
    async with wired({"internet": MemoryMedium()}) as wiring:
        state = ExerciseState(ME.node_id, wiring.links.health, wiring.links, clock, EventBus(), path)
        until = int(clock.time()) + 3600
        state.act({"exercise": "0000abcd", "action": "start", "name": "Øvelse", "until": until}, "c")
        outage = {"exercise": "0000abcd", "action": "outage", "node": ME.node_id.hex(), "link": "internet"}
        assert state.act({**outage, "until": until - 1800}, "c")
        for _ in range(MAX_OUTAGES + 5):
            state.act({**outage, "until": until - 60}, "c")
        assert state.active is not None and len(state.active.outages) == MAX_OUTAGES

    async with wired({"internet": MemoryMedium()}) as wiring:  # the hub restarted: a fresh health board
        again = ExerciseState(ME.node_id, wiring.links.health, wiring.links, clock, EventBus(), path)
        again.load()
        assert again.active is not None and again.active.name == "Øvelse"
        assert wiring.links.health.state("internet", None) is LinkState.DOWN
        clock.advance(3600)
        again.expire()
        assert again.active is None and again.last is not None and again.last.id == "0000abcd"
        assert wiring.links.health.state("internet", None) is LinkState.UP


def test_only_staff_may_control_an_exercise() -> None:
    from hub.core.errors import TrustError
    from hub.relay.admission import Admission
    from hub.relay.roster import Roster

    roster = Roster(ME.card)
    roster.add(PEER.card)  # a care home
    control = PEER.sign(Kind.EXERCISE_CONTROL, ME.node_id, b"\xa0", created=1_800_000_000, ttl_minutes=60,
                        status=Status.EXERCISE)  # fmt: skip
    with pytest.raises(TrustError, match="not-allowed"):
        Admission(roster, ManualClock()).check(control, "internet:x")


async def test_a_participant_owes_its_coordinator_a_summary_at_the_end_and_on_request() -> None:
    clock = ManualClock()
    async with wired({"internet": MemoryMedium()}) as wiring:
        state = ExerciseState(ME.node_id, wiring.links.health, wiring.links, clock, EventBus())
        coordinator = PEER.node_id.hex()
        state.act({"exercise": "0000abcd", "action": "start", "name": "Øvelse",
                   "until": int(clock.time()) + 3600}, coordinator)  # fmt: skip
        started = clock.time()
        clock.advance(60)
        assert not state.act({"exercise": "0000abcd", "action": "summary"}, "someone-else")
        assert not state.act({"exercise": "ffff0000", "action": "summary"}, coordinator)
        assert not state.summaries_due and not state.summary_wanted.is_set()
        assert state.act({"exercise": "0000abcd", "action": "summary"}, coordinator)
        assert list(state.summaries_due) == [SummaryDue("0000abcd", coordinator, started, final=False)]
        assert state.summary_wanted.is_set()
        state.summaries_due.clear()
        state.act({"exercise": "0000abcd", "action": "end"}, coordinator)
        assert list(state.summaries_due) == [SummaryDue("0000abcd", coordinator, started, final=True)]
        # asked again once it is over: the exercise just over is still answered for
        assert state.act({"exercise": "0000abcd", "action": "summary"}, coordinator)
        assert len(state.summaries_due) == 2 and state.summaries_due[-1].final

        own = ExerciseState(ME.node_id, wiring.links.health, wiring.links, clock, EventBus())
        mine = ME.node_id.hex()  # the coordinator's own hub: its report reads its own files
        own.act({"exercise": "0000abcd", "action": "start", "until": int(clock.time()) + 60}, mine)
        own.act({"exercise": "0000abcd", "action": "end"}, mine)
        assert not own.summaries_due


async def test_a_summary_owed_or_asked_for_survives_a_restart(tmp_path: Path) -> None:
    """The final summary is owed until it was handed to the store, across restarts; the exercise just
    over is still answered for after one; and one whose window ended while the hub was stopped is over
    at load, its final summary due."""
    clock = ManualClock()
    path = tmp_path / "exercise.json"
    coordinator = PEER.node_id.hex()

    def restarted(wiring: Any) -> ExerciseState:
        state = ExerciseState(ME.node_id, wiring.links.health, wiring.links, clock, EventBus(), path)
        state.load()
        return state

    async with wired({"internet": MemoryMedium()}) as wiring:
        state = restarted(wiring)
        state.act({"exercise": "0000abcd", "action": "start", "name": "Øvelse",
                   "until": int(clock.time()) + 3600}, coordinator)  # fmt: skip
        started = clock.time()
        clock.advance(60)
        state.act({"exercise": "0000abcd", "action": "end"}, coordinator)
        final = SummaryDue("0000abcd", coordinator, started, final=True)
        assert list(state.summaries_due) == [final]

        again = restarted(wiring)  # stopped before the summary was sent: it is sent after the restart
        assert list(again.summaries_due) == [final] and again.summary_wanted.is_set()
        again.summary_sent(again.summaries_due.popleft())

        third = restarted(wiring)  # sent: not again, but the coordinator may still ask
        assert not third.summaries_due
        assert third.act({"exercise": "0000abcd", "action": "summary"}, coordinator)
        assert list(third.summaries_due) == [final]
        third.summary_sent(third.summaries_due.popleft())

        third.act({"exercise": "1111abcd", "action": "start", "name": "Nat",
                   "until": int(clock.time()) + 600}, coordinator)  # fmt: skip
        later = clock.time()
        clock.advance(601)  # the window ends while the hub is stopped
        fourth = restarted(wiring)
        assert fourth.active is None and fourth.last is not None and fourth.last.id == "1111abcd"
        assert list(fourth.summaries_due) == [SummaryDue("1111abcd", coordinator, later, final=True)]


async def test_a_control_applied_again_is_acted_on_once() -> None:
    """The hub applies a control as it arrives and again once it is stored: one request, one summary."""
    from hub.core.kinds import encode_payload

    clock = ManualClock()
    async with wired({"internet": MemoryMedium()}) as wiring:
        state = ExerciseState(ME.node_id, wiring.links.health, wiring.links, clock, EventBus())
        coordinator = PEER.node_id.hex()
        state.act({"exercise": "0000abcd", "action": "start", "name": "Øvelse",
                   "until": int(clock.time()) + 3600}, coordinator)  # fmt: skip
        body = encode_payload(Kind.EXERCISE_CONTROL, {"exercise": "0000abcd", "action": "summary"})
        asked = PEER.sign(Kind.EXERCISE_CONTROL, ME.node_id, body, created=int(clock.time()),
                          ttl_minutes=60, status=Status.EXERCISE)  # fmt: skip
        assert state.apply(asked)
        assert not state.apply(asked)
        assert len(state.summaries_due) == 1
