"""In-process hubs with the follow-up service, for the citizens tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from hub.citizens.service import FollowUp
from hub.citizens.settings import CitizensConfig
from hub.core.clock import Clock
from hub.core.identity import Identity
from hub.service.assembly import open_hub
from hub.service.config import HubConfig


@contextlib.asynccontextmanager
async def follow_up(
    config: HubConfig,
    identity: Identity,
    settings: CitizensConfig,
    clock: Clock | None = None,
    *,
    run: bool = True,
) -> AsyncIterator[FollowUp]:
    """A running hub with its follow-up service (``run=False``: the test calls ``tick()`` itself)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    async with open_hub(config, identity, clock) as hub:
        tasks = [asyncio.create_task(hub.run(), name=f"hub-{identity.name}")]
        await hub.ready.wait()
        service = await FollowUp.open_for(hub, settings)
        if run:
            tasks.append(asyncio.create_task(service.run(), name=f"citizens-{identity.name}"))
        try:
            yield service
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await service.aclose()
