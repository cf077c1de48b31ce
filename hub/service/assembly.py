"""Assemble a hub from its configuration: open the configured transports through the registry, and open
the relay engine on them (the identity file is hub.service.node_identity's).

This is the only place that knows the concrete transports. Links are closed after the engine, each
on its own, so one faulty link never keeps the others or the store open.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from hub.core.address_card import CardIssuer
from hub.core.clock import Clock, SystemClock
from hub.core.errors import ConfigError
from hub.core.identity import Identity
from hub.core.time_answer import TimeWitness
from hub.core.transport import Transport, TransportContext
from hub.relay.hub import Hub
from hub.relay.lanes import frame_rank
from hub.service.config import HubConfig
from transports.registry import open_transport

log = logging.getLogger("beredt.hub")


@contextlib.asynccontextmanager
async def open_links(
    config: HubConfig, identity: Identity, clock: Clock | None = None
) -> AsyncIterator[dict[str, Transport]]:
    """Open every configured link; close them all on exit, whatever fails."""
    transports: dict[str, Transport] = {}
    clock = clock or SystemClock()
    try:
        context = TransportContext(
            identity.node_id.hex(),
            config.data_dir,
            logging.getLogger("beredt.link"),
            config_dir=config.path.resolve().parent if config.path else None,
            address_card=CardIssuer(identity, clock).card,
            time_answer=TimeWitness(identity, clock).answer,
            frame_rank=frame_rank,
        )
        for link in config.links:
            log.info("opening link %s (%s)", link.name, link.kind)
            try:
                transports[link.name] = await open_transport(link.kind, link.name, link.options, context)
            except ConfigError as exc:  # a transport reads its table without knowing the file it came from
                if config.path is None or exc.file:
                    raise
                raise exc.in_file(str(config.path)) from exc
        yield transports
    finally:
        for name, transport in transports.items():
            try:
                await transport.aclose()
            except Exception:  # close every other link regardless
                log.exception("closing link %s failed", name)


@contextlib.asynccontextmanager
async def open_hub(
    config: HubConfig, identity: Identity, clock: Clock | None = None, *, new_store: bool = False
) -> AsyncIterator[Hub]:
    """The configured links and the relay engine on them, closed in reverse order."""
    clock = clock or SystemClock()  # one clock: the links' address cards are stamped by the hub's time
    async with (
        open_links(config, identity, clock) as transports,
        Hub.open(config, identity, transports, clock, new_store=new_store) as hub,
    ):
        yield hub
