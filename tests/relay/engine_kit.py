"""Parts for driving the relay engine directly: our hub's and two peers' identities, a link set built
from real in-memory transports, a running router over a real store, and the frames they exchange.
Nothing here replaces an engine class."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from hub.core.clock import ManualClock
from hub.core.frame import Frame, Kind, Priority, decode_frame
from hub.core.identity import Identity
from hub.core.tasks import cancel_and_wait
from hub.core.transport import Received
from hub.relay.delivery import Delivery
from hub.relay.events import EventBus
from hub.relay.health import HealthBoard
from hub.relay.links import LinkSet
from hub.relay.policy import Policy
from hub.relay.router import Router
from hub.relay.settings import PeerConfig, Timing
from hub.relay.store import Store
from transports.memory import MemoryMedium, MemoryTransport

ME = Identity.generate("Aarhus", "staff")
PEER = Identity.generate("Solgaarden", "care-home")
OTHER = Identity.generate("Hjemmeplejen", "staff")


@dataclass
class Wiring:
    """Our side of each medium (in a ``LinkSet``) and the far side of each, where a peer listens."""

    links: LinkSet
    clock: ManualClock
    ours: dict[str, MemoryTransport]
    far: dict[str, MemoryTransport]


@contextlib.asynccontextmanager
async def wired(
    media: Mapping[str, MemoryMedium],
    *,
    peers: tuple[Identity, ...] = (PEER,),
    health: HealthBoard | None = None,
    kinds: Mapping[str, str] | None = None,
) -> AsyncIterator[Wiring]:
    """A link per medium: ours at address "me", each peer's at its name (only the first peer listens).
    ``kinds``: what kind of link each medium stands for (what a hop over it costs); "memory" if not given."""
    ours = {name: medium.attach("me", name) for name, medium in media.items()}
    far = {name: medium.attach(peers[0].name, name) for name, medium in media.items()}
    clock = ManualClock()
    configs = [PeerConfig(p.node_id, p.name, dict.fromkeys(media, p.name)) for p in peers]
    kinds = kinds or dict.fromkeys(media, "memory")
    links = LinkSet(ours, kinds, configs, health or HealthBoard(), clock)
    try:
        yield Wiring(links, clock, ours, far)
    finally:
        for transport in (*ours.values(), *far.values()):
            await transport.aclose()


async def next_frame(transport: MemoryTransport, timeout: float = 10.0) -> Frame:
    """The next whole frame that arrives at ``transport`` (frames here fit the MTU)."""
    async with asyncio.timeout(timeout):
        async for event in transport.events():
            if isinstance(event, Received):
                return decode_frame(event.data)
    raise AssertionError("transport closed")


def message(
    payload: bytes = b"hello", priority: Priority = Priority.NORMAL, created: int = 1_800_000_000
) -> Frame:
    return ME.sign(Kind.TEXT, PEER.node_id, payload, created=created, ttl_minutes=60, priority=priority)


@dataclass
class Engine:
    """A router over real links and a real store, driven by a manual clock."""

    wiring: Wiring
    store: Store
    router: Router
    events: EventBus

    @property
    def clock(self) -> ManualClock:
        return self.wiring.clock

    async def submit(self, frame: Frame, *, hops: tuple[bytes, ...] = (PEER.node_id,)) -> Delivery:
        """Store ``frame`` and start delivering it; return its (first) delivery."""
        wire = frame.encode()
        await self.store.accept(
            frame, wire, hops=hops, local=True, for_me=False, via=None, now=self.clock.time()
        )
        self.router.track(frame.id, wire, frame.recipient, frame.priority, frame.expires, hops)
        return self.router.deliveries(frame.id)[0]


@contextlib.asynccontextmanager
async def engine(
    tmp_path: Path,
    media: Mapping[str, MemoryMedium],
    *,
    health: HealthBoard | None = None,
    policy: Policy | None = None,
    timing: Timing | None = None,
    peers: tuple[Identity, ...] = (PEER,),
    default_route: tuple[bytes, ...] = (PEER.node_id,),
    max_messages: int = 1000,
    probe_interval: float | None = None,
) -> AsyncIterator[Engine]:
    """A running router (dispatcher and link workers) that sends from ``ME`` over ``media``; with
    ``probe_interval`` (real seconds) the links are probed too, as in a hub, so a peer marked down by
    missing acks comes back once it answers."""
    async with wired(media, peers=peers, health=health) as wiring:
        store = await Store.open(tmp_path / "store.db", max_messages=max_messages)
        events = EventBus()
        router = Router(
            me=ME.node_id,
            store=store,
            links=wiring.links,
            policy=policy or Policy(order=tuple(media)),
            timing=timing or Timing(hop_ack_timeout=5.0, retry_initial=1.0, retry_cap=8.0),
            clock=wiring.clock,
            events=events,
            routes={},
            default_route=default_route,
        )
        tasks = [asyncio.create_task(router.run(), name="router")]
        if probe_interval is not None:
            tasks.append(asyncio.create_task(wiring.links.probe_forever(probe_interval), name="probes"))
        try:
            yield Engine(wiring, store, router, events)
        finally:
            for task in tasks:
                await cancel_and_wait(task)
            await store.close()


async def as_if_disk_full(store: Store) -> None:
    """From now on the store's database may not grow, as on a full disk. ``max_page_count`` holds per
    connection, so it is set on the one that writes: the store writer's, in its thread."""
    writer = store._writes
    assert writer._db is not None
    await writer._in_thread(writer._db.execute, "PRAGMA max_page_count = 1")
