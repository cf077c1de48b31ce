"""The Hub: the relay engine in one object. It opens the store, wires router, inbound pipeline and
acks to the links it is given, and runs them in one TaskGroup until cancelled.

The hub knows links only through the transport contract; the service layer opens the concrete
transports and hands them in. Start-up order matters for the durability promise: the store opens
before any link is read, and ``ready`` is set once the first page of every next hop's pending
deliveries is tracked. The rest are resumed a page at a time while the hub serves: they stay on disk
until then, and a duplicate, hop ack or end-to-end ack arriving for one meanwhile is handled as for any
stored message (see ``Router.resume``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any

from hub.core.clock import Clock, SystemClock
from hub.core.errors import RoutingError
from hub.core.frame import BROADCAST, MAX_TTL_MINUTES, Frame, Kind, Priority, Status
from hub.core.identity import Identity
from hub.core.kinds import decode_payload, encode_payload, sealed_by_default
from hub.core.kinds.roster import parse_root_public
from hub.core.seal import Context, SealingKey
from hub.core.tasks import supervised
from hub.core.transport import Transport
from hub.relay import link_view
from hub.relay.acks import AckBatcher
from hub.relay.admission import Admission
from hub.relay.enrolment_requests import EnrolmentRequests
from hub.relay.events import EventBus, HubEvent, LinkHealthChanged, MessageReceived, MessageSent
from hub.relay.exercises import STATE_FILE as EXERCISE_FILE
from hub.relay.exercises import ExerciseState
from hub.relay.group_sends import LEDGER_FILE, GroupSend, GroupSends
from hub.relay.groups import Groups
from hub.relay.health import HealthBoard, HealthChanged
from hub.relay.inbound import Inbound
from hub.relay.link_reading import INBOUND_WORKERS, inbound_queue, read_link, work_inbound
from hub.relay.links import LinkSet
from hub.relay.own_messages import check_may_send, may_send, open_payload, seal_payload
from hub.relay.personal_alarms import PersonalAlarms
from hub.relay.roster import Roster
from hub.relay.roster_follow import RosterFollowUp
from hub.relay.roster_handoff import RosterHandoff
from hub.relay.roster_updates import RosterUpdates
from hub.relay.route_learning import RouteLearning
from hub.relay.router import Router
from hub.relay.settings import RelaySettings
from hub.relay.store import Store
from hub.relay.store_records import Incoming
from hub.relay.team_texts import TeamTexts
from hub.relay.time_challenge import TimeChallenges
from hub.relay.timesync import NeighbourTime

log = logging.getLogger("beredt.hub")


class Hub:
    """A running hub. Use ``async with Hub.open(settings, identity, transports) as hub: await hub.run()``."""

    def __init__(self, config: RelaySettings, identity: Identity, clock: Clock | None = None) -> None:
        self.config = config
        self.identity = identity
        self.sealing = SealingKey(identity.sealing_private, identity.node_id)
        self.clock: Clock = clock or SystemClock()
        self.events = EventBus()
        self.roster = Roster.load(identity.card, config.roster_path)
        root = parse_root_public(config.trust.root) if config.trust.root else None
        self.roster_updates = RosterUpdates(self.roster, root, config.data_dir)
        self.roster_updates.load()
        self.groups = Groups(lambda: self.roster, identity.node_id, config.peers)
        self.group_sends = GroupSends(config.data_dir / LEDGER_FILE)
        self.group_sends.load()
        self.admission = Admission(self.roster, self.clock, self.roster_updates)
        self.health = HealthBoard(on_change=self._publish_health)
        self.store: Store
        self.links: LinkSet
        self.router: Router
        self.acks: AckBatcher
        self.inbound: Inbound
        self.exercise: ExerciseState
        self.roster_follow: RosterFollowUp
        self.roster_handoff: RosterHandoff
        self.ready = asyncio.Event()
        self.personal_alarms = PersonalAlarms(self._submit_alarm, self.clock, report_to=identity.node_id)
        self.team_texts = TeamTexts()
        self.enrolment_requests = EnrolmentRequests(config.data_dir) if config.trust.root_key else None
        """Cards waiting for a coordinator's approval, on the hub that holds the root key."""

    @property
    def node_id(self) -> bytes:
        return self.identity.node_id

    # ---- lifecycle ----------------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        config: RelaySettings,
        identity: Identity,
        transports: Mapping[str, Transport],
        clock: Clock | None = None,
        *,
        new_store: bool = False,
    ) -> AsyncIterator[Hub]:
        """Open the store and wire the engine to ``transports`` (owned, and closed, by the caller).

        ``new_store`` allows starting on an empty store where this hub had one (see ``Store.open``)."""
        hub = cls(config, identity, clock)
        hub.store = await Store.open(
            config.store_path,
            max_messages=config.max_messages,
            max_bytes=config.max_bytes,
            new_store=new_store,
            retention=config.retention,
        )
        try:
            hub._wire(dict(transports))
            yield hub
        finally:
            await hub.store.close()

    def _wire(self, transports: dict[str, Transport]) -> None:
        config = self.config
        kinds = {link.name: link.kind for link in config.links}
        self.links = LinkSet(transports, kinds, config.peers, self.health, self.clock)
        for peer in config.peers if self.roster_updates.root is None else ():  # else the root vouches
            if peer.node_id not in {e.node_id for e in self.roster}:
                log.warning(
                    "peer %s (%s) is not in the roster: frames from it will be refused until"
                    " 'beredt roster add' is run with its card",
                    peer.name,
                    peer.node_id.hex(),
                )
        self.routes = RouteLearning(
            self.identity,
            self.links,
            lambda node: self.roster.get(node) is not None,
            self.clock,
            entry=config.trust.entry,
            roster_version=(lambda: self.roster_updates.version) if self.roster_updates.root else None,
            paid_gaps={link.name: link.announce_gap for link in config.links if link.announce_gap},
        )
        self.router = Router(
            me=self.node_id,
            store=self.store,
            links=self.links,
            policy=config.policy,
            timing=config.timing,
            clock=self.clock,
            events=self.events,
            routes=dict(config.routes),
            default_route=config.default_route,
            learned=self.routes.next_hops,
        )
        self.acks = AckBatcher(
            self.identity,
            self.links,
            self.clock,
            self._submit_ack,
            config.timing.e2e_ack_delay,
            prepare=self._prepare,
        )
        self.inbound = Inbound(
            me=self.node_id,
            admission=self.admission,
            store=self.store,
            router=self.router,
            links=self.links,
            acks=self.acks,
            events=self.events,
            clock=self.clock,
            roster_updates=self.roster_updates,
            commit_window=config.timing.commit_window,
        )
        self.exercise = ExerciseState(
            self.node_id, self.health, self.links, self.clock, self.events, config.data_dir / EXERCISE_FILE
        )
        self.exercise.load()
        self.links.account = self.exercise.usage.account
        self.router.drills_may_pay = self.exercise.may_pay
        self.neighbour_time = NeighbourTime(self.clock)
        self.time_challenges = TimeChallenges(
            self.links, lambda: self.roster, self.clock, self.neighbour_time
        )
        self.inbound.exercise = self.exercise
        self.inbound.routes = self.routes
        self.roster_follow = RosterFollowUp(
            self.roster_updates,
            self.links,
            self.router,
            self.store,
            self.sealing,
            self.clock,
            self.submit,
            announce_interval=config.trust.announce_interval,
        )
        self.roster_handoff = RosterHandoff(
            self.node_id,
            self.roster_updates,
            self._ours,
            self.submit,
            self.clock,
        )
        if may_send(
            self.identity, self.roster, Kind.ROSTER
        ):  # a care home's would be refused: it leaves it to relays
            self.routes.on_needs_roster = self.roster_handoff.offer
        self.roster_updates.on_revoked = self.roster_follow.report_revoked
        self.roster_updates.on_adopted = self.roster_follow.follow_rotations
        if self.roster.version is not None:  # a rotation approved while this hub was down
            self.roster_follow.follow_rotations(self.roster.version)

    async def run(self) -> None:
        """Run every loop until cancelled; ``ready`` once the first of the pending deliveries are resumed
        (the rest follow a page at a time, see ``Router.resume``)."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.router.run(), name="router")
            group.create_task(supervised("acks", self.acks.run), name="acks")
            group.create_task(
                supervised("probes", lambda: self.links.probe_forever(self.config.timing.probe_interval)),
                name="probes",
            )
            group.create_task(supervised("maintenance", self._maintain_forever), name="maintenance")
            group.create_task(supervised("exercise", self.exercise.expire_forever), name="exercise")
            group.create_task(supervised("time", self.time_challenges.run), name="time")
            group.create_task(supervised("routes", self.routes.run), name="routes")
            group.create_task(supervised("team texts", self.team_texts.run), name="team-texts")
            group.create_task(supervised("readdress", self.roster_follow.readdress_forever), name="readdress")
            group.create_task(supervised("revoked", self.roster_follow.withdraw_forever), name="revoked")
            group.create_task(supervised("roster hand-off", self.roster_handoff.run), name="roster-handoff")
            if self.config.trust.announce_interval > 0:
                group.create_task(supervised("roster", self.roster_follow.announce_forever), name="roster")
            resumed = asyncio.Event()
            group.create_task(self.router.resume(resumed), name="resume")
            for name, transport in self.links.transports.items():
                queue = inbound_queue()
                reader = functools.partial(
                    read_link,
                    name,
                    transport,
                    queue,
                    links=self.links,
                    health=self.health,
                    clock=self.clock,
                    neighbour_time=self.neighbour_time,
                    personal_alarms=self.personal_alarms,
                    team_texts=self.team_texts,
                )
                group.create_task(supervised(f"link {name}", reader), name=f"read-{name}")
                for n in range(INBOUND_WORKERS):
                    group.create_task(work_inbound(self.inbound, name, queue), name=f"inbound-{name}-{n}")
            await resumed.wait()
            self.ready.set()
            log.info(
                "hub %s (%s) running with links: %s",
                self.identity.name,
                self.node_id.hex(),
                ", ".join(self.links.transports) or "none",
            )

    async def _maintain_forever(self, interval: float = 600.0) -> None:
        """Forget finished messages past expiry, so the store and its id index stay bounded, and erase what
        is past its retention (at once too: a hub that was off when a retention ended erases as it starts)."""
        await self.shred()
        while True:
            await asyncio.sleep(interval)
            self.inbound.reassembler.expire(self.clock.monotonic())
            if self.clock.trusted:
                purged = await self.store.purge(self.clock.time())
                if purged:
                    log.info("purged %d finished messages past their expiry", purged)
                await self.shred()

    async def shred(self) -> None:
        """Delete what is past its retention and destroy its day keys (only on a clock we trust)."""
        if not self.clock.trusted:
            return
        shredded, keys = await self.store.shred(self.clock.time())
        if keys:
            log.info(
                "retention ended: erased %d stored messages, destroyed day keys %s", shredded, ", ".join(keys)
            )

    def _ours(self, node: bytes) -> bool:
        """A node our own roster trusts: another municipality's would refuse our roster as forged."""
        return self.roster.get(node) is not None and self.roster.is_ours(node)

    def _publish_health(self, change: HealthChanged) -> None:
        self.events.publish(
            LinkHealthChanged(change.link, change.peer, change.old.label, change.new.label, change.reason)
        )

    # ---- the application side -----------------------------------------------------------------------

    async def submit(
        self,
        kind: Kind,
        recipient: bytes,
        payload: bytes,
        *,
        priority: Priority = Priority.NORMAL,
        ttl_minutes: int | None = None,
        status: Status = Status.ACTUAL,
        public: bool = False,
        via: str | None = None,
        durable: bool = True,
    ) -> bytes:
        """Sign, store durably and queue a message; return its id once it is safe on disk (or, with
        ``durable=False``, once it is committed: see ``hub.relay.store``).

        A kind that may carry personal data is sealed to its recipients (every reader in the roster for a
        broadcast) unless ``public``; ``SealError`` if it cannot be. ``via`` names a link to try first when
        it is usable; the policy still decides otherwise."""
        if via is not None and via not in self.links.transports:
            raise RoutingError(
                f"ingen forbindelse ved navn {via!r}; forbindelser: {', '.join(self.links.transports)}"
            )
        to_self = recipient == self.node_id
        out = self._prepare(kind, recipient, payload, priority, ttl_minutes, status, public=public)
        frame, wire, hops = out.frame, out.wire, list(out.hops)
        await self.store.accept(
            frame,
            wire,
            hops=hops,
            local=True,
            for_me=to_self,
            via=None,
            now=self.clock.time(),
            durable=durable,
        )
        if to_self:  # in this hub's own inbox, as if received: nothing to route
            event = MessageReceived(
                frame.id.hex(), self.node_id.hex(), kind.name.lower(), "local", priority.name.lower()
            )
            self.events.publish(event)
            return frame.id
        self.router.track(frame.id, wire, recipient, priority, frame.expires, hops, prefer=via)
        if kind not in (Kind.ACK, Kind.ROSTER):  # the hub's own traffic: no one's outbox or log book
            self.events.publish(
                MessageSent(
                    frame.id.hex(),
                    recipient.hex(),
                    kind.name.lower(),
                    priority.name.lower(),
                    status.name.lower(),
                )
            )
        return frame.id

    def _prepare(
        self,
        kind: Kind,
        recipient: bytes,
        payload: bytes,
        priority: Priority,
        ttl_minutes: int | None,
        status: Status,
        *,
        public: bool = False,
    ) -> Incoming:
        """A message of this hub's, sealed if it may carry personal data, signed and routed; not stored."""
        check_may_send(self.identity, self.roster, kind)
        to_self = recipient == self.node_id
        hops = [] if to_self else self.router.delivery_hops(recipient)
        if not hops and not to_self:
            raise RoutingError(
                f"ingen rute til {recipient.hex()}: ingen nabo melder en vej dertil nu (er den slukket eller"
                " endnu ikke tilmeldt?); en fast vej står under [routes]"
            )
        ttl = ttl_minutes or self.config.timing.default_ttl_minutes
        if not 0 < ttl <= MAX_TTL_MINUTES:
            raise ValueError(f"ttl_minutes must be 1..{MAX_TTL_MINUTES}")
        sealed = sealed_by_default(kind, public=public)
        context = Context(self.node_id, recipient, kind, int(self.clock.time()), secrets.randbits(32))
        if sealed:
            payload = seal_payload(self.sealing, self.roster, payload, context)
        frame = self.identity.sign(
            kind,
            recipient,
            payload,
            created=context.created,
            ttl_minutes=ttl,
            priority=priority,
            status=status,
            sealed=sealed,
            nonce=context.nonce,
        )
        return Incoming(frame, frame.encode(), tuple(hops), local=True, for_me=to_self, via=None)

    async def submit_group(
        self,
        kind: Kind,
        group: str,
        payload: bytes,
        *,
        priority: Priority = Priority.NORMAL,
        ttl_minutes: int | None = None,
        status: Status = Status.ACTUAL,
        public: bool = False,
    ) -> GroupSend:
        """Send ``payload`` to every member ``group`` has now, one message each (sealed to that member,
        acknowledged by it), recorded as one group message. ``RoutingError`` for a group without members
        or a member without a route, before anything is stored."""
        members = self.groups.members(group)
        if not members:
            known = ", ".join(self.groups.names()) or "ingen"
            raise RoutingError(f"gruppen {group!r} har ingen medlemmer i rosteren; grupper: {known}")
        check_may_send(self.identity, self.roster, kind)
        unroutable = [m.hex() for m in members if not self.router.delivery_hops(m)]
        if unroutable:
            raise RoutingError(
                f"ingen rute til {', '.join(unroutable)} i gruppen {group!r}: ingen nabo melder en vej dertil"
                " nu (er de slukket eller endnu ikke tilmeldt?); en fast vej står under [routes]"
            )

        def submit_one(member: bytes) -> Awaitable[bytes]:
            return self.submit(kind, member, payload, priority=priority, ttl_minutes=ttl_minutes,
                               status=status, public=public)  # fmt: skip

        name = self.groups.canonical(group) or group
        return await self.group_sends.send(
            name, members, submit_one, kind=kind.name.lower(), now=self.clock.time()
        )

    async def send_exercise_control(self, body: dict[str, object]) -> bytes:
        """Broadcast a signed EXERCISE_CONTROL (CAP status Exercise) to every hub, and act on it here too:
        the coordinator's own hub takes part in its exercise like any other."""
        payload = encode_payload(Kind.EXERCISE_CONTROL, body)
        decoded = decode_payload(Kind.EXERCISE_CONTROL, payload)
        assert isinstance(decoded, dict)
        # a start is in force here before its control goes, an end after: the control is the exercise's
        # frame either way (what the links spend on it, and whether it may use a paid link)
        starts = body.get("action") == "start"
        if starts:
            self.exercise.act(decoded, self.node_id.hex())
        message_id = await self.submit(
            Kind.EXERCISE_CONTROL, BROADCAST, payload, priority=Priority.URGENT, status=Status.EXERCISE
        )
        if not starts:
            self.exercise.act(decoded, self.node_id.hex())
        return message_id

    def open_payload(self, frame: Frame) -> bytes:
        """The payload of ``frame`` in clear, opened if it was sealed; ``SealError`` if this hub is not
        among those it was sealed to (nor its sender)."""
        return open_payload(self.sealing, self.roster, frame)

    async def _submit_alarm(self, kind: Kind, recipient: bytes, payload: bytes, priority: Priority) -> bytes:
        return await self.submit(kind, recipient, payload, priority=priority)

    async def _submit_ack(
        self, kind: Kind, recipient: bytes, payload: bytes, priority: Priority, ttl: int, status: Status
    ) -> bytes:
        # An end-to-end ack is made only after the message it acknowledges is durable. Its own commit is
        # fsynced with the next durable one: a power cut before that loses the ack, as a cut a moment
        # before it was made would.
        return await self.submit(
            kind, recipient, payload, priority=priority, ttl_minutes=ttl, status=status, durable=False
        )

    def subscribe(self) -> AsyncIterator[HubEvent]:
        return self.events.subscribe()

    def reload_roster(self) -> int:
        """Re-read the local roster file and the signed version; announce a newer signed version now."""
        fresh = Roster.load(self.identity.card, self.config.roster_path)
        self.roster_updates.rebind(fresh)
        self.roster = self.admission.roster = fresh
        if self.roster_updates.load():
            self.roster_follow.announce_now.set()
        log.info("roster reloaded: %d nodes", len(fresh))
        return len(fresh)

    async def links_summary(self) -> list[dict[str, Any]]:
        """One row per link and peer for people (``/v1/links``, the console): see hub.relay.link_view."""
        return await link_view.links_summary(self)

    def peers_summary(self) -> list[dict[str, Any]]:
        return link_view.peers_summary(self)
