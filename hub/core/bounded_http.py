"""Bounded HTTP serving for the hub's aiohttp servers: how many connections, from whom, for how long.

An HTTP server that waits forever for a request's headers lets anyone hold its file descriptors: a thousand
idle connections once made a hub's API and console unreachable. ``ConnectionGuard`` wraps the server's
protocol factory and, per listening socket:

- caps open connections in total and per source address (an IPv6 source counts per /64), answering the
  connection over the cap with a one-line 503 and closing it at once;
- closes a connection that sits outside a request for ``idle_timeout`` seconds: that is the header
  timeout (a request must arrive in full by then) and the keep-alive timeout in one;
- with ``body_timeout``, reads each request body before the handler runs and answers 408 if it does not
  arrive in time (servers whose handlers stream their bodies under their own deadline leave it None).

Every refusal is counted in ``refused`` by reason, for ``/healthz``. Use ``GuardedSite`` instead of
aiohttp's sites and put ``guard.middleware`` on the application, so the guard sees where requests begin
and end.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A tablet's browser may show these: the stable code in English, the words for people in Danish.
_BUSY_BODY = json.dumps(
    {"code": "too_many_connections", "error": "Hubben har for mange forbindelser lige nu: prøv igen om lidt"}
).encode()
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Content-Length: %d\r\nRetry-After: 5\r\nConnection: close\r\n\r\n%s"
) % (len(_BUSY_BODY), _BUSY_BODY)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Bounds for one listening socket. The defaults fit a hub's API on a Pi with ``LimitNOFILE=8192``."""

    total: int = 256
    per_source: int = 32
    idle_timeout: float = 15.0
    body_timeout: float | None = 10.0


def source_of(transport: asyncio.BaseTransport) -> str:
    """Whom a connection counts against: its address (IPv6: its /64), or ``local`` for a Unix socket."""
    peer = transport.get_extra_info("peername")
    if not isinstance(peer, tuple) or not peer:
        return "local"
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return str(peer[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class _Connection(asyncio.Protocol):
    """One accepted connection: admitted (then aiohttp's protocol does the HTTP) or refused at once."""

    def __init__(self, guard: ConnectionGuard, make_inner: Callable[[], Any]) -> None:
        self._guard = guard
        self._make_inner = make_inner
        self._inner: Any = None
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.source = ""
        self.busy = 0
        self.requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        source = source_of(transport)
        refusal = self._guard.admit(source)
        if refusal is not None:
            self._guard.refused[refusal] += 1
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(_BUSY)
            transport.close()
            return
        self.source = source
        self._guard.opened(transport, self)
        self._inner = self._make_inner()
        self._inner.connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is None:
            return
        self._disarm()
        assert self._transport is not None
        self._guard.closed(self._transport, self)
        self._inner.connection_lost(exc)

    def request_started(self) -> None:
        self.busy += 1
        self.requests += 1
        self._disarm()

    def request_ended(self) -> None:
        self.busy -= 1
        if self.busy == 0 and self._transport is not None and not self._transport.is_closing():
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.limits.idle_timeout, self._idle)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _idle(self) -> None:
        self._timer = None
        if self.busy or self._transport is None:
            return
        if self.requests == 0:
            # connected and never finished a request's headers: an idle or slow-header connection
            self._guard.refused["no_request_in_time"] += 1
        if isinstance(self._transport, asyncio.Transport):
            self._transport.abort()
        else:
            self._transport.close()


class ConnectionGuard:
    """Bounds and counts one listening socket's connections (see the module's docstring)."""

    def __init__(self, limits: ConnectionLimits | None = None) -> None:
        self.limits = limits or ConnectionLimits()
        self.refused: Counter[str] = Counter()
        self._open: dict[asyncio.BaseTransport, _Connection] = {}
        self._per_source: Counter[str] = Counter()

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def admit(self, source: str) -> str | None:
        """None if a new connection from ``source`` fits, else the reason it does not."""
        if len(self._open) >= self.limits.total:
            return "connections_over_total"
        if self._per_source[source] >= self.limits.per_source:
            return "connections_over_source"
        return None

    def opened(self, transport: asyncio.BaseTransport, connection: _Connection) -> None:
        self._open[transport] = connection
        self._per_source[connection.source] += 1

    def closed(self, transport: asyncio.BaseTransport, connection: _Connection) -> None:
        if self._open.pop(transport, None) is None:
            return
        self._per_source[connection.source] -= 1
        if self._per_source[connection.source] <= 0:
            del self._per_source[connection.source]  # no entry per past source: bounded by open ones

    def protocol_factory(self, make_inner: Callable[[], Any]) -> Callable[[], asyncio.Protocol]:
        return lambda: _Connection(self, make_inner)

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        connection = self._open.get(request.transport) if request.transport is not None else None
        if connection is None:
            return await handler(request)  # another listener's connection, or not served through a guard
        connection.request_started()
        try:
            if self.limits.body_timeout is not None and request.body_exists:
                try:
                    async with asyncio.timeout(self.limits.body_timeout):
                        await request.read()  # cached: the handler's json()/read() reuse it
                except TimeoutError:
                    self.refused["body_timeout"] += 1
                    response = web.json_response(
                        {
                            "code": "body_timeout",
                            "error": f"Indholdet kom ikke frem inden for {self.limits.body_timeout:g} s",
                        },
                        status=408,
                    )
                    response.force_close()
                    return response
            return await handler(request)
        finally:
            connection.request_ended()


class GuardedSite(web.BaseSite):
    """An aiohttp site on an already bound, listening socket whose connections ``guard`` bounds."""

    def __init__(
        self,
        runner: web.BaseRunner,
        sock: socket.socket,
        guard: ConnectionGuard,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._sock = sock
        self._guard = guard

    @property
    def name(self) -> str:
        return repr(self._sock.getsockname())

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        extra: dict[str, Any] = {}
        if self._ssl_context is not None:
            extra["ssl_handshake_timeout"] = self._guard.limits.idle_timeout  # a stalled handshake too
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(server), sock=self._sock, ssl=self._ssl_context, **extra
        )


def listen_tcp(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``OSError`` if it cannot be bound), for ``GuardedSite``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # a deep queue: a burst of connects waits for accept() instead of a dropped SYN and a 1 s retry
    sock = socket.create_server((host, port), family=family, backlog=1024)
    sock.setblocking(False)
    return sock
