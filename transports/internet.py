"""The internet link: hubs POST batches of signed frames to each other over HTTP or HTTPS (aiohttp).

Every hub serves ``POST /v1/frames`` and ``GET /v1/probe`` and keeps one client session for its peers. A
peer's address is its base URL (``http://relay-nord.example:8471``). Sends to one URL are gathered by a
single pump task per destination (its lanes in ``transports.internet_outbox``): a routine or normal frame
reaching an idle pump waits up to ``batch_delay`` for company (an urgent or life-safety frame, an ack or a
full POST's worth ends the wait: those never wait), everything queued while a POST is in flight rides in the
next one, and each ``send`` returns when the POST carrying its frame got 2xx. ``send_batch`` hands many
frames to one destination under one deadline (the hub's router sends a batch per next hop this way) and
reports each frame's outcome. The body is each frame prefixed by its length as a 2-byte big-endian integer
(the sans-IO codec in ``transports.internet_codec``); the ``X-Beredt-Reply-To`` header carries the sender's
base URL, which becomes ``Received.source`` (a wildcard host there stands for the connection's source
address): where hop acks go, a hint only. The ``X-Beredt-Address-Card`` header carries the sender's signed
address card (``Received.meta["card"]``), the only thing the hub learns a peer's address from. A 204 only
says the frames sit in the receiver's memory, so the link gives no hop ack (``link_ack=False``). Peer
reachability changes are reported once per change as ``LinkChanged(peer=url)``.

Acks go first both ways. The hub hands in ``TransportContext.frame_rank`` (acks rank above any data,
data ranks by priority), so this module orders frames without knowing message kinds: received frames
wait in a ``RankedQueue`` and sent acks ride in a lane above life-safety data. When more than half of
``receive_queue`` is data waiting for the hub, a batch of data only is answered 503 with ``Retry-After``
(a batch carrying an ack is taken up to the whole ``receive_queue``); a sender told so waits and retries
the batch, without reporting the peer down. Options are checked by ``transports.internet_settings``; see
``docs/internet.md`` for options, wire format and TLS set-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy as copy_module
import ssl
import types
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from hub.core.address_card import MAX_CARD_TEXT
from hub.core.bounded_http import ConnectionGuard, ConnectionLimits, GuardedSite, listen_tcp, source_of
from hub.core.errors import (
    BudgetExhausted,
    ConfigError,
    DeliveryRefused,
    FrameTooLarge,
    LinkDown,
    ProtocolError,
    TransportClosed,
    TransportError,
)
from hub.core.ranked import URGENT_RANK, RankedQueue
from hub.core.tasks import cancel_and_wait
from hub.core.time_answer import MAX_ROUND_TRIP, NONCE_SIZE
from hub.core.transport import (
    Capabilities,
    Cost,
    LinkChanged,
    OutFrame,
    Received,
    TransportContext,
    TransportEvent,
)

# The codec and the options live in modules of their own; re-exported so that they stay importable from here.
from transports.internet_codec import MAX_MTU as MAX_MTU
from transports.internet_codec import BatchDecoder as BatchDecoder
from transports.internet_codec import encode_batch as encode_batch
from transports.internet_outbox import (
    BATCH_BYTES,
    PRIORITY_LANES,
    Destination,
    Item,
    Waiter,
    describe,
    parse_retry_after,
    prompt_queued,
    take_batch,
)
from transports.internet_settings import InternetOptions as InternetOptions
from transports.internet_settings import answer_address, base_url, is_wildcard
from transports.internet_settings import parse_options as parse_options

FRAMES_PATH = "/v1/frames"
PROBE_PATH = "/v1/probe"
REPLY_TO_HEADER = "X-Beredt-Reply-To"  # where to send hop acks: a hint, never learned
CARD_HEADER = "X-Beredt-Address-Card"  # the sender's signed address card (hub.core.address_card)
TIME_HEADER = "X-Beredt-Time"  # a probe's signed answer to a time challenge (hub.core.time_answer)
RETRY_AFTER = 1  # seconds a busy receiver asks data-only batches to wait
PROBE_TIMEOUT_CAP = 2.0  # probes must answer fast: the health monitor relies on them
SHUTDOWN_GRACE = 2.0  # seconds aclose waits for request handlers still running
MAX_DESTINATIONS = (
    256  # client-side peers kept; idle ones beyond this are forgotten, least recently used first
)
# Idle connections close after 30 s, longer than a peer's aiohttp client keeps one for reuse (15 s), so a
# peer never POSTs into a connection this side is closing. 64 per address leaves room for a dozen hubs behind
# one NAT (each holds a few). Bodies are timed by the handler itself.
SERVER_LIMITS = ConnectionLimits(total=1024, per_source=64, idle_timeout=30.0, body_timeout=None)


@dataclass(slots=True)
class InternetStats:
    """Counters for benchmarks, tests and the hub's link page."""

    posts_sent: int = 0
    frames_sent: int = 0
    posts_received: int = 0
    frames_received: int = 0
    largest_batch_received: int = 0
    refused_busy: int = 0
    busy_answers: int = 0  # 503 with Retry-After received as a sender: waited and retried


