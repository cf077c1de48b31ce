"""The telecom-collapse script: plays the stages of ``drill.stages`` with messages flowing in each,
and measures them.

Each stage sets the whole world to its state, so any subset of stages can run on its own. Right after
the fault a sitrep leaves the staff hub for the stage's watched care home; the stage then measures,
from the staff hub's ``/v1/links``, when the failed link was noticed (degraded) and declared down, and
when that first sitrep reached the care home's inbox and over which link and next hop. Then the
stage's traffic flows: sitreps down, statuses up, a roll-call answered by every care home, routine
notes, and in stage 5 a life-safety call. A stage ends when every message that can be delivered in it
is in its recipient's inbox and its end-to-end ack is back; routine messages wait for a free link.

The invariants checked after every stage are the product's promise: nothing accepted is lost, nothing
reaches an application twice, routine traffic never touched the satellite, and after the restore the
traffic is back on the internet link. Breaches are collected as ``problems``, not raised, so a drill
always prints its whole table.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from drill import DrillError
from drill.runner import Drill
from drill.stages import (
    DETECTION_BUDGET,
    FIRST_DELIVERY_BUDGET,
    FULL_MESH,
    STAGES,
    Sent,
    Stage,
    StageResult,
    World,
)
from drill.topology import CARE_HOMES
from hub.core.errors import ProtocolError
from hub.core.frame import VERSION, Priority, decode_frame

STAGE_DEADLINE = 90.0
FIRST_DELIVERY_DEADLINE = 30.0
WATCH_DEADLINE = 15.0
STREAM_INTERVAL = 0.25

_STATE_ORDER = {"down": 0, "degraded": 1, "up": 2}


class Scenario:
    """Plays stages against a running ``Drill`` and keeps every message it sent."""

    def __init__(
        self,
        drill: Drill,
        *,
        rounds: int = 1,
        log: Callable[[str], None] = lambda _: None,
        stages: tuple[Stage, ...] = STAGES,
    ) -> None:
        self.drill = drill
        self.rounds = rounds
        self.stages = stages
        self.log = log
        self.world = World(True, True, FULL_MESH)
        self.sent: list[Sent] = []
        self.results: list[StageResult] = []
        self._rollcalls = 0

    async def run(self, numbers: Iterable[int] | None = None) -> list[StageResult]:
        wanted = set(numbers) if numbers is not None else {s.number for s in self.stages}
        for stage in self.stages:
            if stage.number in wanted:
                self.results.append(await self.play(stage))
        await self.finish()
        return self.results

    async def play(self, stage: Stage) -> StageResult:
        result = StageResult(stage)
        credits_before = sum(self.drill.satellite.credits().values())
        started = time.monotonic()
        self.log(f"stage {stage.number}: {stage.title}")
        stop_stream = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._stream(stage, result, stop_stream), name="drill-stream")
            await asyncio.sleep(2 * STREAM_INTERVAL)  # notes are in flight when the fault hits
            # The clock starts before the fault is applied: killing a broker or resetting connections
            # takes a moment, and the hubs may notice before the runner's call returns.
            fault_mono, fault_wall = time.monotonic(), time.time()
            await self._apply(stage.world)
            group.create_task(self._watch(stage, result, fault_mono), name="drill-watch")
            try:
                if stage.target == "up":
                    # After a restore, measure how soon traffic is back on the better link once the
                    # hubs see it again; until then they rightly keep using what they know works.
                    await self._healed(stage, result)
                    result.before_heal = {s.id for s in self.sent}
                first = await self._send(stage, "staff", stage.watched, "sitrep", _sitrep(stage, 0), "normal")
                await self._first_delivery(stage, result, first, fault_wall)
            finally:
                stop_stream.set()
            for round_number in range(self.rounds):
                await self._exchange(stage, round_number)
            await self._settle(stage)
        await self._check(stage, result)
        result.seconds = time.monotonic() - started
        result.satellite_credits = sum(self.drill.satellite.credits().values()) - credits_before
        return result

    async def _stream(self, stage: Stage, result: StageResult, stop: asyncio.Event) -> None:
        """Notes both ways between the staff hub and the watched care home from just before the fault
        until the staff hub has seen it (or the first sitrep is through): frames in flight on the link
        that dies must not be lost. Not longer: four notes a second would swamp a slow next link (SINE
        takes two SDS a second, reports included), and the first sitrep would wait behind the drill's
        own notes instead of showing how soon the hub fails over."""
        n = 0
        while not stop.is_set() and result.detected is None:
            n += 1
            sender, recipient = ("staff", stage.watched) if n % 2 else (stage.watched, "staff")
            await self._send(stage, sender, recipient, "text", f"Løbende note {stage.number}.{n}", "normal")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STREAM_INTERVAL):
                    await stop.wait()

    async def finish(self) -> None:
        """After the last stage: whatever is still open must arrive once the world is whole again."""
        if self.world != self.stages[-1].world:
            return
        missing = await self._wait_delivered([s for s in self.sent], STAGE_DEADLINE)
        lost = Counter(s.stage for s in missing)
        for result in self.results:
            result.lost = lost.get(result.stage.number, 0)
            if result.lost:
                result.problems.append(f"{result.lost} accepted message(s) never delivered")

    # ---- the world --------------------------------------------------------------------------------

    async def _apply(self, world: World) -> None:
        drill, was = self.drill, self.world
        internet = _fate(world.internet, world.silent)
        if internet != _fate(was.internet, was.silent):
            faults = {
                "up": drill.restore_internet,
                "silent": drill.silence_internet,
                "dead": drill.cut_internet,
            }
            await faults[internet]()
        broker = _fate(world.broker, world.silent)
        if broker != _fate(was.broker, was.silent):
            faults = {"up": drill.restart_broker, "silent": drill.silence_broker, "dead": drill.kill_broker}
            await faults[broker]()
        if world.mesh != self.world.mesh:
            drill.heal_mesh() if world.mesh is None else drill.partition_mesh(world.mesh)
        if world.sine_mute != was.sine_mute:
            drill.mute_sine("staff", world.sine_mute)
        self.world = world

    async def _watch(self, stage: Stage, result: StageResult, fault: float) -> None:
        """Poll the staff hub's view of the watched link until it reaches the stage's target state."""
        if stage.link is None:
            return
        peer = self.drill.node(stage.watched)
        while True:
            rows = await self.drill.links("staff")
            states = [r["state"] for r in rows if r["link"] == stage.link and r["peer"] in (peer, None)]
            state = min(states, key=_STATE_ORDER.__getitem__) if states else "up"
            elapsed = time.monotonic() - fault
            if result.noticed is None and (state != "up") == (stage.target == "down"):
                result.noticed = elapsed
            if state == stage.target:
                result.detected = elapsed
                return
            if elapsed > WATCH_DEADLINE:
                return  # never reached: the stage's check reports it
            await asyncio.sleep(0.05)

    async def _healed(self, stage: Stage, result: StageResult) -> None:
        """Wait until every hub sees the restored link up to every peer."""

        async def everywhere() -> bool:
            for key in self.drill.plans:
                rows = await self.drill.links(key)
                if any(r["link"] == stage.link and r["state"] != "up" for r in rows):
                    return False
            return True

        try:
            await self.drill.wait_for(f"{stage.link} up at every hub", everywhere, STAGE_DEADLINE)
        except DrillError as exc:
            result.problems.append(str(exc))

    # ---- traffic ----------------------------------------------------------------------------------

    async def _send(
        self, stage: Stage, sender: str, recipient: str, kind: str, body: Any, priority: str
    ) -> Sent:
        message_id = await self.drill.send(sender, recipient, kind, body, priority)
        sent = Sent(message_id, sender, recipient, kind, priority, stage.number)
        self.sent.append(sent)
        return sent

    async def _first_delivery(
        self, stage: Stage, result: StageResult, first: Sent, fault_wall: float
    ) -> None:
        try:
            await self.drill.wait_for(
                f"stage {stage.number}'s first sitrep at {first.recipient}",
                lambda: self._in_inbox(first),
                FIRST_DELIVERY_DEADLINE,
                interval=0.05,
            )
        except DrillError as exc:
            result.problems.append(str(exc))
            return
        message = next(m for m in await self.drill.inbox(first.recipient) if m["id"] == first.id)
        result.first_delivery = float(message["received"]) - fault_wall
        result.first_via = await self._via(first)
        if result.first_via != stage.expect:
            result.problems.append(f"first sitrep went {result.first_via}, expected {stage.expect}")

    async def _in_inbox(self, sent: Sent) -> bool:
        return any(m["id"] == sent.id for m in await self.drill.inbox(sent.recipient))

    async def _via(self, sent: Sent) -> str:
        """The link (and next hop, when not the recipient) the sender's delivery finally took."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10.0
        while True:
            hops = (await self.drill.message(sent.sender, sent.id))["hops"]
            done = [h for h in hops if h["state"] == "hop-acked" and h["link"]]
            if done or loop.time() > deadline:
                break
            await asyncio.sleep(0.1)
        if not done:
            return "(not settled)"
        link: str = done[0]["link"]
        hop = self.drill.key_of(done[0].get("next_hop")) or sent.recipient
        return link if hop == sent.recipient else f"{link}@{hop}"

    async def _exchange(self, stage: Stage, round_number: int) -> None:
        """One round of a stage's traffic; roll-calls run concurrently with the rest."""
        n = round_number + 1
        async with asyncio.TaskGroup() as rollcalls:
            for home in CARE_HOMES:
                rollcalls.create_task(self._rollcall(stage, home), name=f"drill-rollcall-{home}")
            for home in CARE_HOMES:
                await self._send(stage, "staff", home, "sitrep", _sitrep(stage, n), "normal")
                await self._send(stage, home, "staff", "status", _status(stage, home), "normal")
            await self._send(
                stage, "staff", "home1", "text", f"Kantinens ugeplan ({stage.number}.{n})", "routine"
            )
            await self._send(
                stage, "home3", "staff", "text", f"Vasketøj hentes torsdag ({stage.number}.{n})", "routine"
            )
            if stage.number == 5:
                body = {
                    "facility": "Compromised",
                    "power": "generator",
                    "needs": ["oxygen"],
                    "text": "Ilt mangler",
                }
                await self._send(stage, "home1", "staff", "status", body, "life-safety")

    async def _rollcall(self, stage: Stage, home: str) -> None:
        self._rollcalls += 1
        request = f"{stage.number:02x}{self._rollcalls:06x}"
        call = await self._send(
            stage, "staff", home, "rollcall",
            {"request": request, "deadline": int(time.time()) + 3600, "question": "Status?"}, "urgent",
        )  # fmt: skip
        try:
            await self.drill.wait_for(
                f"the roll-call at {home}", lambda: self._in_inbox(call), STAGE_DEADLINE
            )
        except DrillError:
            return  # the stage's check reports the roll-call as not delivered
        answer = _status(stage, home) | {"rollcall": request}
        await self._send(stage, home, "staff", "status", answer, "normal")

    async def _settle(self, stage: Stage) -> None:
        due = [
            s
            for s in self.sent
            if s.stage == stage.number and (s.priority != "routine" or stage.world.free_link)
        ]
        await self._wait_delivered(due, STAGE_DEADLINE)

    async def _wait_delivered(self, messages: list[Sent], timeout: float) -> list[Sent]:
        """Wait until each message is in its recipient's inbox and acknowledged end to end to its
        sender; returns those that were not, when ``timeout`` ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiting = list(messages)
        while waiting:
            inboxes = {
                k: {m["id"] for m in await self.drill.inbox(k)} for k in {s.recipient for s in waiting}
            }
            still = []
            for sent in waiting:
                arrived = sent.id in inboxes[sent.recipient]
                if not arrived or not (await self.drill.message(sent.sender, sent.id))["end_to_end_acked"]:
                    still.append(sent)
            waiting = still
            if not waiting or loop.time() >= deadline:
                break
            await asyncio.sleep(0.25)
        return waiting

    # ---- invariants -------------------------------------------------------------------------------

    async def _check(self, stage: Stage, result: StageResult) -> None:
        result.sent = [s for s in self.sent if s.stage == stage.number]
        inboxes = {key: Counter(m["id"] for m in await self.drill.inbox(key)) for key in self.drill.plans}
        for sent in result.sent:
            count = inboxes[sent.recipient][sent.id]
            result.delivered += count > 0
            if count > 1:
                result.duplicates += 1
                result.problems.append(
                    f"{sent.kind} {sent.id} reached {sent.recipient}'s inbox {count} times"
                )
            result.links[await self._via(sent) if count else "(waiting)"] += 1
        due = [s for s in result.sent if s.priority != "routine" or stage.world.free_link]
        missing = await self._wait_delivered(due, 0.0)
        for sent in missing:
            result.problems.append(
                f"{sent.kind} {sent.sender}->{sent.recipient} ({sent.priority}) not delivered and acked"
            )
        for sent in self.sent:
            if sent.priority != "routine":
                continue
            hops = (await self.drill.message(sent.sender, sent.id))["hops"]
            if any(h["link"] == "satellite" for h in hops):
                result.problems.append(f"routine {sent.kind} {sent.id} was sent over the satellite")
        for imei, data in self.drill.satellite.cloud.mo_log:
            if data[:1] == bytes([VERSION]):
                try:
                    priority = decode_frame(data).priority
                except ProtocolError:
                    continue
                if priority < Priority.URGENT:
                    result.problems.append(
                        f"a {priority.name.lower()} frame crossed the satellite from {imei}"
                    )
        if stage.number == self.stages[-1].number:
            for sent in (s for s in result.sent if s.id not in result.before_heal):
                via = await self._via(sent)
                if via != "internet":
                    result.problems.append(
                        f"after the restore a {sent.kind} went {via}, not over the internet"
                    )
        self._budgets(stage, result)

    def _budgets(self, stage: Stage, result: StageResult) -> None:
        """The failover budgets hold for faults. A restore is measured, not budgeted: the other links
        carry the traffic meanwhile, and a link that failed is deliberately kept on probation for a
        few seconds (hold-down, then answers in a row) so that it cannot flap."""
        if stage.link is None:
            return
        if result.detected is None:
            result.problems.append(
                f"{stage.link} to {stage.watched} never reached {stage.target} at the staff hub"
            )
        if stage.target != "down":
            return
        if result.detected is not None and result.detected > DETECTION_BUDGET:
            result.problems.append(f"detection took {result.detected:.1f} s (budget {DETECTION_BUDGET} s)")
        if result.first_delivery is not None and result.first_delivery > FIRST_DELIVERY_BUDGET:
            result.problems.append(
                f"first delivery took {result.first_delivery:.1f} s (budget {FIRST_DELIVERY_BUDGET} s)"
            )


def _fate(alive: bool, silent: bool) -> str:
    return "up" if alive else "silent" if silent else "dead"


def _sitrep(stage: Stage, n: int) -> dict[str, Any]:
    return {"number": stage.number * 10 + n, "phase": "Update" if stage.number > 1 else "Initial",
            "summary": f"Fase {stage.number}: {stage.title}. Generatorer kører."}  # fmt: skip


def _status(stage: Stage, home: str) -> dict[str, Any]:
    return {"facility": "Normal" if stage.number in (1, 6) else "Compromised", "power": "generator",
            "fuel_hours": 40 - 5 * stage.number, "text": f"{home} fase {stage.number}"}  # fmt: skip
