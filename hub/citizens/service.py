"""The follow-up of power-dependent citizens on a running hub: lists out, visits in, alarms, retention.

One ``FollowUp`` per hub that holds a register. ``run()`` reads the hub's event bus for received
FOLLOWUP_LIST and VISIT messages (and, once at start, those stored while it was not running), and ticks
on the hub's clock: (1) it builds the lists of outages marked since the last tick, by this hub's API or
by the CLI writing to ``citizens.db``, and sends each team's hubs the citizens they have not been sent
yet, sealed like every message; (2) it sends on the visits recorded here for lists received from
another hub; (3) it raises alarms for citizens not yet seen whose battery runs out within the margin;
(4) it deletes incident data past retention and access-log lines past their time. State lives in
``citizens.db`` only, so the CLI and the hub see the same thing.

Trust: a VISIT counts only from a hub the citizen's list was sent to; a FOLLOWUP_LIST is taken only
from a node the roster lets send one (staff and region nodes), and never into an outage another hub
started. Everything personal is read through ``Register`` with a ``Reader`` whose role may.

The small API other parts build on (the console's field and board pages):

- ``mark_outage(reader, districts=..., addresses=..., started=None)`` → outage id
- ``record_visit(citizen, outcome, by=reader, at=None, outage=None)`` → True if new (also what a coded
  visit from a team's handheld becomes, ``hub.citizens.field_visits``)
- ``followup_view(reader, district=None)`` → rows, most urgent first
- ``district_summary(reader)`` → one row per district
- ``request_evacuation(reader, citizens, centre=None)`` → the RESOURCE_REQUEST's request id
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hub.citizens.desk import Desk
from hub.citizens.field_visits import STATE_FILE, FieldVisits
from hub.citizens.followup import (
    Entry,
    Outage,
    Visit,
    affected,
    due_alarms,
    entries_from_list,
    list_bodies,
    merge,
    urgency_key,
)
from hub.citizens.incidents import Incidents
from hub.citizens.records import Citizen
from hub.citizens.register import HUB_READER, Reader, Register
from hub.citizens.settings import CitizensConfig
from hub.core.errors import BeredtError
from hub.core.frame import Kind, Priority, decode_frame
from hub.core.kinds import decode_payload, encode_payload
from hub.relay.events import MessageReceived

if TYPE_CHECKING:
    from hub.relay.hub import Hub
    from hub.relay.store_records import StoredMessage

log = logging.getLogger("beredt.citizens")
CATCH_UP_BATCH = 500
UPKEEP_INTERVAL = 60.0  # seconds between retention runs


@dataclass(frozen=True, slots=True)
class Alarm:
    """A citizen not yet seen whose equipment runs out soon: for the coordinator's log book and board."""

    outage: str
    citizen: str
    district: str
    runs_out: float
    equipment: tuple[str, ...]

    def text(self, hours_left: float) -> str:
        """The log book's line: the register id, never a name, and no equipment (health data), which the
        citizen list shows to those allowed to see it."""
        hours = f"{max(0.0, hours_left):.1f}".replace(".", ",")  # Danish decimal comma
        return (
            f"Borger {self.citizen} i {self.district or 'ukendt distrikt'} er ikke set, og udstyret har"
            f" {hours} timer tilbage (se borgerlisten)"
        )


AlarmSink = Callable[[Alarm], Awaitable[None]]


