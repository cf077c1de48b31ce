"""``beredt run``: the hub, its API and its service life cycle in one process.

The API is served twice: on the Unix socket in the data folder for the CLI (``hub.api.local``), and on
``[api] listen`` for the web console and apps with tokens (optionally over TLS).

SIGTERM and SIGINT start a graceful drain: systemd hears STOPPING=1, the API stops taking messages,
the links close, and the store commits what it holds. Everything accepted before that is on disk and
resumes at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl

from aiohttp import web

from hub.api.local import bind_private
from hub.api.routes import CITIZENS_KEY, build_app
from hub.api.tokens import TokenStore
from hub.appliance.monitor import Appliance
from hub.citizens.register import CITIZENS_DB
from hub.citizens.service import Alarm, FollowUp
from hub.console.logbook import EntryType
from hub.console.options import ConsoleOptions
from hub.console.routes import CONSOLE_KEY
from hub.core.bounded_http import ConnectionGuard, ConnectionLimits, GuardedSite, listen_tcp
from hub.core.errors import BeredtError, ConfigError
from hub.core.tasks import supervised
from hub.relay.hub import Hub
from hub.service import heap
from hub.service.assembly import open_hub
from hub.service.clock_offset import hub_clock
from hub.service.config import HubConfig
from hub.service.key_rotation import take_approved_key
from hub.service.log_limit import limited_logging
from hub.service.node_identity import load_identity
from hub.service.watchdog import ServiceNotification, SystemdNotifier

log = logging.getLogger("beredt.server")
# Everyone on the socket is the same local source: one cap for all of them.
LOCAL_LIMITS = ConnectionLimits(total=64, per_source=64)


class _Stopping(Exception):
    """Ends the service's task group once a stop was asked for and the drain has begun."""


async def serve(config: HubConfig, *, stop: asyncio.Event | None = None, new_store: bool = False) -> None:
    """Run until SIGTERM/SIGINT (or ``stop`` is set), with repeated log lines rate-limited meanwhile.

    ``new_store`` allows starting on an empty store where this hub had one (see ``Store.open``)."""
    with limited_logging():
        await _serve(config, stop or asyncio.Event(), new_store=new_store)


async def _serve(config: HubConfig, stop: asyncio.Event, *, new_store: bool) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    take_approved_key(config)
    identity = load_identity(config, create=True)
    tls = _server_tls(config)
    async with open_hub(config, identity, hub_clock(config.data_dir), new_store=new_store) as hub:
        if config.alarm_report_to is not None:
            hub.personal_alarms.report_to = config.alarm_report_to
        network, local = ConnectionGuard(), ConnectionGuard(LOCAL_LIMITS)
        tokens = TokenStore(config.data_dir)
        console = ConsoleOptions(
            rollcall_retention=config.rollcall_retention_days * 86400,
            logbook_live_age=config.logbook_live_days * 86400,
            witness_interval=config.witness_interval_minutes * 60,
            logbook_received_interval=config.logbook_received_seconds,
            logbook_sync_interval=config.logbook_sync_minutes * 60,
            board_save_interval=config.board_save_minutes * 60,
            witnesses=config.witnesses,
        )
        app = build_app(hub, tokens=tokens, hosts=config.api_hosts, guards=(network, local), console=console)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        bound = False
        try:
            await GuardedSite(runner, bind_private(config.socket_path), local).start()
            bound = True
            try:
                await GuardedSite(
                    runner, listen_tcp(config.api_host, config.api_port), network, ssl_context=tls
                ).start()
            except OSError as exc:
                raise BeredtError(
                    f"cannot serve the API on {config.api_host}:{config.api_port}: {exc.strerror};"
                    " is another hub running? change [api] listen"
                ) from exc
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(hub.run(), name="hub")
                    if config.power is not None:
                        appliance = Appliance(hub, config.power, config.power_report_to)
                        group.create_task(supervised("appliance", appliance.run), name="appliance")
                    if config.citizens is not None or (config.data_dir / CITIZENS_DB).exists():
                        group.create_task(supervised("citizens", lambda: _citizens(hub, config, app)),
                                          name="citizens")  # fmt: skip
                    group.create_task(_announce(hub, config, stop), name="service")
            except BaseExceptionGroup as failure:
                _raise_unless_stopping(failure)
        finally:
            await runner.cleanup()
            if bound:
                config.socket_path.unlink(missing_ok=True)
        await hub.store.flush()
    log.info("stopped")


async def _citizens(hub: Hub, config: HubConfig, app: web.Application) -> None:
    """The follow-up of power-dependent citizens, on a hub with a register or a ``[citizens]`` table; its
    alarms go to the console's log book, and the console's pages find it at ``CITIZENS_KEY``."""
    follow_up = await FollowUp.open_for(hub, config.citizens)

    async def to_logbook(alarm: Alarm) -> None:
        if CONSOLE_KEY in app:
            hours = (alarm.runs_out - hub.clock.time()) / 3600.0
            await app[CONSOLE_KEY].note(EntryType.NOTE, f"ALARM: {alarm.text(hours)}")

    follow_up.on_alarm(to_logbook)
    app[CITIZENS_KEY].service = follow_up
    try:
        await follow_up.run()
    finally:
        app[CITIZENS_KEY].service = None
        await follow_up.aclose()


def _server_tls(config: HubConfig) -> ssl.SSLContext | None:
    if config.api_tls_cert is None or config.api_tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.api_tls_cert, config.api_tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"certifikatet {config.api_tls_cert} med nøglen {config.api_tls_key} kan ikke indlæses;"
            " forventede PEM-filer, der hører sammen",
            key="api.tls_cert",
        ) from exc
    return context


async def _announce(hub: Hub, config: HubConfig, stop: asyncio.Event) -> None:
    """Tell systemd READY=1 only once the hub is ready (if the hub fails first, the task group cancels
    this before it says anything), then wait for a stop and begin the drain."""
    await hub.ready.wait()
    heap.settle()
    scheme = "https" if config.api_tls_cert else "http"
    log.info(
        "console and token API on %s://%s:%d, CLI socket %s (node %s)",
        scheme, config.api_host, config.api_port, config.socket_path, hub.node_id.hex(),
    )  # fmt: skip
    async with ServiceNotification(SystemdNotifier.from_environ(), status="serving") as service:
        await stop.wait()
        log.info("stopping: draining")
        await service.aclose("draining")
    raise _Stopping


def _raise_unless_stopping(failure: BaseExceptionGroup[BaseException]) -> None:
    """Re-raise what really failed (unwrapped when it is one exception), never the stop itself."""
    _, rest = failure.split(_Stopping)
    if rest is None:
        return
    if len(rest.exceptions) == 1 and not isinstance(rest.exceptions[0], BaseExceptionGroup):
        raise rest.exceptions[0]
    raise rest
