"""A simulated Iridium SBD provider (RockBLOCK-style): the gateway and the customer's account behind it.

The cloud owns the radio side of every simulated ``Iridium9603`` attached to it. Each session takes
``session_delay`` seconds and then succeeds or fails with an injected MO status (``fail_next``, or
``service = False`` for 32 "no network service"). A delivered MO message is POSTed to ``webhook_url`` as
a form with the fields RockBLOCK sends (``imei``, ``momsn``, ``transmit_time`` as ``YY-MM-DD HH:MM:SS``
UTC, ``iridium_latitude``, ``iridium_longitude``, ``iridium_cep``, ``data`` as hex, and with a
``webhook_secret`` a ``JWT`` field: an HS256 token over the same fields), retried with back-off while the
receiver answers anything but 2xx. A payload that starts with ``RB`` + a 7-digit serial of another modem
on the account is forwarded to that modem instead, as MT traffic without the prefix. MT messages are
queued through an HTTP API shaped like RockBLOCK's (``POST /rockblock/MT`` with ``imei``, ``username``,
``password``, ``data`` hex; answers ``OK,<id>`` or ``FAILED,<code>,<text>``) and raise a ring alert on the
modem. Every background task is owned by the cloud and cancelled by ``aclose``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import random
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from hub.core.tasks import cancel_and_wait
from simulators.iridium_modem import MT_MAX, Iridium9603, SessionOutcome, mo_succeeded

log = logging.getLogger(__name__)

CREDIT_BYTES = 50  # the provider bills one credit per started 50 bytes of a message, and one at least


def credits_for(size: int) -> int:
    return max(1, -(-size // CREDIT_BYTES))


def rb_forward(data: bytes) -> tuple[int, bytes] | None:
    """The serial and the rest of an MO payload that starts ``RB`` + 7 digits: the provider forwards
    such a message to that modem on the same account."""
    head = data[:9]
    if len(head) == 9 and head[:2] == b"RB" and head[2:].isdigit():
        return int(head[2:]), bytes(data[9:])
    return None


@dataclass
class Account:
    """One modem on the provider account."""

    modem: Iridium9603
    serial: int
    mt_queue: deque[tuple[int, bytes]] = field(default_factory=deque)
    failures: deque[int] = field(default_factory=deque)
    credits: int = 0


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    fields: dict[str, str]
    status: int | None  # None: the receiver could not be reached


def hs256_token(claims: dict[str, str], secret: str) -> str:
    """A compact JWT (RFC 7519) signed with HMAC-SHA256, as the provider attaches to each POST."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


