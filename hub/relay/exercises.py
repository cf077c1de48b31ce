"""What a hub knows of the exercise it takes part in, and the simulated outages that exercise imposes.

A coordinator's hub broadcasts signed EXERCISE_CONTROL frames (CAP status Exercise, staff or region
senders only: admission refuses anyone else). Every hub that admits one applies it here:

    start   the exercise is active until ``until`` (its planned end): consoles show the exercise banner
    pause / resume   shown on the banner; the coordinator's hub holds back its injects meanwhile
    outage  within the active exercise only: ``node``'s ``link`` counts as down until ``until``. The
            named hub treats the whole link as down; every other hub treats that link to ``node`` as down.
            Nothing is closed: the health board reports the pair down, so the router fails over for real,
            and frames arriving over it are ignored, so senders fail over too.
    end     the exercise is over: every outage it imposed is lifted at once
    summary the coordinator asks for this hub's own account of the exercise (also for the one just over)

A hub that takes part in another hub's exercise owes that coordinator a summary of its own link changes
and link use (``SummaryDue`` in ``summaries_due``; ``hub.exercise.summary`` sends it): when the exercise is
over here, and whenever the coordinator asks.

Outages and the exercise itself also end on their own at ``until`` (``expire``, run every second by the
hub), so a lost "end" cannot leave a hub cut off. A control for another exercise than the active one, or
one that is not EXERCISE status, changes nothing. At most ``MAX_OUTAGES`` outages are held per exercise.

The state is kept in ``exercise.json`` in the data folder, so a hub restarted mid-exercise still shows the
banner and still treats the simulated links as down (until their end, checked again at load). The file
also keeps the exercise this hub took part in last and whether its final summary is still unsent, so a
restart between an exercise's end and the summary's sending sends it after all, and the coordinator can
ask for it (``collect``) after a restart; an exercise whose window ended while the hub was stopped is
over at load, and its final summary falls due then.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hub.core.clock import Clock
from hub.core.errors import ProtocolError
from hub.core.files import write_atomically
from hub.core.frame import Frame, Kind, Status
from hub.core.kinds import decode_payload
from hub.relay.events import EventBus, ExerciseChanged
from hub.relay.exercise_usage import USAGE_FILE, ExerciseUsage
from hub.relay.health import HealthBoard
from hub.relay.link_reasons import Reason, Why
from hub.relay.links import LinkSet

log = logging.getLogger("beredt.exercise")

EXPIRY_CHECK = 1.0
MAX_OUTAGES = 64
"""Simulated outages one exercise may hold at a hub: even a staff hub's controls stay bounded."""
STATE_FILE = "exercise.json"
MAX_WINDOW = 14 * 86400
"""The longest an exercise may last at a hub, whatever its control says (a scenario allows no more)."""


@dataclass(frozen=True, slots=True)
class Outage:
    link: str
    peer: str | None
    """The peer (hex id) on ``link`` treated as down, or None: the whole link (this hub is the one out)."""
    until: float
    node: str
    """The hub whose link is out (hex id), as the control named it."""


@dataclass(slots=True)
class ActiveExercise:
    id: str
    name: str
    until: float
    coordinator: str
    """Hex id of the hub that started it."""
    paused: bool = False
    outages: list[Outage] = field(default_factory=list)
    started: float = 0.0
    """When this hub learnt of the start (its own clock): its summary counts from here."""
    paid: bool = False
    """The scenario lets the exercise's frames use paid links (satellite), as real traffic of their
    priority does; by default they never do."""

    def view(self) -> dict[str, object]:
        """JSON for the console banner and the API."""
        outages = [{"link": o.link, "node": o.node, "until": int(o.until)} for o in self.outages]
        return {"id": self.id, "name": self.name, "until": int(self.until), "paused": self.paused,
                "coordinator": self.coordinator, "outages": outages}  # fmt: skip


@dataclass(frozen=True, slots=True)
class SummaryDue:
    """This hub owes ``coordinator`` (hex id) its account of ``exercise`` from ``started`` until now."""

    exercise: str
    coordinator: str
    started: float
    final: bool
    """The exercise is over here (else the coordinator asked while it runs)."""


MAX_DUE = 16
"""Summaries waiting to be sent: a coordinator asking again and again cannot pile them up."""


