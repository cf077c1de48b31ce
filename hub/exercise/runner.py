"""Runs one exercise at the coordinator's hub: timed injects on the hub's clock, pause, resume and end.

    runner = ExerciseRunner(hub, record, zone)
    await runner.restore()                 # after a restart: pick up the exercise the journal says is on
    ex = await runner.start(toml_text, by="hansen")
    await runner.step()                    # send what is due now (run_forever does this on its own)
    await runner.pause(by="hansen"); await runner.resume(by="hansen"); await runner.end(by="hansen")

Every message and roll-call an inject creates is signed with CAP status Exercise and its text begins
with "ØVELSE", so neither the frame nor the person reading it can take it for real. An outage inject
sends a signed EXERCISE_CONTROL to every hub (``Hub.send_exercise_control``). The journal
(``hub.exercise.record``) gets every start, pause, resume and end, every inject as sent with its message
ids, and every outage.

Pausing holds the injects back; on resume, the rest of the scenario moves later by the time it was paused
(clock times too), and so does the exercise's end. Outages already in force run to their own end.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from datetime import tzinfo

from hub.core.errors import BeredtError, UsageError
from hub.core.frame import Kind, Status
from hub.core.kinds import encode_payload
from hub.exercise import audience
from hub.exercise.entries import Exercise, Participant, State
from hub.exercise.record import ExerciseRecord
from hub.exercise.scenario import InjectKind, Planned, Scenario, parse
from hub.relay.hub import Hub

log = logging.getLogger("beredt.exercise")

MARK = "ØVELSE: "
"""How every exercise text begins, for the person reading it."""
IDLE_WAIT = 1.0
"""The loop looks again at least this often (seconds), so pause, resume and end act promptly."""


@dataclass(slots=True)
class _Running:
    exercise: Exercise
    scenario: Scenario
    participants: tuple[bytes, ...]
    plan: list[Planned]
    sent: set[int] = field(default_factory=set)
    shift: float = 0.0
    """Seconds the rest of the scenario has moved later because of pauses."""
    paused_at: float | None = None

    @property
    def end(self) -> float:
        return self.exercise.started + self.scenario.duration + self.shift

    def due(self, now: float) -> list[Planned]:
        if self.paused_at is not None:
            return []
        return [p for p in self.plan if p.inject.number not in self.sent and p.due + self.shift <= now]

    def next_due(self) -> float | None:
        waiting = [p.due + self.shift for p in self.plan if p.inject.number not in self.sent]
        return min(waiting, default=None)


class ExerciseRunner:
    """The exercise in progress at this hub (at most one); the journal keeps everything it did."""

    def __init__(self, hub: Hub, record: ExerciseRecord, zone: tzinfo) -> None:
        self.hub = hub
        self.record = record
        self.zone = zone
        self._running: _Running | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    @property
    def current(self) -> Exercise | None:
        return self._running.exercise if self._running else None

    async def restore(self) -> None:
        """Pick up the exercise the journal says is running or paused (after a restart of the hub)."""
        exercise = await self.record.active()
        if exercise is None:
            return
        try:
            scenario = parse(exercise.scenario)
            participants = audience.check(self.hub, scenario)
        except BeredtError as exc:
            log.error("exercise %s cannot go on after the restart (%s); ending it", exercise.id, exc)
            await self.record.end(exercise.id, by="hub")
            return
        now = self.hub.clock.time()
        running = _Running(exercise, scenario, participants, scenario.timeline(exercise.started, self.zone))
        running.sent = {i.number for i in await self.record.injects(exercise.id)}
        running.shift = exercise.paused_seconds(now)
        if exercise.state == State.PAUSED:
            running.paused_at = exercise.phases[-1].time
            running.shift -= now - running.paused_at
        self._running = running
        log.info("exercise %s (%s) resumed after a restart", exercise.id, exercise.name)

    async def start(self, scenario_text: str, *, by: str, file: str | None = None) -> Exercise:
        """Check the scenario against this hub's roster, record and announce the exercise, and send what is
        due at once. ``ConfigError`` for a broken file, ``UsageError`` for names or times that do not fit
        or while another exercise is on; nothing is sent then."""
        async with self._lock:
            scenario = parse(scenario_text, file=file)
            participants = audience.check(self.hub, scenario)
            now = self.hub.clock.time()
            plan = scenario.timeline(now, self.zone)
            names = [Participant(n.hex(), self._name(n)) for n in participants]
            exercise = await self.record.begin(
                scenario.name, scenario_text, names, coordinator=by, planned_end=now + scenario.duration
            )
            self._running = _Running(exercise, scenario, participants, plan)
            paid = 1 if scenario.allow_satellite else None  # left out: paid links stay closed
            await self._control("start", name=scenario.name, until=int(self._running.end), paid=paid)
            log.warning("exercise %s (%s) started by %s", exercise.id, scenario.name, by)
        await self.step()
        self._wake.set()
        return exercise

    async def pause(self, *, by: str) -> Exercise:
        async with self._lock:
            running = self._require()
            exercise = await self.record.pause(running.exercise.id, by=by)
            running.exercise, running.paused_at = exercise, self.hub.clock.time()
            await self._control("pause")
            return exercise

    async def resume(self, *, by: str) -> Exercise:
        async with self._lock:
            running = self._require()
            exercise = await self.record.resume(running.exercise.id, by=by)
            assert running.paused_at is not None
            running.shift += self.hub.clock.time() - running.paused_at
            running.exercise, running.paused_at = exercise, None
            await self._control("resume", until=int(running.end))
        self._wake.set()
        return exercise

    async def end(self, *, by: str) -> Exercise:
        """End the exercise now: every hub lifts its simulated outages and drops the banner."""
        async with self._lock:
            running = self._require()
            return await self._end(running, by)

    async def note(self, text: str, *, author: str, exercise_id: str | None = None) -> None:
        """An observer's note on ``exercise_id`` (the current exercise by default)."""
        target = exercise_id or (self._running.exercise.id if self._running else None)
        if target is None:
            raise UsageError("ingen øvelse er i gang; angiv hvilken øvelse notatet gælder (--id)")
        await self.record.note(target, author=author, text=text)

    async def ask_for_summaries(self, exercise_id: str | None = None) -> str:
        """Ask every hub in ``exercise_id`` (the current exercise by default; one just over too) for its own
        account of its links in it; each sends it as an EXERCISE_SUMMARY. Returns the exercise's id."""
        target = exercise_id or (self._running.exercise.id if self._running else None)
        if target is None:
            raise UsageError("ingen øvelse er i gang; angiv hvilken øvelse (--id)")
        if await self.record.exercise(target) is None:
            raise UsageError(f"ingen øvelse {target!r}")
        await self._control("summary", exercise_id=target)
        return target

    async def step(self) -> int:
        """Send every inject that is due now, and end the exercise when its time is over; how many went."""
        async with self._lock:
            running = self._running
            if running is None:
                return 0
            now = self.hub.clock.time()
            sent = 0
            for planned in running.due(now):
                running.sent.add(planned.inject.number)  # first: a failed inject is recorded, not retried
                try:
                    await self._send(running, planned)
                    sent += 1
                except BeredtError as exc:
                    log.error("exercise inject %d could not be sent: %s", planned.inject.number, exc)
            if running.paused_at is None and now >= running.end:
                await self._end(running, "hub")
            return sent

    async def run_forever(self) -> None:
        """Send injects as they fall due; never returns."""
        while True:
            await self.step()
            self._wake.clear()
            running = self._running
            wait = IDLE_WAIT
            if running is not None and running.paused_at is None:
                upcoming = running.next_due()
                if upcoming is not None:
                    wait = min(wait, max(upcoming - self.hub.clock.time(), 0.0))
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def upcoming(self) -> list[dict[str, object]]:
        """The injects still to come, with when they fall due now (for the timeline)."""
        running = self._running
        if running is None:
            return []
        return [
            {"number": p.inject.number, "kind": p.inject.kind.value, "due": int(p.due + running.shift),
             "text": p.inject.describe(self._outage_end(running, p), self.zone)}
            for p in running.plan if p.inject.number not in running.sent
        ]  # fmt: skip

    # -- internals ------------------------------------------------------------------------------------

    def _require(self) -> _Running:
        if self._running is None:
            raise UsageError("ingen øvelse er i gang")
        return self._running

    async def _end(self, running: _Running, by: str) -> Exercise:
        exercise = await self.record.end(running.exercise.id, by=by)
        self._running = None
        try:
            await self._control("end", exercise_id=exercise.id)
        except BeredtError as exc:  # each hub still lifts its outages at their own end
            log.error("could not announce the end of exercise %s: %s", exercise.id, exc)
        log.warning("exercise %s (%s) ended by %s", exercise.id, exercise.name, by)
        return exercise

    async def _control(self, action: str, *, exercise_id: str | None = None, **fields: object) -> bytes:
        exercise = exercise_id or self._require().exercise.id
        return await self.hub.send_exercise_control({"exercise": exercise, "action": action, **fields})

    async def _send(self, running: _Running, planned: Planned) -> None:
        inject = planned.inject
        exercise_id = running.exercise.id
        due = planned.due + running.shift
        if inject.kind == InjectKind.OUTAGE:
            ends = self._outage_end(running, planned)
            assert ends is not None
            node = (
                self.hub.node_id if self._is_me(inject.hub) else audience.node_by_name(self.hub, inject.hub)
            )
            await self._control("outage", node=node.hex(), link=inject.link, until=int(ends))
            await self.record.outage_applied(exercise_id, number=inject.number, hub=inject.hub,
                                             link=inject.link, starts=due, ends=ends)  # fmt: skip
            await self.record.inject_sent(exercise_id, number=inject.number, kind=inject.kind.value,
                                          text=inject.describe(ends, self.zone), due=due)  # fmt: skip
            return
        targets = audience.recipients(self.hub, inject, running.participants)
        if inject.kind == InjectKind.ROLLCALL:
            body: object = {"request": secrets.token_hex(4), "question": _marked(inject.text),
                            "deadline": int(self.hub.clock.time() + (inject.deadline or 0))}  # fmt: skip
            kind = Kind.ROLLCALL
        else:
            body, kind = _marked(inject.text), Kind.TEXT
        payload = body.encode() if isinstance(body, str) else encode_payload(kind, body)
        ids = []
        for node in targets:
            message_id = await self.hub.submit(
                kind, node, payload, priority=inject.priority, status=Status.EXERCISE
            )
            ids.append(message_id.hex())
        await self.record.inject_sent(exercise_id, number=inject.number, kind=inject.kind.value,
                                      text=inject.text, due=due, message_ids=ids,
                                      recipients=[n.hex() for n in targets])  # fmt: skip

    @staticmethod
    def _outage_end(running: _Running, planned: Planned) -> float | None:
        """When an outage ends in this run: moved by the pauses, and never after the exercise."""
        return None if planned.ends is None else min(planned.ends + running.shift, running.end)

    def _is_me(self, name: str) -> bool:
        return name.strip().casefold() in (self.hub.identity.name.casefold(), self.hub.node_id.hex())

    def _name(self, node: bytes) -> str:
        entry = self.hub.roster.get(node)
        return entry.name if entry else node.hex()


def _marked(text: str) -> str:
    return text if text.upper().startswith("ØVELSE") else MARK + text