class IridiumCloud:
    """The gateway, the webhook sender and the MT API of one simulated provider account."""

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        session_delay: float = 0.0,
        network_time: Callable[[], float] = time.time,
        username: str = "beredt",
        password: str = "secret",
        webhook_attempts: int = 5,
        seed: int | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.session_delay = session_delay
        self.network_time_source = network_time
        self.username = username
        self.password = password
        self.webhook_attempts = webhook_attempts
        self.service = True
        self.signal = 5
        self.webhook_log: list[WebhookAttempt] = []
        self.mo_log: list[tuple[str, bytes]] = []  # (imei, data) of every MO message the gateway took
        self.forwarded: list[tuple[int, int, bytes]] = []  # (from serial, to serial, data)
        self.mt_url = ""
        self.session_started = asyncio.Event()
        """Set whenever a session begins; tests clear it and wait for the next one."""
        self._accounts: dict[str, Account] = {}
        self._mt_ids = itertools.count(4_114_651)
        self._random = random.Random(seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._closed = False

    # -- accounts ---------------------------------------------------------------------------------

    def attach(self, modem: Iridium9603, serial: int) -> Account:
        account = Account(modem, serial)
        self._accounts[modem.imei] = account
        return account

    def account(self, imei: str) -> Account:
        return self._accounts[imei]

    def fail_next(self, imei: str, *codes: int) -> None:
        """The next sessions of ``imei`` end with these MO status codes, in order."""
        self._accounts[imei].failures.extend(codes)

    def queue_mt(self, imei: str, data: bytes) -> int:
        """Queue an MT message and ring the modem; returns the MT id."""
        if not 1 <= len(data) <= MT_MAX:
            raise ValueError(f"an MT message is 1-{MT_MAX} bytes, not {len(data)}")
        account = self._accounts[imei]
        mt_id = next(self._mt_ids)
        account.mt_queue.append((mt_id & 0xFFFF, data))
        if self.service:
            account.modem.ring()
        return mt_id

    # -- the Constellation side of each modem -----------------------------------------------------

    def signal_bars(self) -> int:
        return self.signal if self.service else 0

    def network_time(self) -> float | None:
        return self.network_time_source() if self.service else None

    def start_session(self, modem: Iridium9603, mo: bytes | None) -> None:
        self.session_started.set()
        self._spawn(self._session(self._accounts[modem.imei], mo), f"iridium session {modem.imei}")

    async def _session(self, account: Account, mo: bytes | None) -> None:
        await asyncio.sleep(self.session_delay)
        if not self.service:
            code = 32
        elif account.failures:
            code = account.failures.popleft()
        else:
            code = 0
        if not mo_succeeded(code):
            account.modem.finish_session(SessionOutcome(code))
            return
        if mo is not None:
            account.credits += credits_for(len(mo))
            self._route_mo(account, mo)
        mt: bytes | None = None
        mtmsn = 0
        if account.mt_queue:
            mtmsn, mt = account.mt_queue.popleft()
            account.credits += credits_for(len(mt))
        elif mo is None:
            account.credits += 1  # an empty mailbox check is billed too
        account.modem.finish_session(SessionOutcome(code, mt, mtmsn, len(account.mt_queue)))

    def _route_mo(self, account: Account, mo: bytes) -> None:
        self.mo_log.append((account.modem.imei, mo))
        forward = rb_forward(mo)
        if forward is not None:
            serial, rest = forward
            target = next((a for a in self._accounts.values() if a.serial == serial), None)
            if target is None or not rest:
                log.warning("MO from RB%07d for unknown modem RB%07d dropped", account.serial, serial)
                return
            self.forwarded.append((account.serial, serial, rest))
            self.queue_mt(target.modem.imei, rest)
            return
        fields = {
            "imei": account.modem.imei,
            "momsn": str(account.modem.momsn + 1),  # the modem counts it when the session ends
            "transmit_time": datetime.fromtimestamp(self.network_time_source(), UTC).strftime(
                "%y-%m-%d %H:%M:%S"
            ),
            "iridium_latitude": "56.1572",
            "iridium_longitude": "10.2107",
            "iridium_cep": "4",
            "data": mo.hex(),
        }
        if self.webhook_secret:
            fields["JWT"] = hs256_token(fields, self.webhook_secret)
        self._spawn(self._post_webhook(fields), f"iridium webhook {account.modem.imei}")

    async def _post_webhook(self, fields: dict[str, str]) -> None:
        if self.webhook_url is None or self._http is None:
            return  # no receiver configured: the message stays in mo_log only
        delay = 0.1
        for _ in range(self.webhook_attempts):
            status: int | None
            try:
                async with self._http.post(
                    self.webhook_url, data=fields, timeout=aiohttp.ClientTimeout(total=10)
                ) as response:
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status = None
            self.webhook_log.append(WebhookAttempt(fields, status))
            if status is not None and 200 <= status < 300:
                return
            await asyncio.sleep(self._random.uniform(delay / 2, delay))
            delay = min(5.0, delay * 2)
        log.warning("webhook gave up on MO %s from %s", fields["momsn"], fields["imei"])

    # -- the MT API -------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Open the HTTP client for webhooks and serve the MT API; ``mt_url`` then says where."""
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_post("/rockblock/MT", self._mt_api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.create_server((host, port))
        await web.SockSite(self._runner, sock).start()
        bound = sock.getsockname()
        self.mt_url = f"http://{bound[0]}:{bound[1]}/rockblock/MT"

    async def _mt_api(self, request: web.Request) -> web.Response:
        params: dict[str, str] = dict(request.query)
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
        if params.get("username") != self.username or params.get("password") != self.password:
            return _failed(10, "Invalid login credentials")
        if params.get("imei") not in self._accounts:
            return _failed(11, "No RockBLOCK with this IMEI found on your account")
        hex_data = params.get("data", "")
        if not hex_data:
            return _failed(16, "No data")
        try:
            data = bytes.fromhex(hex_data)
        except ValueError:
            return _failed(14, "Could not decode hex data")
        if len(data) > MT_MAX:
            return _failed(15, "Data too long")
        if params.get("flush") == "yes":
            self._accounts[params["imei"]].mt_queue.clear()
        return web.Response(text=f"OK,{self.queue_mt(params['imei'], data)}")

    # -- lifetime ---------------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        if self._closed:
            work.close()
            return
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            await cancel_and_wait(task)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()


def _failed(code: int, text: str) -> web.Response:
    return web.Response(text=f"FAILED,{code},{text}")
