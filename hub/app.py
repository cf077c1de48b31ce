"""The Hub: the composition root. It opens the store and the links, wires router, inbound pipeline,
acks and API together, and runs them in one TaskGroup until asked to stop.

Only this module knows the concrete transports (through ``transports.registry``). Start-up order
matters for the durability promise: the store opens (and resumes every pending delivery) before any
link is read, and the API accepts messages only once the store is ready. Shutdown (SIGTERM) stops the
API and the links first, then flushes the store, so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from hub.acks import AckBatcher
from hub.clock import PLAUSIBLE_EPOCH, Clock, SystemClock
from hub.config import HubConfig
from hub.errors import ConfigError, RoutingError
from hub.events import EventBus, HubEvent, LinkHealthChanged, MessageSent
from hub.frame import BROADCAST, MAX_TTL_MINUTES, Kind, Priority, Status, decode_frame
from hub.health import HealthBoard, HealthChanged
from hub.identity import Identity
from hub.inbound import Inbound
from hub.links import LinkSet
from hub.roster import Roster
from hub.router import Router
from hub.seal import seal
from hub.store import Store
from hub.trust import Admission
from transports.base import LinkChanged, Received, TimeHint, Transport, TransportContext
from transports.registry import open_transport

log = logging.getLogger("beredt.hub")

_INBOUND_WORKERS = 32


class Hub:
    """A running hub. Use ``async with Hub.open(config) as hub: await hub.serve_forever()``."""

    def __init__(self, config: HubConfig, identity: Identity, clock: Clock | None = None) -> None:
        self.config = config
        self.identity = identity
        self.clock: Clock = clock or SystemClock()
        self.events = EventBus()
        self.roster = Roster.load(identity.card, config.roster_path)
        self.admission = Admission(self.roster, self.clock)
        self.health = HealthBoard(on_change=self._publish_health)
        self.store: Store
        self.links: LinkSet
        self.router: Router
        self.acks: AckBatcher
        self.inbound: Inbound
        self.ready = asyncio.Event()

    @property
    def node_id(self) -> bytes:
        return self.identity.node_id

    # ---- lifecycle ----------------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls, config: HubConfig, identity: Identity, clock: Clock | None = None
    ) -> AsyncIterator[Hub]:
        hub = cls(config, identity, clock)
        hub.store = await Store.open(
            config.store_path, max_messages=config.max_messages, max_bytes=config.max_bytes
        )
        transports: dict[str, Transport] = {}
        try:
            context = TransportContext(
                identity.node_id.hex(),
                config.data_dir,
                logging.getLogger("beredt.link"),
                config_dir=config.path.resolve().parent if config.path else None,
            )
            for link in config.links:
                log.info("opening link %s (%s)", link.name, link.kind)
                transports[link.name] = await open_transport(link.kind, link.name, link.options, context)
            hub._wire(transports)
            yield hub
        finally:
            for name, transport in transports.items():
                try:
                    await transport.aclose()
                except Exception:  # close every other link and the store regardless
                    log.exception("closing link %s failed", name)
            await hub.store.close()

    def _wire(self, transports: dict[str, Transport]) -> None:
        config = self.config
        kinds = {link.name: link.kind for link in config.links}
        self.links = LinkSet(transports, kinds, config.peers, self.health, self.clock)
        for peer in config.peers:
            if peer.node_id not in {e.node_id for e in self.roster}:
                log.warning(
                    "peer %s (%s) is not in the roster: frames from it will be refused until"
                    " 'beredt roster add' is run with its card",
                    peer.name,
                    peer.node_id.hex(),
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
        )
        self.acks = AckBatcher(
            self.identity, self.links, self.clock, self._submit_ack, config.timing.e2e_ack_delay
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
        )

    async def run(self) -> None:
        """Resume pending deliveries, then run every loop until cancelled."""
        pending = await self.store.pending()
        for item in pending:
            recipient = decode_frame(item.wire).recipient
            self.router.track(
                item.message_id,
                item.wire,
                recipient,
                item.priority,
                item.expires,
                [item.hop],
                attempts=item.attempts,
            )
        if pending:
            log.info("resumed %d pending deliveries", len(pending))
        async with asyncio.TaskGroup() as group:
            group.create_task(self.router.run(), name="router")
            group.create_task(_supervised("acks", self.acks.run), name="acks")
            group.create_task(
                _supervised("probes", lambda: self.links.probe_forever(self.config.timing.probe_interval)),
                name="probes",
            )
            group.create_task(_supervised("maintenance", self._maintain_forever), name="maintenance")
            if self.config.power is not None:
                from hub.appliance import Appliance

                appliance = Appliance(self, self.config.power, self.config.power_report_to)
                group.create_task(_supervised("appliance", appliance.run), name="appliance")
            for name, transport in self.links.transports.items():
                queue: asyncio.Queue[Received] = asyncio.Queue(maxsize=2048)
                reader = functools.partial(self._read_link, name, transport, queue)
                group.create_task(_supervised(f"link {name}", reader), name=f"read-{name}")
                for n in range(_INBOUND_WORKERS):
                    group.create_task(self._inbound_worker(name, queue), name=f"inbound-{name}-{n}")
            self.ready.set()
            log.info(
                "hub %s (%s) running with links: %s",
                self.identity.name,
                self.node_id.hex(),
                ", ".join(self.links.transports) or "none",
            )

    async def _read_link(self, name: str, transport: Transport, queue: asyncio.Queue[Received]) -> None:
        async for event in transport.events():
            match event:
                case Received():
                    await queue.put(event)
                case LinkChanged(up=up, reason=reason, peer=address):
                    peer = None
                    if address is not None:
                        node = self.links.peer_at(name, address)
                        peer = node.hex() if node else address
                    now = self.clock.monotonic()
                    if up:
                        self.health.success(name, peer, now, reason, hard=True)
                    else:
                        self.health.failure(name, peer, now, reason, hard=True)
                case TimeHint(unix_time=when, source=source):
                    if when < PLAUSIBLE_EPOCH:
                        log.warning("ignored implausible time %.0f from %s", when, source)
                    elif not self.clock.trusted:
                        log.warning("clock untrusted; taking time from %s", source)
                        self.clock.correct(when, source)
        log.info("link %s closed", name)

    async def _maintain_forever(self, interval: float = 600.0) -> None:
        """Forget finished messages past expiry, so the store and its id index stay bounded."""
        while True:
            await asyncio.sleep(interval)
            self.inbound.reassembler.expire(self.clock.monotonic())
            if self.clock.trusted:
                purged = await self.store.purge(self.clock.time())
                if purged:
                    log.info("purged %d finished messages past their expiry", purged)

    async def _inbound_worker(self, name: str, queue: asyncio.Queue[Received]) -> None:
        while True:
            received = await queue.get()
            try:
                await self.inbound.handle(name, received)
            except Exception:  # one bad frame must not stop a link
                log.exception("inbound frame on %s from %s failed", name, received.source)

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
        seal_payload: bool = False,
        via: str | None = None,
    ) -> bytes:
        """Sign, store durably and queue a message; return its id once it is safe on disk.

        ``via`` names a link to try first when it is usable; the policy still decides otherwise."""
        if via is not None and via not in self.links.transports:
            raise RoutingError(f"no link named {via!r}; links: {', '.join(self.links.transports)}")
        hops = self.router.delivery_hops(recipient)
        if not hops:
            raise RoutingError(f"no route to {recipient.hex()}: add it to [routes] or set a default route")
        if seal_payload:
            entry = self.roster.get(recipient)
            if entry is None or recipient == BROADCAST:
                raise RoutingError("a sealed message needs one recipient from the roster")
            payload = seal(payload, entry.card.sealing_key, sender=self.node_id, recipient=recipient)
        ttl = ttl_minutes or self.config.timing.default_ttl_minutes
        if not 0 < ttl <= MAX_TTL_MINUTES:
            raise ValueError(f"ttl_minutes must be 1..{MAX_TTL_MINUTES}")
        frame = self.identity.sign(
            kind,
            recipient,
            payload,
            created=int(self.clock.time()),
            ttl_minutes=ttl,
            priority=priority,
            status=status,
            sealed=seal_payload,
        )
        wire = frame.encode()
        await self.store.accept(
            frame, wire, hops=hops, local=True, for_me=False, via=None, now=self.clock.time()
        )
        self.router.track(frame.id, wire, recipient, priority, frame.expires, hops, prefer=via)
        if kind is not Kind.ACK:
            self.events.publish(
                MessageSent(frame.id.hex(), recipient.hex(), kind.name.lower(), priority.name.lower())
            )
        return frame.id

    async def _submit_ack(
        self, kind: Kind, recipient: bytes, payload: bytes, priority: Priority, ttl: int
    ) -> bytes:
        return await self.submit(kind, recipient, payload, priority=priority, ttl_minutes=ttl)

    def subscribe(self) -> AsyncIterator[HubEvent]:
        return self.events.subscribe()

    def reload_roster(self) -> int:
        fresh = Roster.load(self.identity.card, self.config.roster_path)
        self.roster = fresh
        self.admission.roster = fresh
        log.info("roster reloaded: %d nodes", len(fresh))
        return len(fresh)

    def links_summary(self) -> list[dict[str, Any]]:
        rows = []
        for entry in self.health.entries():
            transport = self.links.transports.get(entry.link)
            if transport is None:
                continue
            caps = transport.capabilities
            peer_name = None
            if entry.peer is not None:
                try:
                    peer = self.links.peers.get(bytes.fromhex(entry.peer))
                except ValueError:
                    peer = None
                peer_name = peer.name if peer else None
            rows.append(
                {
                    "link": entry.link,
                    "kind": self.links.kind_of(entry.link),
                    "peer": entry.peer,
                    "peer_name": peer_name,
                    "state": entry.state.label,
                    "since": _wall(self.clock, entry.since),
                    "reason": entry.reason,
                    "last_success": _wall(self.clock, entry.last_success),
                    "queue_depth": self.router.queue_depth(entry.link),
                    "mtu": caps.mtu,
                    "cost": caps.cost.name.lower(),
                    "last_failover": self.links.last_failover.get(entry.peer or ""),
                    **_transport_status(transport),
                }
            )
        for name, transport in self.links.transports.items():
            if not any(r["link"] == name for r in rows):
                rows.append(
                    {
                        "link": name,
                        "kind": self.links.kind_of(name),
                        "peer": None,
                        "peer_name": None,
                        "state": "up",
                        "since": None,
                        "reason": "not yet used",
                        "last_success": None,
                        "queue_depth": self.router.queue_depth(name),
                        "mtu": transport.capabilities.mtu,
                        "cost": transport.capabilities.cost.name.lower(),
                        "last_failover": None,
                        **_transport_status(transport),
                    }
                )
        return rows

    def peers_summary(self) -> list[dict[str, Any]]:
        out = []
        for peer in self.links.peers.values():
            entry = self.roster.get(peer.node_id)
            out.append(
                {
                    "node": peer.node_id.hex(),
                    "name": peer.name,
                    "trusted": entry is not None,
                    "role": entry.role.value if entry else None,
                    "links": {
                        link: peer.address(link) for link in self.links.transports if peer.address(link)
                    },
                    "state": {
                        link: self.links.state(link, peer.node_id).label
                        for link in self.links.transports
                        if peer.address(link)
                    },
                    "radio_status": [
                        {"link": s.link, "status": s.status, "value": s.value}
                        for s in self.inbound.radio_status.values()
                        if s.peer == peer.node_id.hex()
                    ],
                }
            )
        return out


async def _supervised(what: str, run: Callable[[], Awaitable[None]], *, pause: float = 1.0) -> None:
    """Run a background loop; if it fails, log it and start it again after a pause, so one faulty link
    or sensor never stops the hub (a cancel still ends it)."""
    while True:
        try:
            await run()
            return
        except Exception:
            log.exception("%s failed; restarting it in %.0f s", what, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 60.0)


def _wall(clock: Clock, monotonic: float | None) -> float | None:
    if monotonic is None or monotonic == 0.0:
        return None
    return clock.time() - (clock.monotonic() - monotonic)


def _transport_status(transport: Transport) -> dict[str, Any]:
    """Extra figures a transport may offer (airtime used, credits, drain estimate) via ``status()``."""
    status = getattr(transport, "status", None)
    if callable(status):
        try:
            value = status()
        except Exception:  # a figure that cannot be read must not break the links view
            log.exception("reading %s's status failed", transport.name)
            return {}
        if isinstance(value, dict):
            return {"details": value}
    return {}


def load_identity(config: HubConfig, *, create: bool) -> Identity:
    path = config.identity_path
    if not path.exists():
        if not create:
            raise ConfigError("no identity yet; run 'beredt init' first", file=str(path))
        identity = Identity.generate(config.name, config.role.value)
        identity.save(path)
        log.info("created identity %s for %s", identity.node_id.hex(), config.name)
        return identity
    return Identity.load(path)
