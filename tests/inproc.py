"""In-process hubs on a shared in-memory medium, for fast tests of the hub's own behaviour."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from hub.core.identity import Identity
from hub.relay.hub import Hub
from hub.relay.roster import Role
from hub.relay.settings import LinkConfig, PeerConfig, Timing
from hub.service.assembly import open_hub
from hub.service.config import HubConfig

_media = itertools.count()

FAST = Timing(hop_ack_timeout=0.5, retry_initial=0.05, retry_cap=0.5, e2e_ack_delay=0.01, probe_interval=0.2)


def medium_name() -> str:
    return f"test-medium-{next(_media)}"


def hub_config(
    directory: Path, name: str, medium: str, *, role: Role = Role.STAFF, **overrides: object
) -> HubConfig:
    fields: dict[str, object] = {
        "name": name,
        "role": role,
        "data_dir": directory,
        "links": (LinkConfig("memory", "memory", {"kind": "memory", "medium": medium, "address": name}),),
        "timing": FAST,
    }
    fields.update(overrides)
    return HubConfig(**fields)  # type: ignore[arg-type]


def peer(identity: Identity, address: str, links: tuple[str, ...] = ("memory",)) -> PeerConfig:
    return PeerConfig(identity.node_id, identity.name, dict.fromkeys(links, address))


@contextlib.asynccontextmanager
async def running(config: HubConfig, identity: Identity) -> AsyncIterator[Hub]:
    async with open_hub(config, identity) as hub:
        task = asyncio.create_task(hub.run(), name=f"hub-{identity.name}")
        await hub.ready.wait()
        try:
            yield hub
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def eventually_async(check: Callable[[], Awaitable[object]], timeout: float = 10.0) -> None:
    """``eventually`` for a check that reads through the event loop (a database, the API)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)
