"""Who may use the HTTP API, and from where; every refusal is counted for ``/healthz``.

Requests on the Unix socket come from the hub's own user or root (the kernel checked) and may do anything.
On the network port:

- ``Host`` must be a name this hub answers to: an IP address, ``localhost``, the machine's host name, or a
  name listed in ``[api] hosts``. A web page whose own name was made to resolve to this hub (DNS
  rebinding) sends its own name, and is refused.
- A state-changing request must come from this hub's own pages: a foreign ``Origin`` or a cross-site
  ``Sec-Fetch-Site`` is refused, whatever else it carries.
- ``/v1`` needs ``Authorization: Bearer <token>`` with the route's scope (``hub.api.tokens``).

Everywhere, a ``/v1`` POST must be ``application/json``: a plain HTML form or a ``text/plain`` fetch, the
two kinds of cross-site POST a browser sends without asking, cannot reach a handler.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web

from hub.api.common import api_error
from hub.api.tokens import Scope, TokenStore
from hub.core.errors import ConfigError

log = logging.getLogger("beredt.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SAME_SITE = frozenset({"same-origin", "none"})


def refuse(refusals: Counter[str], reason: str, status: int, message: str) -> web.Response:
    refusals[reason] += 1
    return api_error(status, reason, message)


def via_socket(request: web.Request) -> bool:
    """True when the request came over the Unix socket (the kernel vouched for the caller)."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock is not None and sock.family == socket.AF_UNIX


def host_names(extra: Iterable[str] = ()) -> frozenset[str]:
    """The names (lower case, no port) this hub answers to besides any IP address."""
    # no DNS lookup (getfqdn): a hub must start quickly when the network is down
    hostname = socket.gethostname().lower()
    names = {"localhost", hostname, f"{hostname}.local"}
    return frozenset(n.strip(".") for n in (*names, *(e.lower() for e in extra)) if n)


def _host_only(value: str) -> str:
    return (urlsplit(f"//{value}").hostname or "").lower()


def host_allowed(header: str | None, names: frozenset[str]) -> bool:
    if header is None:
        return True  # not a browser: every browser sends Host, and rebinding needs it
    host = _host_only(header)
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host in names
    return True  # reached by address: no name was rebound


def same_origin(request: web.Request) -> bool:
    """False for a state-changing request that a browser sent from another site."""
    if request.method in SAFE_METHODS:
        return True
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.lower() not in SAME_SITE:
        return False
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not sent by a browser on a cross-site request that could change state
    parts = urlsplit(origin)
    return parts.scheme == request.scheme and (parts.netloc or "").lower() == request.host.lower()


class Gate:
    """The API's checks, one instance per app; ``refusals`` counts each refusal by reason."""

    def __init__(self, tokens: TokenStore | None, names: frozenset[str]) -> None:
        self.tokens = tokens
        self.names = names
        self.refusals: Counter[str] = Counter()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        local = via_socket(request)
        if not local and not host_allowed(request.headers.get("Host"), self.names):
            return refuse(
                self.refusals, "foreign_host", 421,
                "Hubben svarer ikke på det værtsnavn; tilføj det under [api] hosts, hvis det er jeres",
            )  # fmt: skip
        if not local and not same_origin(request):
            return refuse(self.refusals, "cross_origin", 403, "Anmodning fra et andet websted afvist")
        if (
            request.path.startswith("/v1/")
            and request.method not in SAFE_METHODS
            and request.content_type != "application/json"
        ):
            return refuse(self.refusals, "not_json", 415, "Send indholdet som Content-Type: application/json")
        return await handler(request)

    def scoped(self, scope: Scope | None, handler: Handler) -> Handler:
        """``handler`` behind a bearer token with ``scope`` (any valid token for None) on the network port."""

        async def authorized(request: web.Request) -> web.StreamResponse:
            if via_socket(request):
                return await _audited(request, "the CLI socket", handler)
            kind, _, secret = request.headers.get("Authorization", "").partition(" ")
            if kind.lower() != "bearer" or not secret:
                return refuse(
                    self.refusals, "unauthenticated", 401,
                    "API'et kræver 'Authorization: Bearer <token>'; lav et med 'beredt token add'",
                )  # fmt: skip
            try:
                token = self.tokens.find(secret.strip()) if self.tokens is not None else None
            except ConfigError as exc:
                log.error("refusing every API token: %s", exc)
                return refuse(self.refusals, "tokens_unreadable", 503, "Hubben kan ikke læse sine API-tokens")
            if token is None:
                return refuse(self.refusals, "unknown_token", 401, "Ukendt eller tilbagekaldt token")
            if scope is not None and not token.allows(scope):
                return refuse(
                    self.refusals, "out_of_scope", 403, f"Token {token.name!r} mangler rettigheden {scope}"
                )
            return await _audited(request, f"token {token.name!r}", handler)

        return authorized


GATE_KEY: web.AppKey[Gate] = web.AppKey("gate", Gate)
"""The app's gate, whose ``refusals`` ``/healthz`` shows; handlers outside the gate count theirs there."""


async def _audited(request: web.Request, who: str, handler: Handler) -> web.StreamResponse:
    """Run ``handler``; a state-changing request is logged with who made it (the hub's audit trail)."""
    response = await handler(request)
    if request.method not in SAFE_METHODS:
        log.info("%s %s by %s: %d", request.method, request.path, who, response.status)
    return response
