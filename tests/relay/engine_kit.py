"""Parts for driving the relay engine directly: two hubs' identities, a link set built from real
in-memory transports, and the frames they exchange. Nothing here replaces an engine class."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from hub.core.clock import ManualClock
from hub.core.frame import Frame, Kind, Priority, decode_frame
from hub.core.identity import Identity
from hub.core.transport import Received
from hub.relay.health import HealthBoard
from hub.relay.links import LinkSet
from hub.relay.settings import PeerConfig
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
    """A link per medium: ours at address "me", each peer's at its name (only the first peer listens)."""
    ours = {name: medium.attach("me", name) for name, medium in media.items()}
    far = {name: medium.attach(peers[0].name, name) for name, medium in media.items()}
    clock = ManualClock()
    configs = [PeerConfig(p.node_id, p.name, dict.fromkeys(media, p.name)) for p in peers]
    links = LinkSet(ours, kinds or dict.fromkeys(media, "memory"), configs, health or HealthBoard(), clock)
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
