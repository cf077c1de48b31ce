"""``beredt run``: the hub, its API and its service life cycle in one process.

SIGTERM and SIGINT start a graceful drain: systemd hears STOPPING=1, the API stops taking messages,
the links close, and the store commits what it holds. Everything accepted before that is on disk and
resumes at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from hub.api import build_app
from hub.app import Hub, load_identity
from hub.config import HubConfig
from hub.errors import BeredtError
from hub.watchdog import ServiceNotification, SystemdNotifier

log = logging.getLogger("beredt.server")


async def serve(config: HubConfig, *, stop: asyncio.Event | None = None) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    identity = load_identity(config, create=True)
    async with Hub.open(config, identity) as hub:
        runner = web.AppRunner(build_app(hub), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, config.api_host, config.api_port)
            try:
                await site.start()
            except OSError as exc:
                raise BeredtError(
                    f"cannot serve the API on {config.api_host}:{config.api_port}: {exc.strerror};"
                    " is another hub running? change [api] listen"
                ) from exc
            hub_task = asyncio.create_task(hub.run(), name="hub")
            stop_task = asyncio.create_task(stop.wait(), name="stop")
            ready_task = asyncio.create_task(hub.ready.wait(), name="ready")
            await asyncio.wait({hub_task, ready_task}, return_when=asyncio.FIRST_COMPLETED)
            log.info(
                "API on http://%s:%d (node %s)", config.api_host, config.api_port, identity.node_id.hex()
            )
            async with ServiceNotification(SystemdNotifier.from_environ(), status="serving") as service:
                await asyncio.wait({hub_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
                log.info("stopping: draining")
                await service.aclose("draining")
                hub_task.cancel()
                stop_task.cancel()
                ready_task.cancel()
                results = await asyncio.gather(hub_task, stop_task, ready_task, return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                        raise result
        finally:
            await runner.cleanup()
        await hub.store.flush()
    log.info("stopped")