class FollowUp(Desk):
    def __init__(self, hub: Hub, register: Register, incidents: Incidents, config: CitizensConfig) -> None:
        super().__init__(register, incidents, config, hub.clock)
        self.hub = hub
        self._sinks: list[AlarmSink] = []
        self._dispatching = asyncio.Lock()
        self._reporting = asyncio.Lock()
        self._generation: tuple[int, float] | None = None  # the register as last built into lists
        self._upkept_at = float("-inf")  # hub time of the last retention and access-log upkeep
        self.field_visits = FieldVisits(self, hub.config.data_dir / STATE_FILE)
        hub.team_texts.read_with(self.field_visits.read)  # coded visits from teams' handhelds

    @classmethod
    async def open_for(cls, hub: Hub, config: CitizensConfig | None = None) -> FollowUp:
        """Open the register in the hub's data folder; its key beside the identity key (made if new)."""
        register, incidents = await cls.open_parts(hub.config.data_dir, hub.clock, create=True)
        return cls(hub, register, incidents, config or CitizensConfig())

    def on_alarm(self, sink: AlarmSink) -> None:
        """Call ``sink`` for every alarm raised (the console writes it to the log book)."""
        self._sinks.append(sink)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._pump_events(), name="citizens-events")
            group.create_task(self._catch_up(), name="citizens-catch-up")
            group.create_task(self._tick_loop(), name="citizens-tick")

    # ---- the API ------------------------------------------------------------------------------------

    async def mark_outage(
        self,
        reader: Reader,
        *,
        districts: Sequence[str] = (),
        addresses: Sequence[str] = (),
        started: float | None = None,
    ) -> str:
        """Record an outage and send its lists before returning."""
        outage = await super().mark_outage(reader, districts=districts, addresses=addresses, started=started)
        await self._dispatch_new(self.hub.clock.time())
        return outage

    async def record_visit(
        self,
        citizen: str,
        outcome: str,
        *,
        by: Reader,
        at: int | None = None,
        outage: str | None = None,
    ) -> bool:
        """Record what a visit found; on a team's hub also send it to the hub that sent the list.
        True if new, False if the same visit (citizen, outage, moment) was already recorded."""
        new = await super().record_visit(citizen, outcome, by=by, at=at, outage=outage)
        await self._report_visits()
        return new

    async def request_evacuation(
        self, reader: Reader, citizens: Sequence[str], *, centre: str | None = None
    ) -> str:
        """Ask the evacuation centre's hub for transport and beds for ``citizens`` (ids only; the text
        names the equipment, not the people). The centre is the one configured for their district."""
        centre, body = await self.evacuation(reader, citizens, centre=centre)
        await self.hub.submit(Kind.RESOURCE_REQUEST, bytes.fromhex(centre),
                              encode_payload(Kind.RESOURCE_REQUEST, body), priority=Priority.LIFE_SAFETY,
                              ttl_minutes=self.config.ttl_minutes)  # fmt: skip
        await self.evacuation_sent(reader, body)
        return str(body["request"])

    # ---- the loops ----------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while True:
            try:
                await self.tick()
            except BeredtError:
                log.exception("citizens: the follow-up tick failed; trying again at the next")
            await asyncio.sleep(self.config.tick_interval)

    async def tick(self) -> None:
        """One round: send the lists of new outages, raise due alarms, delete what is past retention."""
        now = self.hub.clock.time()
        await self._dispatch_new(now)
        await self._report_visits()
        await self._raise_alarms(now)
        if abs(now - self._upkept_at) >= UPKEEP_INTERVAL:  # retention is in days: no writes every tick
            self._upkept_at = now
            gone = await self.incidents.purge(now, self.config.retention_days * 86400.0)
            if gone:
                await self.register.log(HUB_READER, "slettet efter opbevaringstid", ", ".join(gone))
            await self.register.prune_access_log(now - self.config.access_log_days * 86400.0)

    async def _dispatch_new(self, now: float) -> None:
        """Build the lists of new outages, add people imported since into running ones, and send every
        team the citizens it has not been sent yet (a send that failed is tried again next time)."""
        async with self._dispatching:  # the API and the tick may both find the same new outage
            fresh = await self.incidents.undispatched()
            generation = await self.register.generation()
            running = await self.incidents.outages(active_only=True, source="")
            if fresh or generation != self._generation:
                self._generation = generation
                people = await self.register.citizens(HUB_READER, why="opfølgningslister bygget")
                for outage in running:
                    await self._build(outage, people, now, new=outage in fresh)
            for outage in running:
                await self._send_lists(outage, now)

    async def _build(self, outage: Outage, people: list[Citizen], now: float, *, new: bool) -> None:
        entries = affected(people, outage, self.config.teams)
        held = {e.citizen: e for e in await self.incidents.entries(outage=outage.id)}
        # a person imported during the outage joins it (and goes to the team at once); a changed record
        # is updated here, while the team keeps the list it has
        await self.incidents.put_entries([e for e in entries if held.get(e.citizen) != e])
        if new:
            await self.incidents.dispatched(outage.id, now)
            unassigned = sorted({e.district for e in entries if e.team is None})
            if unassigned:
                log.warning(
                    "outage %s: citizens in districts without a team: %s", outage.id, ", ".join(unassigned)
                )
            log.info("outage %s: %d citizens on follow-up lists", outage.id, len(entries))

    async def _send_lists(self, outage: Outage, now: float) -> None:
        entries = sorted(await self.incidents.entries(outage=outage.id), key=urgency_key)
        for team in sorted({e.team for e in entries if e.team}):
            for node in self._team_nodes(team):  # each of the team's devices gets its own sealed copy
                sent = await self.incidents.sent_to(outage.id, node)
                waiting = [e for e in entries if e.team == team and e.citizen not in sent]
                for body in list_bodies(waiting, outage) if waiting else []:
                    payload = encode_payload(Kind.FOLLOWUP_LIST, body)
                    try:
                        message = await self.hub.submit(Kind.FOLLOWUP_LIST, bytes.fromhex(node), payload,
                                                        priority=Priority.URGENT,
                                                        ttl_minutes=self.config.ttl_minutes)  # fmt: skip
                    except BeredtError as exc:
                        log.warning("outage %s: list for %s not sent yet (%s); trying again at the next tick",
                                    outage.id, node, exc)  # fmt: skip
                        break
                    citizens = [str(c["id"]) for c in body["citizens"]]  # type: ignore[attr-defined]
                    await self.incidents.list_sent(
                        outage.id, node, citizens, message.hex(), now, len(payload)
                    )

    async def _report_visits(self) -> None:
        """Send the visits recorded here (by the API or the CLI) to the hubs that sent their lists; one
        that could not be sent now is tried again at the next tick."""
        async with self._reporting:
            for visit, to in await self.incidents.unreported():
                body = {
                    "citizen": visit.citizen,
                    "outcome": visit.outcome,
                    "at": visit.at,
                    "outage": visit.outage,
                }
                payload = encode_payload(Kind.VISIT, body)
                try:
                    message = await self.hub.submit(
                        Kind.VISIT, bytes.fromhex(to), payload, priority=Priority.URGENT,
                        ttl_minutes=self.config.ttl_minutes,
                    )  # fmt: skip
                except BeredtError as exc:
                    log.warning("citizens: visit for %s not sent yet (%s); trying again at the next tick",
                                visit.citizen, exc)  # fmt: skip
                    continue
                await self.incidents.reported(visit, message.hex())

    async def _raise_alarms(self, now: float) -> None:
        own = {o.id for o in await self.incidents.outages(active_only=True, source="")}
        entries = [e for e in merge([await self.incidents.entries()]) if e.outage in own]
        if not entries:
            return
        alarmed = set(await self.incidents.alarms())
        visits = await self.incidents.visits()
        for entry in due_alarms(entries, visits, alarmed, now, self.config.alarm_hours * 3600.0):
            if not await self.incidents.add_alarm(entry.outage, entry.citizen, now):
                continue
            alarm = Alarm(entry.outage, entry.citizen, entry.district, entry.runs_out, entry.equipment)
            log.warning("citizens: alarm for %s in outage %s (%.1f h left, not seen)", entry.citizen,
                        entry.outage, entry.hours_left(now))  # fmt: skip
            for sink in self._sinks:
                await sink(alarm)

    async def _pump_events(self) -> None:
        async for event in self.hub.subscribe():
            if isinstance(event, MessageReceived) and event.kind in ("followup_list", "visit"):
                stored = await self.hub.store.message(bytes.fromhex(event.id))
                if stored is not None:
                    await self._guarded_take(stored)

    async def _catch_up(self) -> None:
        """Lists and visits stored while the service was not running (taking one twice changes nothing).
        Started after the event pump has subscribed, so nothing arrives unseen between the two."""
        await asyncio.sleep(0)
        since = 0.0
        while batch := await self.hub.store.inbox(limit=CATCH_UP_BATCH, since=since, oldest_first=True):
            for stored in batch:
                if stored.kind in (Kind.FOLLOWUP_LIST, Kind.VISIT):
                    await self._guarded_take(stored)
            since = batch[-1].accepted_at
            if len(batch) < CATCH_UP_BATCH:
                break

    async def _guarded_take(self, stored: StoredMessage) -> None:
        try:
            await self._received(stored)
        except BeredtError:
            log.exception("citizens: could not take in message %s", stored.id.hex())

    async def _received(self, stored: StoredMessage) -> None:
        if not stored.for_me:
            return
        frame = decode_frame(stored.wire)
        body = decode_payload(frame.kind, self.hub.open_payload(frame))
        assert isinstance(body, dict)
        sender = frame.sender.hex()
        if frame.kind is Kind.FOLLOWUP_LIST:
            await self._take_list(body, sender)
        else:
            await self._take_visit(body, sender)

    async def _take_list(self, body: dict[str, Any], sender: str) -> None:
        outage = Outage(body["outage"], float(body["started"]))
        if await self.incidents.source_of(outage.id) not in (None, sender):
            log.warning("citizens: list from %s ignored: outage %s belongs to another hub", sender, outage.id)
            return
        await self.incidents.add_outage(outage, source=sender)
        entries = entries_from_list(body, self.hub.node_id.hex())
        people = {
            c.id: c for c in await self.register.citizens(HUB_READER, why=f"liste {outage.id} modtaget")
        }
        known = [Entry(e.citizen, e.outage, people[e.citizen].district if e.citizen in people else "",
                       e.runs_out, e.equipment, e.team) for e in entries]  # fmt: skip
        await self.incidents.put_entries(known)
        missing = sum(e.citizen not in people for e in entries)
        log.info("outage %s: list part %s/%s from %s, %d citizens (%d not in this hub's register)",
                 outage.id, body.get("part"), body.get("parts"), sender, len(entries), missing)  # fmt: skip

    async def _take_visit(self, body: dict[str, Any], sender: str) -> None:
        citizen = body["citizen"]
        entry = self._entry_for(await self.incidents.entries(), citizen, body.get("outage"))
        if entry is None or entry.team is None or sender not in self._team_nodes(entry.team):
            # a visit counts only from the team the citizen's list went to
            log.warning(
                "citizens: visit for %s from %s ignored: not on a list sent to that hub", citizen, sender
            )
            return
        visit = Visit(citizen, entry.outage, body["outcome"], int(body["at"]), sender)
        if await self.incidents.add_visit(visit, self.hub.clock.time()):
            log.info("citizens: visit for %s: %s", citizen, visit.outcome)
        else:
            log.info("citizens: visit for %s at %d from %s already recorded", citizen, visit.at, sender)

    def _team_nodes(self, team: str) -> tuple[str, ...]:
        """Every hub of the team whose first hub is ``team`` (an entry names the team by it)."""
        for nodes in self.config.teams.values():
            if nodes and nodes[0] == team:
                return nodes
        return (team,)
