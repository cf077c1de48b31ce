"""The provider side of the satellite link: the webhook that receives MO messages, and the MT API client.

An Iridium SBD provider (RockBLOCK and others of its kind) POSTs every MO message a modem sends to a
customer's HTTPS endpoint as a form: ``imei`` (15 digits), ``momsn`` (0-65535), ``transmit_time``
(``YY-MM-DD HH:MM:SS`` UTC), ``iridium_latitude``/``iridium_longitude``/``iridium_cep`` (the gateway's rough
fix) and ``data`` (the payload as hex), and, when the account has a signing secret, ``JWT``: an HS256
token whose claims repeat those fields. ``WebhookReceiver`` validates all of that (with the sans-IO
``transports.satellite_delivery``), refuses a malformed POST with 400 and a bad or missing token with 403
(the provider retries anything but 2xx, so a refusal is loud in its console, not silent), drops the
provider's retries of a message it already took (same imei and momsn) and hands each new message on as an
``MoDelivery``. ``MtClient`` queues MT messages through the provider's HTTP API (``imei``, ``username``,
``password``, ``data`` hex; answer ``OK,<id>`` or ``FAILED,<code>,<text>``) and maps its answers onto
Beredt's transport errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from hardware import iridium_sbd as sbd
from hub.core.bounded_http import ConnectionGuard, ConnectionLimits, GuardedSite
from hub.core.errors import (
    BudgetExhausted,
    DeliveryRefused,
    LinkDown,
    ProtocolError,
    TransportClosed,
    TrustError,
)
from hub.core.options import Options
from hub.core.transport import Received, TransportContext
from transports.satellite_budget import WEBHOOK_MTU, CreditBudget, SatelliteBase

# The form parser is sans-IO in a module of its own; re-exported so that its names stay importable from here.
from transports.satellite_delivery import MoDelivery as MoDelivery
from transports.satellite_delivery import is_imei as is_imei
from transports.satellite_delivery import parse_delivery as parse_delivery
from transports.satellite_delivery import verify_hs256 as verify_hs256

log = logging.getLogger(__name__)

_SEEN_LIMIT = 4096
# The provider posts from a handful of addresses, one small form at a time.
_LIMITS = ConnectionLimits(total=64, per_source=16, idle_timeout=15.0, body_timeout=10.0)


class WebhookReceiver:
    """An aiohttp server for the provider's MO POSTs on ``host:port`` and ``path``."""

    def __init__(
        self,
        host: str,
        port: int,
        on_delivery: Callable[[MoDelivery], None],
        *,
        path: str = "/iridium/mo",
        secret: str | None = None,
        imeis: Collection[str] = (),
    ) -> None:
        self.host, self.port, self.path = host, port, path
        self.secret = secret
        self.imeis = frozenset(imeis)
        self.accepted = 0
        self.rejected = 0
        self.duplicates = 0
        self._on_delivery = on_delivery
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self._runner: web.AppRunner | None = None
        self.guard = ConnectionGuard(_LIMITS)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    async def start(self) -> None:
        app = web.Application(client_max_size=16 * 1024, middlewares=[self.guard.middleware])
        app.router.add_post(self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.create_server((self.host, self.port))
        self.port = sock.getsockname()[1]
        await GuardedSite(self._runner, sock, self.guard).start()

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            form = await request.post()
        except ValueError as exc:
            return self._refuse(400, f"unreadable form: {exc}")
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        try:
            delivery = parse_delivery(fields, secret=self.secret)
        except ProtocolError as exc:
            return self._refuse(400, str(exc))
        except TrustError as exc:
            return self._refuse(403, str(exc))
        if self.imeis and delivery.imei not in self.imeis:
            return self._refuse(403, f"imei {delivery.imei} is not one of this hub's modems")
        key = (delivery.imei, delivery.momsn)
        if key in self._seen:
            self.duplicates += 1
            return web.Response(text="OK (duplicate)")
        self._seen[key] = None
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        self.accepted += 1
        self._on_delivery(delivery)
        return web.Response(text="OK")

    def _refuse(self, status: int, reason: str) -> web.Response:
        self.rejected += 1
        log.warning("satellite webhook refused a POST (%d): %s", status, reason)
        return web.Response(status=status, text=reason)

    async def aclose(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


class MtClient:
    """Queues MT messages through the provider's HTTP API."""

    def __init__(self, mt_url: str, username: str, password: str, *, transport: str = "satellite") -> None:
        self.mt_url = mt_url
        self.username = username
        self.password = password
        self.transport = transport
        self._http: aiohttp.ClientSession | None = None

    async def send(self, imei: str, data: bytes, *, deadline: float = 30.0) -> int:
        """Queue ``data`` for ``imei``; returns the provider's MT id."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        form = {"imei": imei, "username": self.username, "password": self.password, "data": data.hex()}
        try:
            async with self._http.post(
                self.mt_url, data=form, timeout=aiohttp.ClientTimeout(total=deadline)
            ) as response:
                text = (await response.text()).strip()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LinkDown(f"MT API unreachable: {exc}", transport=self.transport, peer=imei) from exc
        if status != 200:
            raise LinkDown(f"MT API answered HTTP {status}", transport=self.transport, peer=imei)
        return self._interpret(imei, text)

    def _interpret(self, imei: str, text: str) -> int:
        parts = text.split(",", 2)
        if parts[0] == "OK" and len(parts) == 2 and parts[1].isdigit():
            return int(parts[1])
        if parts[0] != "FAILED" or len(parts) < 2 or not parts[1].isdigit():
            raise LinkDown(
                f"MT API answer not understood: {text[:80]!r}", transport=self.transport, peer=imei
            )
        code, reason = int(parts[1]), parts[2] if len(parts) > 2 else ""
        message = f"MT API refused ({code}): {reason}"
        if code == 13:  # the account's credit is spent
            raise BudgetExhausted(message, transport=self.transport, peer=imei, retry_after=3600.0)
        if code in (10, 11, 12, 14, 15, 16):
            raise DeliveryRefused(message, transport=self.transport, peer=imei, reason=str(code))
        raise LinkDown(message, transport=self.transport, peer=imei)

    async def reachable(self, deadline: float = 5.0) -> None:
        """``LinkDown`` unless the MT API's host accepts a TCP connection (no request, so no cost)."""
        parts = urlsplit(self.mt_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(deadline):
                _, writer = await asyncio.open_connection(parts.hostname, port)
        except (OSError, TimeoutError) as exc:
            raise LinkDown(
                f"MT API {parts.hostname}:{port} unreachable: {exc}", transport=self.transport
            ) from exc
        writer.close()
        await writer.wait_closed()

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.close()


class SatelliteWebhookTransport(SatelliteBase):
    """The webhook role: MO messages arrive as provider POSTs, MT messages go out through ``mt_url``."""

    def __init__(
        self,
        name: str,
        *,
        receiver_host: str,
        receiver_port: int,
        mt: MtClient | None,
        budget: CreditBudget,
        logger: logging.Logger,
        min_priority: int = 2,
        path: str = "/iridium/mo",
        token: str | None = None,
        imeis: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name, WEBHOOK_MTU, budget, min_priority, logger)
        # Without the provider's secret any POST may name any IMEI: learn no address from one.
        self.capabilities = dataclasses.replace(self.capabilities, sources_vouched=token is not None)
        self.receiver = WebhookReceiver(
            receiver_host, receiver_port, self._on_delivery, path=path, secret=token, imeis=imeis
        )
        self.mt = mt
        self.guard = self.receiver.guard
        """Bounds the webhook's connections; its refusals show in /healthz."""

    async def start(self) -> None:
        await self.receiver.start()

    def _on_delivery(self, delivery: MoDelivery) -> None:
        meta: dict[str, Any] = {
            "momsn": delivery.momsn,
            "transmit_time": delivery.transmit_time,
            "credits": sbd.credits_for(len(delivery.data)),
        }
        if delivery.latitude is not None and delivery.longitude is not None:
            meta |= {
                "latitude": delivery.latitude,
                "longitude": delivery.longitude,
                "cep_km": delivery.cep_km,
            }
        self._put(Received(source=delivery.imei, data=delivery.data, meta=meta))

    def _check_dest(self, dest: str) -> MtClient:
        if not is_imei(dest):
            raise DeliveryRefused(
                "a modem's address on this link is its 15-digit IMEI",
                transport=self.name,
                peer=dest,
                reason="address",
            )
        if self.mt is None:
            raise DeliveryRefused(
                "no mt_url configured: this end only receives",
                transport=self.name,
                peer=dest,
                reason="receive-only",
            )
        return self.mt

    async def send(self, dest: str, data: bytes, *, priority: int = 1) -> None:
        if self.closed:
            raise TransportClosed("send after close", transport=self.name, peer=dest)
        mt = self._check_dest(dest)
        credits = self._admit(dest, data, priority, len(data))
        try:
            mt_id = await mt.send(dest, data)
        except BaseException:
            self.budget.refund(credits)
            raise
        self.log.info(
            "%s: MT %d, %d bytes to %s cost %d credits (%d of %d used today)",
            self.name,
            mt_id,
            len(data),
            dest,
            credits,
            self.budget.used_today,
            self.budget.daily,
        )

    async def probe(self, dest: str) -> None:
        """The MT API's host answers a TCP connect: no request, no credit."""
        if self.closed:
            raise TransportClosed("probe after close", transport=self.name, peer=dest)
        try:
            mt = self._check_dest(dest)
        except DeliveryRefused as exc:
            raise LinkDown(str(exc), transport=self.name, peer=dest) from exc
        await mt.reachable()

    async def aclose(self) -> None:
        if self.closed:
            return
        self._end_events()
        await self.receiver.aclose()
        if self.mt is not None:
            await self.mt.aclose()


async def open_webhook_role(
    table: Options, ctx: TransportContext, budget: CreditBudget, min_priority: int
) -> SatelliteWebhookTransport:
    """The webhook role of ``transports.satellite.open_transport`` (options in docs/satellite.md)."""
    name = table.where.removeprefix("links.")
    host, port = table.address("webhook_listen", example="0.0.0.0:8480")
    path = table.text("webhook_path", "/iridium/mo")
    if not path.startswith("/"):
        raise table.error("webhook_path", f"forventede en sti, der begynder med '/', ikke {path!r}")
    imeis = table.names("imeis", valid=is_imei, what="IMEI-numre på 15 cifre")
    mt_url = table.text("mt_url")
    mt: MtClient | None = None
    if mt_url is not None:
        if not mt_url.startswith(("http://", "https://")):
            raise table.error("mt_url", f"forventede en http(s)-adresse, ikke {mt_url!r}")
        username, password = table.text("mt_username"), table.text("mt_password")
        if username is None or password is None:
            raise table.error("", "mt_url kræver mt_username og mt_password (kontoen hos udbyderen)")
        mt = MtClient(mt_url, username, password, transport=name)
    webhook = SatelliteWebhookTransport(
        name,
        receiver_host=host,
        receiver_port=port,
        mt=mt,
        budget=budget,
        logger=ctx.logger,
        min_priority=min_priority,
        path=path,
        token=table.text("webhook_token"),
        imeis=tuple(imeis),
    )
    try:
        await webhook.start()
    except OSError as exc:
        await webhook.aclose()
        raise table.error(
            "webhook_listen", f"kan ikke lytte på {host}:{port}: {exc}; vælg en ledig port"
        ) from exc
    return webhook
