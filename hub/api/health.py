"""``GET /healthz``: the hub's health and its counters, open to anyone who reaches the API's port.

No token: monitoring and the Pi's own checks read it. An answer costs a query of the store, so on the
network port each source address (an IPv6 network as its /64) may ask ``HEALTHZ_RATE`` times a second, in
bursts of ``HEALTHZ_BURST``; beyond that it gets 429 with ``Retry-After``, counted with the API's refusals
(``http_refused`` -> ``healthz_busy``). The Unix socket (the CLI, the hub's own user) is not limited.
The query, a count of open deliveries, scans the store's deliveries table (it keeps no index of them), so
every answer within ``OPEN_COUNT_AGE`` of a count shares it: a flood from many addresses costs the store
one scan a second, not one per address.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.api.common import HUB
from hub.api.gate import GATE_KEY, refuse, via_socket
from hub.console.routes import CONSOLE_KEY, console_status
from hub.core.bounded_http import ConnectionGuard, source_of
from hub.core.source_rate import SourceRate

HEALTHZ_RATE = 2.0  # answers a second per source address, sustained: a monitor polls every few seconds
HEALTHZ_BURST = 20
OPEN_COUNT_AGE = 1.0
"""Seconds one count of open deliveries answers ``/healthz`` (a monitor polls every few seconds)."""

GUARDS_KEY: web.AppKey[tuple[ConnectionGuard, ...]] = web.AppKey("guards", tuple)
HEALTH_RATE_KEY: web.AppKey[SourceRate] = web.AppKey("health_rate", SourceRate)


class OpenCount:
    """The store's count of open deliveries, read at most once every ``OPEN_COUNT_AGE`` seconds; requests
    that come while it is read wait for that read."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._value = 0
        self._at: float | None = None

    async def read(self, count: Callable[[], Awaitable[int]]) -> int:
        async with self._lock:  # real seconds, whatever the hub's clock: they bound the store's work
            if self._at is None or time.monotonic() - self._at >= OPEN_COUNT_AGE:
                self._value = await count()
                self._at = time.monotonic()
            return self._value


OPEN_COUNT_KEY: web.AppKey[OpenCount] = web.AppKey("open_count", OpenCount)


async def healthz(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    gate = request.app[GATE_KEY]
    if not via_socket(request) and request.transport is not None:
        wait = request.app[HEALTH_RATE_KEY].take(source_of(request.transport), hub.clock.monotonic())
        if wait > 0:
            response = refuse(
                gate.refusals, "healthz_busy", 429, "For mange forespørgsler på /healthz: prøv igen om lidt"
            )
            response.headers["Retry-After"] = SourceRate.retry_after(wait)
            return response
    guards = request.app[GUARDS_KEY]
    refused = gate.refusals.copy()
    for api_guard in guards:
        refused.update(api_guard.refused)
    if CONSOLE_KEY in request.app:
        refused.update(request.app[CONSOLE_KEY].users.refused)
    link_guards = {name: getattr(t, "guard", None) for name, t in hub.links.transports.items()}
    return web.json_response(
        {
            "ok": hub.ready.is_set(),
            "node": hub.node_id.hex(),
            "name": hub.identity.name,
            "open_deliveries": await request.app[OPEN_COUNT_KEY].read(hub.store.open_deliveries),
            "accepted_inbound": hub.inbound.accepted,
            "refused": dict(hub.admission.refused),
            "roster_version": hub.roster_updates.version,
            "cross_certified": {  # other municipalities our root vouches for: the version of theirs held
                c.cross.name: c.version for c in hub.roster_updates.foreign.values() if c.cross
            },
            "reassembly": hub.inbound.reassembly_status(),
            "live_messages": hub.store.live_messages,
            "evicted": hub.store.evicted,
            "quarantined": hub.store.quarantined,
            "store_commits": hub.store.commits,
            "store_fsyncs": hub.store.syncs,
            "commit_window_impatient": sorted(node.hex() for node in hub.inbound.impatient),
            "console": console_status(request.app),
            "console_logins": _login_status(request.app),
            "hop_acks_sent": hub.acks.hop_acks_sent,
            "hop_acks_failed": hub.acks.hop_acks_failed,
            "e2e_acks_sent": hub.acks.e2e_acks_sent,
            "bytes_sent": dict(hub.links.sent_bytes),
            "addresses_learned": dict(hub.links.learning),
            "clock_trusted": hub.clock.trusted,
            "clock_time": hub.clock.time(),
            "time_answers": {"taken": hub.time_challenges.answers, "refused": hub.time_challenges.refused},
            "http_refused": dict(refused),
            "http_connections": sum(g.open_connections for g in guards),
            "link_http_refused": {
                name: dict(g.refused) for name, g in link_guards.items() if isinstance(g, ConnectionGuard)
            },
            "time": time.time(),
        }
    )


def _login_status(app: web.Application) -> dict[str, object] | None:
    """Console logins refused and counted (None while the console is not running)."""
    if CONSOLE_KEY not in app:
        return None
    users = app[CONSOLE_KEY].users
    return {**users.throttle.status(), "refused_busy": users.hashing.refused}