class ExerciseState:
    """The active exercise at this hub (at most one) and the outages applied for it."""

    def __init__(
        self,
        me: bytes,
        health: HealthBoard,
        links: LinkSet,
        clock: Clock,
        events: EventBus,
        path: Path | None = None,
    ) -> None:
        self.path = path
        """Where the state is kept across restarts (None: only in memory)."""
        self.me = me.hex()
        self.health = health
        self.links = links
        self.clock = clock
        self.events = events
        self.active: ActiveExercise | None = None
        self.usage = ExerciseUsage(None if path is None else path.with_name(USAGE_FILE))
        """What this hub's links spent on each exercise's frames, metered."""
        self.ignored = 0
        """Controls that named no active exercise or were not marked Exercise."""
        self.last: ActiveExercise | None = None
        """The exercise this hub took part in last, once over: its coordinator may still ask for a summary."""
        self.summaries_due: deque[SummaryDue] = deque(maxlen=MAX_DUE)
        self.final_unsent: str | None = None
        """The exercise (``last``) whose final summary is due and not yet sent."""
        self.summary_wanted = asyncio.Event()
        """Set when a summary is due (``summaries_due``)."""
        self._applied: deque[bytes] = deque(maxlen=MAX_DUE)
        """Ids of the controls applied last: the hub applies one as it arrives and again once stored, and
        a summary asked for once is sent once."""

    def taking_part(self) -> bool:
        """True while this hub is in an active exercise (its time window not yet over)."""
        return self.active is not None and self.clock.time() < self.active.until

    def may_pay(self) -> bool:
        """Whether the exercise this hub takes part in lets its frames use a paid link (satellite)."""
        return self.taking_part() and self.active is not None and self.active.paid

    def default_status(self) -> Status:
        """The CAP status of a message a person creates here without choosing one: Exercise while this hub
        takes part in an exercise, so nothing typed in it can be mistaken for real; Actual otherwise."""
        return Status.EXERCISE if self.taking_part() else Status.ACTUAL

    def load(self) -> None:
        """Take up the state saved before a restart, with what has expired meanwhile left out."""
        self.usage.load()
        if self.path is None or not self.path.exists():
            return
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            if "id" in saved:  # written before the file kept the last exercise: the active one alone
                saved = {"active": saved}
            active, outages = _exercise(saved.get("active"))
            last, _ = _exercise(saved.get("last"))
            unsent = saved.get("final_unsent")
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.error("ignoring the saved exercise state %s: %s", self.path, exc)
            return
        self.last = last
        if last is not None and unsent == last.id:
            self._owe(last, final=True)
        if active is None:
            return
        now = self.clock.time()
        self.active = active
        if active.until <= now:
            self._finish(now, "its time window ended while the hub was stopped")
            self._save_state()
            return
        if self.usage.latest() != active.id:
            self.usage.begin(active.id)
        for outage in outages:
            if outage.until > now and len(active.outages) < MAX_OUTAGES:
                active.outages.append(outage)
                reason = Reason(Why.SIMULATED, params={"exercise": active.name})
                self.health.simulate_down(outage.link, outage.peer, reason, self.clock.monotonic())
        log.warning("exercise %s (%s) still on after a restart", active.id, active.name)

    def apply(self, frame: Frame) -> bool:
        """Act on an admitted EXERCISE_CONTROL frame; False when it changes nothing."""
        if frame.kind is not Kind.EXERCISE_CONTROL or frame.status is not Status.EXERCISE:
            self.ignored += 1
            return False
        if frame.id in self._applied:
            return False
        self._applied.append(frame.id)
        try:
            body = decode_payload(Kind.EXERCISE_CONTROL, frame.payload)
        except ProtocolError as exc:
            log.warning("undecodable exercise control from %s: %s", frame.sender.hex(), exc)
            self.ignored += 1
            return False
        assert isinstance(body, dict)
        return self.act(body, frame.sender.hex())

    def act(self, body: dict[str, object], sender: str) -> bool:
        """Apply a decoded control ``body`` signed by ``sender`` (hex id)."""
        exercise, action = str(body["exercise"]), str(body["action"])
        now = self.clock.time()
        until = float(body.get("until", 0) or 0)  # type: ignore[arg-type]
        if action == "start":
            if self.last is not None and self.last.id == exercise:
                self.ignored += 1  # a start that arrives after its own end (controls may be reordered)
                return False
            if self.active is not None and self.active.id != exercise:
                self._finish(now, "replaced by a newer exercise")
            if self.active is None:
                until = min(until, now + MAX_WINDOW)
                self.active = ActiveExercise(
                    exercise,
                    str(body.get("name", "")),
                    until,
                    sender,
                    started=now,
                    paid=bool(body.get("paid")),
                )
                self.usage.begin(exercise)
                log.warning("exercise %s (%s) started by %s", exercise, self.active.name, sender)
            self._publish()
            return True
        if action == "summary":
            return self._summary_asked(exercise, sender)
        active = self.active
        if active is None or active.id != exercise:
            self.ignored += 1
            return False
        if action in ("pause", "resume"):
            active.paused = action == "pause"
        elif action == "end":
            self._finish(now, "ended by the coordinator")
        elif action == "outage":
            return self._outage(active, body, until, now)
        self._publish()
        return True

    def _summary_asked(self, exercise: str, sender: str) -> bool:
        asked = next((e for e in (self.active, self.last) if e is not None and e.id == exercise), None)
        if asked is None or asked.coordinator != sender:
            self.ignored += 1
            return False
        self._owe(asked, final=asked is self.last)
        return True

    def _owe(self, exercise: ActiveExercise, *, final: bool) -> None:
        if exercise.coordinator == self.me:
            return  # the coordinator's report reads its own files
        self.summaries_due.append(SummaryDue(exercise.id, exercise.coordinator, exercise.started, final))
        self.summary_wanted.set()
        if final:
            self.final_unsent = exercise.id

    def summary_sent(self, due: SummaryDue) -> None:
        """``due`` reached the store to be sent: a final one is no longer owed after a restart."""
        if due.final and self.final_unsent == due.exercise:
            self.final_unsent = None
            self._save_state()

    def _outage(self, active: ActiveExercise, body: dict[str, object], until: float, now: float) -> bool:
        node, link = str(body.get("node", "")), str(body.get("link", ""))
        if not node or not link or until <= now or link not in self.links.transports:
            self.ignored += 1
            return False  # not a link this hub has: nothing here to take down
        peer = None if node == self.me else node
        if peer is not None and bytes.fromhex(peer) not in self.links.peers:
            self.ignored += 1
            return False
        if len(active.outages) >= MAX_OUTAGES:
            log.warning("exercise %s: more than %d outages; this one is ignored", active.id, MAX_OUTAGES)
            self.ignored += 1
            return False
        until = min(until, active.until)
        active.outages.append(Outage(link, peer, until, node))
        self.health.simulate_down(
            link, peer, Reason(Why.SIMULATED, params={"exercise": active.name}), self.clock.monotonic()
        )
        self._publish()
        return True

    def expire(self) -> None:
        """Lift outages whose time is up, end an exercise past its planned end, and keep the metered
        usage."""
        self.usage.save_if_changed()
        active = self.active
        if active is None:
            return
        now = self.clock.time()
        if now >= active.until:
            self._finish(now, "its time window is over")
            self._publish()
            return
        due = [o for o in active.outages if o.until <= now]
        for outage in due:
            active.outages.remove(outage)
            self._lift(outage)
        if due:
            self._publish()

    async def expire_forever(self) -> None:
        while True:
            self.expire()
            await asyncio.sleep(EXPIRY_CHECK)

    def _finish(self, now: float, why: str) -> None:
        active = self.active
        if active is None:
            return
        outages, active.outages = active.outages, []
        for outage in outages:
            self._lift(outage)
        log.warning("exercise %s (%s) is over: %s", active.id, active.name, why)
        self.active = None
        self.last = active
        self._owe(active, final=True)

    def _lift(self, outage: Outage) -> None:
        if not any(o.link == outage.link and o.peer == outage.peer for o in self._others(outage)):
            self.health.lift_simulated(outage.link, outage.peer, self.clock.monotonic())

    def _others(self, outage: Outage) -> list[Outage]:
        return [o for o in (self.active.outages if self.active else []) if o is not outage]

    def _publish(self) -> None:
        self._save_state()
        self.events.publish(ExerciseChanged(None if self.active is None else self.active.view()))

    def _save_state(self) -> None:
        if self.path is None:
            return
        saved = {
            "active": None if self.active is None else asdict(self.active),
            "last": None if self.last is None else asdict(self.last),
            "final_unsent": self.final_unsent,
        }
        try:
            if not any(saved.values()):
                self.path.unlink(missing_ok=True)
            else:
                write_atomically(self.path, json.dumps(saved), mode=0o600)
        except OSError as exc:  # the exercise goes on; only a restart would forget it
            log.error("could not save the exercise state to %s: %s", self.path, exc)


def _exercise(saved: dict[str, object] | None) -> tuple[ActiveExercise | None, list[Outage]]:
    """An exercise as ``_save_state`` wrote it (outages apart: the caller decides which still hold)."""
    if saved is None:
        return None, []
    fields = dict(saved)
    outages = [Outage(**o) for o in fields.pop("outages")]  # type: ignore[attr-defined]
    return ActiveExercise(**fields), outages  # type: ignore[arg-type]