class InternetTransport:
    """One hub's internet link: an aiohttp server for inbound POSTs and one client session for peers."""

    def __init__(self, name: str, options: InternetOptions, ctx: TransportContext) -> None:
        self.name = name
        self.capabilities = Capabilities(
            mtu=options.mtu,
            link_ack=False,
            cost=Cost.FREE,
            bytes_per_second=10e6,
            address_cards=ctx.address_card is not None,
        )
        self.stats = InternetStats()
        self.guard = ConnectionGuard(SERVER_LIMITS)
        """Bounds the server's connections; its refusals show in /healthz."""
        self._options = options
        self._node_id = ctx.node_id
        self._logger = ctx.logger
        self._rank = ctx.frame_rank
        self._address_card = ctx.address_card
        self._time_answer = ctx.time_answer
        # Received frames by rank, link changes above them; None (the end mark) is queued last of all.
        self._events: RankedQueue[TransportEvent | None] = RankedQueue(URGENT_RANK + 2)
        self._high_water = max(1, options.receive_queue // 2)
        self._peers: dict[str, Destination] = {}
        self._closed = False
        self._max_body = max(BATCH_BYTES, options.mtu + 2)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._headers: dict[str, str] = {}
        self._scheme = "https" if options.tls_cert else "http"
        self.bound_url = ""
        self.public_url = ""

    async def start(self) -> None:
        """Bind the server and open the client session; ``ConfigError`` if the address cannot be used."""
        opts = self._options
        server_ssl, client_ssl = self._server_ssl(), self._client_ssl()
        app = web.Application(middlewares=[self.guard.middleware])
        app.router.add_post(FRAMES_PATH, self._handle_frames)
        app.router.add_get(PROBE_PATH, self._handle_probe)
        self._runner = web.AppRunner(
            app, access_log=None, auto_decompress=False, shutdown_timeout=SHUTDOWN_GRACE, handle_signals=False
        )
        await self._runner.setup()
        try:
            sock = listen_tcp(opts.host, opts.port)
            await GuardedSite(self._runner, sock, self.guard, ssl_context=server_ssl).start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(
                f"kan ikke lytte på {opts.host}:{opts.port} ({exc.strerror or exc}); vælg en ledig port",
                key=f"links.{self.name}.listen",
            ) from exc
        port = self._runner.addresses[0][1]
        host = f"[{opts.host}]" if ":" in opts.host else opts.host
        self.bound_url = f"{self._scheme}://{host}:{port}"
        self.public_url = (opts.public_url or self.bound_url).rstrip("/")
        if opts.public_url is None and is_wildcard(opts.host):
            self._logger.info(
                "%s: listening on all interfaces without public_url: peers answer to the address our "
                "connections come from, port %d (set public_url behind NAT or a proxy)",
                self.name,
                port,
            )
        self._headers = {REPLY_TO_HEADER: self.public_url, "Content-Type": "application/octet-stream"}
        connector = aiohttp.TCPConnector(ssl=client_ssl)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=opts.timeout), raise_for_status=False
        )

    def _server_ssl(self) -> ssl.SSLContext | None:
        opts = self._options
        if opts.tls_cert is None or opts.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(opts.tls_cert, opts.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"kan ikke indlæse certifikatet {opts.tls_cert} med nøglen {opts.tls_key}: {exc};"
                " forventede PEM-filer",
                key=f"links.{self.name}.tls_cert",
            ) from exc
        return context

    def _client_ssl(self) -> ssl.SSLContext | bool:
        opts = self._options
        if not opts.tls_verify:
            return False
        if opts.tls_ca is None:
            return True  # the system's trust store
        try:
            return ssl.create_default_context(cafile=str(opts.tls_ca))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"kan ikke indlæse CA-filen {opts.tls_ca}: {exc}; forventede en PEM-fil",
                key=f"links.{self.name}.tls_ca",
            ) from exc

    # --- inbound ---------------------------------------------------------------------------------

    async def _handle_frames(self, request: web.Request) -> web.Response:
        if self._closed:
            return web.Response(status=503, text="hub is shutting down")
        # Where to answer: a hint that changes no state. Addresses are learned only from the signed card.
        reply_to = answer_address(request.headers.get(REPLY_TO_HEADER, ""), request.remote)
        if reply_to is None:
            return self._refuse(
                400, "bad_reply_to", f"{REPLY_TO_HEADER} must be the sender's http(s) base URL"
            )
        if request.content_length is not None and request.content_length > self._max_body:
            return self._refuse(
                413, "body_too_large", f"body of {request.content_length} bytes > {self._max_body}"
            )
        decoder = BatchDecoder(self._options.mtu)
        frames: list[bytes] = []
        size = 0
        try:
            # A sender that stalls mid-body must not hold a handler (and shutdown) forever.
            async with asyncio.timeout(self._options.timeout):
                async for chunk in request.content.iter_any():
                    size += len(chunk)
                    if size > self._max_body:
                        return self._refuse(413, "body_too_large", f"body exceeds {self._max_body} bytes")
                    frames += decoder.receive_data(chunk)
            decoder.end()
        except TimeoutError:
            return self._refuse(408, "body_timeout", f"body not received within {self._options.timeout} s")
        except ConnectionResetError:  # the sender vanished mid-body: nothing to deliver, nobody to answer
            return self._refuse(400, "body_incomplete", "connection lost inside the body")
        except FrameTooLarge as exc:
            return self._refuse(413, "frame_too_large", str(exc))
        except ProtocolError as exc:
            return self._refuse(400, "bad_batch", str(exc))
        ranks = [self._rank(data) for data in frames]
        data_only = max(ranks, default=0) < URGENT_RANK
        queued = self._events.qsize()
        data_queued = self._events.qsize(below=URGENT_RANK)
        # Over the high-water mark data waits at the sender, so acks still get in; the whole queue stays
        # bounded for batches with acks too. An empty queue always admits a batch, so a batch larger than
        # the limit cannot wedge a peer.
        busy = data_only and data_queued > 0 and data_queued + len(frames) > self._high_water
        if busy or (queued and queued + len(frames) > self._options.receive_queue):
            self.stats.refused_busy += 1
            self.guard.refused["receive_queue_full"] += 1
            self._logger.warning(
                "%s: %d frames waiting for the hub; refusing %s with 503", self.name, queued, reply_to
            )
            return web.Response(
                status=503, text="receive queue full", headers={"Retry-After": str(RETRY_AFTER)}
            )
        # the connection's address, not the claimed reply-to: unsigned state is counted against it
        details = {"remote": source_of(request.transport) if request.transport is not None else ""}
        card = request.headers.get(CARD_HEADER)
        if card is not None and len(card) <= MAX_CARD_TEXT:  # checked by the hub; a longer one is ignored
            details["card"] = card
        meta = types.MappingProxyType(details)
        for data, rank in zip(frames, ranks, strict=True):
            self._events.put_nowait(Received(source=reply_to, data=data, meta=meta), rank)
        self.stats.posts_received += 1
        self.stats.frames_received += len(frames)
        self.stats.largest_batch_received = max(self.stats.largest_batch_received, len(frames))
        return web.Response(status=204)

    def _refuse(self, status: int, reason: str, text: str) -> web.Response:
        """An answer to a POST the link will not take, counted by reason with the connection refusals
        (``/healthz`` -> ``link_http_refused``)."""
        self.guard.refused[reason] += 1
        return web.Response(status=status, text=text)

    async def _handle_probe(self, request: web.Request) -> web.Response:
        headers = {}
        nonce = request.query.get("time", "")
        if self._time_answer is not None and len(nonce) == 2 * NONCE_SIZE:
            try:
                answer = self._time_answer(bytes.fromhex(nonce))
            except ValueError:  # not hex: no answer, the probe itself still answers
                answer = None
            if answer is not None:
                headers[TIME_HEADER] = answer
        return web.Response(status=200 if not self._closed else 503, text=self._node_id, headers=headers)

    async def events(self) -> AsyncIterator[TransportEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                self._events.put_nowait(None, 0)  # keep the end mark for any later reader
                return
            yield event

    # --- outbound --------------------------------------------------------------------------------

    async def _peer(self, dest: str) -> Destination:
        """The client-side state of ``dest``, made on first use. Destinations come from senders' reply-to
        headers too (hop acks go there), so at most ``MAX_DESTINATIONS`` are kept: beyond that the least
        recently used idle one is forgotten, its pump stopped."""
        peer = self._peers.pop(dest, None)
        if peer is None:
            url = base_url(dest)
            if url is None:
                raise DeliveryRefused(
                    "address is not an http(s) base URL", transport=self.name, peer=dest, reason="bad-address"
                )
            peer = Destination(
                dest, url.joinpath(FRAMES_PATH.lstrip("/")), url.joinpath(PROBE_PATH.lstrip("/"))
            )
            excess = len(self._peers) + 1 - MAX_DESTINATIONS
            if excess > 0:
                # Chosen and removed without an await, so none of them can take a frame meanwhile.
                idle = [p for p in self._peers.values() if not p.in_flight and not any(p.lanes)][:excess]
                for old in idle:
                    del self._peers[old.url]
                for old in idle:
                    await cancel_and_wait(old.pump)
        self._peers[dest] = peer  # most recently used last
        return peer

    def status(self) -> dict[str, int]:
        """Figures for the hub's link view."""
        return {
            "destinations": len(self._peers),
            "refused_busy": self.stats.refused_busy,
            "busy_answers": self.stats.busy_answers,
        }

    async def send(self, dest: str, data: bytes, *, priority: int = 1) -> None:
        (error,) = await self.send_batch(dest, [(data, priority)])
        if error is not None:
            raise error

    async def send_batch(self, dest: str, frames: Sequence[OutFrame]) -> list[TransportError | None]:
        """Queue ``frames`` for ``dest`` and wait, under one deadline, until the POSTs carrying them are
        answered; each frame's outcome in order (``SendsBatches``)."""
        if not frames:
            return []
        if self._closed:
            return self._all(frames, TransportClosed("send after close", transport=self.name, peer=dest))
        try:
            peer = await self._peer(dest)
        except DeliveryRefused as exc:
            return self._all(frames, exc)
        waiter = Waiter(asyncio.get_running_loop().create_future(), len(frames))
        mtu, queued = self.capabilities.mtu, 0
        for index, (data, priority) in enumerate(frames):
            if len(data) > mtu:
                waiter.settle(
                    index, FrameTooLarge(f"{len(data)} bytes > MTU {mtu}", transport=self.name, peer=dest)
                )
            elif not data:
                waiter.settle(
                    index, DeliveryRefused("empty frame", transport=self.name, peer=dest, reason="empty")
                )
            else:
                urgent = self._rank(data) >= URGENT_RANK
                lane = URGENT_RANK if urgent else min(max(priority, 0), PRIORITY_LANES - 1)
                peer.lanes[lane].append((data, waiter, index, lane))
                queued += 1
        if queued:
            if prompt_queued(peer, self._options.batch_max):
                peer.prompt.set()
            peer.wakeup.set()
            if peer.pump is None or peer.pump.done():
                peer.pump = asyncio.create_task(self._pump(peer), name=f"{self.name} pump -> {dest}")
        # Bounded: a batch delay, the POST ahead of ours and our own ones, each capped by the timeout.
        posts = -(-queued // self._options.batch_max)
        try:
            async with asyncio.timeout(self._options.batch_delay + (1 + posts) * self._options.timeout + 1.0):
                await waiter.future
        except TimeoutError:
            late: TransportError
            if peer.busy:  # the peer keeps asking us to wait: not a failure of the link
                late = BudgetExhausted(
                    "peer busy: frame still queued at its deadline",
                    transport=self.name,
                    peer=dest,
                    retry_after=RETRY_AFTER,
                )
            else:
                late = LinkDown(
                    "peer too slow: frame still queued at its deadline", transport=self.name, peer=dest
                )
            waiter.give_up(late)
        return waiter.outcomes

    @staticmethod
    def _all(frames: Sequence[OutFrame], error: TransportError) -> list[TransportError | None]:
        return [error] * len(frames)

    async def _pump(self, peer: Destination) -> None:
        """Send everything queued for ``peer``, a batch per POST, one POST at a time."""
        while True:
            await peer.wakeup.wait()
            await self._gather(peer)
            while batch := take_batch(peer, self._options.batch_max):
                peer.in_flight = batch
                await self._deliver(peer, batch)
                peer.in_flight = []
            peer.wakeup.clear()  # no await since _take found the lanes empty: no wake-up is lost

    async def _gather(self, peer: Destination) -> None:
        """Let frames sent about now join the first POST: up to ``batch_delay``, over at once when an
        urgent or life-safety frame or an ack is queued, or a full POST's worth of frames. Paced routine
        traffic then shares POSTs (each costs both ends far more CPU than a frame in it) while urgent
        traffic never waits for company."""
        if prompt_queued(peer, self._options.batch_max):
            return
        peer.prompt.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._options.batch_delay):
                await peer.prompt.wait()

    async def _deliver(self, peer: Destination, batch: list[Item]) -> None:
        try:
            await self._post(peer, encode_batch([item[0] for item in batch]))
        except BudgetExhausted as exc:
            # The peer is up but its queue is full of data: put the batch back in front of its lanes and
            # wait as told. Acks queued meanwhile lead the next batch, and the peer takes those.
            peer.busy = True
            self.stats.busy_answers += 1
            self._mark(peer, up=True, reason="peer answered")
            for item in reversed(batch):
                if not item[1].done():
                    peer.lanes[item[3]].appendleft(item)
            await asyncio.sleep(exc.retry_after)
            return
        except LinkDown as exc:
            self._mark(peer, up=False, reason=str(exc))
            # Everything else queued for this peer would fail the same way: fail it now, not one timeout each.
            stranded = peer.in_flight + batch + [item for lane in peer.lanes for item in lane]
            for lane in peer.lanes:
                lane.clear()
            self._fail(stranded, exc)
            return
        except FrameTooLarge as exc:
            peer.busy = False
            self._mark(peer, up=True, reason="peer answered")
            if len(batch) > 1:  # the peer's MTU is below ours: find the culprit, let the rest through
                for item in batch:
                    waiter, index = item[1], item[2]
                    if (
                        not waiter.done() and not waiter.settled[index]
                    ):  # else a LinkDown on an earlier one failed it
                        await self._deliver(peer, [item])
                return
            self._fail(batch, exc)
            return
        except DeliveryRefused as exc:
            peer.busy = False
            self._mark(peer, up=True, reason="peer answered")
            self._fail(batch, exc)
            return
        peer.busy = False
        self._mark(peer, up=True, reason="POST accepted")
        self.stats.posts_sent += 1
        self.stats.frames_sent += len(batch)
        for _, waiter, index, _ in batch:
            waiter.settle(index, None)

    async def _post(self, peer: Destination, body: bytes) -> None:
        """One POST; its outcome mapped to our errors (2xx returns, 413 / 4xx / 5xx / no answer raise)."""
        assert self._session is not None
        try:
            async with self._session.post(
                peer.frames_url, data=body, headers=self._post_headers(), allow_redirects=False
            ) as response:
                if response.status < 300:
                    return
                status, text = response.status, (await response.text(errors="replace"))[:200]
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError) as exc:
            why = f"POST failed: {describe(exc, self._options.timeout)}"
            raise LinkDown(why, transport=self.name, peer=peer.url) from exc
        message = f"HTTP {status}: {text}"
        if status == 503 and retry_after is not None:  # busy, not down: it asks us to come back
            raise BudgetExhausted(message, transport=self.name, peer=peer.url, retry_after=retry_after)
        if status == 413:
            raise FrameTooLarge(message, transport=self.name, peer=peer.url)
        if status >= 500 or status in (408, 429):  # server trouble, a slow path or rate limiting: try later
            raise LinkDown(message, transport=self.name, peer=peer.url)
        raise DeliveryRefused(message, transport=self.name, peer=peer.url, reason=f"http-{status}")

    def _post_headers(self) -> dict[str, str]:
        """The reply-to hint and, with a hub behind us, this node's signed address card (renewed by it)."""
        if self._address_card is None:
            return self._headers
        return {**self._headers, CARD_HEADER: self._address_card("internet", self.public_url)}

    @staticmethod
    def _fail(items: list[Item], error: TransportError) -> None:
        """Raise a copy of ``error`` in every waiting ``send`` (copies: waiters must not share tracebacks)."""
        for _, waiter, index, _ in items:
            if not waiter.done():
                copy = copy_module.copy(error)
                copy.__cause__ = error.__cause__
                waiter.settle(index, copy)

    def _mark(self, peer: Destination, *, up: bool, reason: str) -> None:
        """Record reachability; report only changes (the first failure, the first success after it)."""
        changed = peer.up is not up and (up is False or peer.up is False)
        peer.up = up
        if changed and not self._closed:
            self._logger.info("%s: peer %s %s (%s)", self.name, peer.url, "up" if up else "down", reason)
            self._events.put_nowait(LinkChanged(up=up, reason=reason, peer=peer.url), URGENT_RANK + 1)

    async def probe(self, dest: str) -> None:
        if self._closed:
            raise TransportClosed("probe after close", transport=self.name, peer=dest)
        assert self._session is not None
        peer = await self._peer(dest)
        timeout = aiohttp.ClientTimeout(total=min(self._options.timeout, PROBE_TIMEOUT_CAP))
        try:
            async with self._session.get(peer.probe_url, timeout=timeout) as response:
                status = response.status
                await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            why = f"probe failed: {describe(exc, timeout.total)}"
            self._mark(peer, up=False, reason=why)
            raise LinkDown(why, transport=self.name, peer=dest) from exc
        if status != 200:
            self._mark(peer, up=False, reason=f"probe answered HTTP {status}")
            raise LinkDown(
                f"probe answered HTTP {status}: not a running Beredt hub", transport=self.name, peer=dest
            )
        self._mark(peer, up=True, reason="probe answered")

    async def ask_time(self, dest: str, nonce: bytes) -> str | None:
        """Put a time challenge to ``dest`` in a probe (``GET /v1/probe?time=<nonce>``); its signed answer
        from the ``X-Beredt-Time`` header, or None if it gave none. The hub checks the answer."""
        if self._closed:
            raise TransportClosed("time challenge after close", transport=self.name, peer=dest)
        assert self._session is not None
        peer = await self._peer(dest)
        timeout = aiohttp.ClientTimeout(total=MAX_ROUND_TRIP)
        try:
            async with self._session.get(
                peer.probe_url.with_query(time=nonce.hex()), timeout=timeout
            ) as response:
                await response.read()
                return response.headers.get(TIME_HEADER) if response.status == 200 else None
        except (TimeoutError, aiohttp.ClientError) as exc:
            why = f"time challenge failed: {describe(exc, timeout.total)}"
            raise LinkDown(why, transport=self.name, peer=dest) from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        pumps = [peer.pump for peer in self._peers.values() if peer.pump is not None]
        try:
            for pump in pumps:
                pump.cancel()
            if pumps:
                await asyncio.wait(pumps, timeout=SHUTDOWN_GRACE)
        finally:
            for peer in self._peers.values():
                stranded = peer.in_flight + [item for lane in peer.lanes for item in lane]
                self._fail(stranded, TransportClosed("transport closed", transport=self.name, peer=peer.url))
            try:
                if self._runner is not None:
                    await self._runner.cleanup()
            finally:
                if self._session is not None:
                    await self._session.close()
                self._events.put_nowait(None, 0)


async def open_transport(name: str, options: Mapping[str, Any], ctx: TransportContext) -> InternetTransport:
    """``[links.<name>] kind = "internet"``: validate the options, bind the server, open the session."""
    # Relative paths are meant relative to the config file's folder; the context only tells us the data
    # directory, which the example layout keeps in that folder.
    parsed = parse_options(name, options, ctx.data_dir.parent)
    transport = InternetTransport(name, parsed, ctx)
    await transport.start()
    return transport
