"""The MQTT link: Beredt frames as QoS 1 publications through a broker, with presence and failover.

paho-mqtt (callback API 2, MQTT v5) is driven from the event loop the way aiomqtt does it (one
connection's part is ``transports.mqtt_connection``): the socket is watched with
``add_reader``/``add_writer``, ``loop_read``/``loop_write`` run when it is ready and ``loop_misc`` once a
second keeps the MQTT keepalive. Only paho's blocking ``connect`` (TCP and TLS handshake) runs in a
worker thread, and what it reports back reaches the loop through ``call_soon_threadsafe``. Each
connection gets a fresh paho client, so nothing from a dead connection can leak into the next; the
broker keeps our persistent session (fixed client id, clean start off, a session expiry), so QoS 1
frames for us queue at the broker while the hub is down or restarting.

``send`` returns when the broker's PUBACK arrives. That only proves the broker has the frame, so
``link_ack`` is False and the hub sends its own hop acks. A lost connection fails every pending send
with ``LinkDown`` at once; a supervisor task reconnects with capped, jittered exponential back-off,
cycling through the configured brokers. Presence is a retained ``online`` published on connect and
a retained ``offline`` last will; peers' presence becomes ``LinkChanged(peer=<node id>)``.

``probe`` checks the peer's presence and that the broker still carries messages at all: an echo, a
small publication to our own inbox that must come back through the broker. A broker that goes quiet
(a wedged process, a path that drops every packet) leaves the TCP session open and the retained
presence as it was, so only a round trip tells: no echo, and the link is down. One echo serves every
peer probed in the same round.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import threading
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from hub.core.errors import (
    ConfigError,
    DeliveryRefused,
    FrameTooLarge,
    LinkDown,
    ProtocolError,
    TransportClosed,
)
from hub.core.tasks import cancel_and_wait
from hub.core.transport import (
    BROADCAST_ADDRESS,
    Capabilities,
    LinkChanged,
    Received,
    TransportContext,
    TransportEvent,
)
from transports.mqtt_connection import INFLIGHT as INFLIGHT  # re-exported: benchmarks size by it
from transports.mqtt_connection import BrokerConnection, ConnectionSettings
from transports.mqtt_topics import (
    GROUP_SCHEME,
    PRESENCE_OFFLINE,
    PRESENCE_ONLINE,
    Inbound,
    MqttOptions,
    TopicLayout,
    is_node_id,
    parse_options,
    parse_presence,
)

BACKOFF_START = 0.25
PRESENCE_WAIT = (
    1.0  # how long probe() waits for a peer's retained presence it has not seen yet (ms on a live broker)
)
GOODBYE_WAIT = 2.0  # how long aclose() spends announcing "offline" and disconnecting cleanly
ECHO_MARK = b"beredt-echo:"  # never a frame (frames start with their version byte), so never confused
ECHO_FRESH = 0.5  # seconds an echo that came back vouches for the broker to further probes
ECHO_WAIT = 2.0  # an echo not back by then fails (the hub's prober may give up sooner)


class MqttTransport:
    """A node's attachment to the broker (or the federation behind it). See the module docstring."""

    def __init__(self, name: str, options: MqttOptions, node_id: str, ctx: TransportContext) -> None:
        self.name = name
        self.options = options
        self.node_id = node_id
        self.capabilities = Capabilities(
            mtu=options.mtu,
            link_ack=False,
            bytes_per_second=1_000_000.0,
            broadcast=True,
            node_id_addresses=True,
        )
        self.topics = TopicLayout(options.prefix, node_id)
        self.malformed = 0
        self.paused_reads = 0
        self._reading_paused = False
        self._log = ctx.logger
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._events: asyncio.Queue[TransportEvent | None] = asyncio.Queue()
        self._conn: BrokerConnection | None = None  # set while connected (CONNACK received)
        self._up = False  # and subscribed, announced and reported up
        self._presence: dict[str, bool] = {}
        self._presence_seen: dict[str, asyncio.Event] = {}
        self._echoes: dict[bytes, asyncio.Future[None]] = {}
        self._echo: asyncio.Future[None] | None = None  # the round trip in flight, shared by probes
        self._echoed_at = -ECHO_FRESH  # loop time the last echo came back
        self._echo_count = 0
        self._echo_refused = False  # the broker's ACL forbids it: presence is all a probe can check
        self._watched: set[str] = {p for p in options.peers if p != node_id}
        self._closed = False
        self._supervisor = asyncio.create_task(self._supervise(), name=f"mqtt-{name}-supervisor")

    # --- the Transport protocol ----------------------------------------------------------------------
    async def send(self, dest: str, data: bytes, *, priority: int = 1) -> None:
        if self._closed:
            raise TransportClosed("send after close", transport=self.name, peer=dest)
        if len(data) > self.capabilities.mtu:
            raise FrameTooLarge(
                f"{len(data)} bytes > MTU {self.capabilities.mtu}", transport=self.name, peer=dest
            )
        try:
            topic = self.topics.publish_topic(dest)
        except ProtocolError as exc:
            raise DeliveryRefused(str(exc), transport=self.name, peer=dest, reason="bad-address") from exc
        conn = self._conn
        if conn is None:
            raise LinkDown("not connected to a broker", transport=self.name, peer=dest)
        self._watch(dest)
        try:
            await conn.publish(topic, data)
        except (LinkDown, DeliveryRefused) as exc:
            exc.peer = dest
            raise

    async def events(self) -> AsyncIterator[TransportEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            self._maybe_resume()
            yield event

    async def probe(self, dest: str) -> None:
        if self._closed:
            raise TransportClosed("probe after close", transport=self.name, peer=dest)
        if self._conn is None:
            raise LinkDown("not connected to a broker", transport=self.name, peer=dest)
        if dest == BROADCAST_ADDRESS or dest.startswith(GROUP_SCHEME):
            return
        try:
            self.topics.publish_topic(dest)
        except ProtocolError as exc:
            raise DeliveryRefused(str(exc), transport=self.name, peer=dest, reason="bad-address") from exc
        self._watch(dest)
        await self._echo_round_trip(dest)
        if dest not in self._presence:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PRESENCE_WAIT):
                    await self._presence_seen.setdefault(dest, asyncio.Event()).wait()
        if not self._presence.get(dest, False):
            state = "offline" if dest in self._presence else f"unknown after {PRESENCE_WAIT:g} s"
            raise LinkDown(f"peer presence is {state}", transport=self.name, peer=dest)

    async def _echo_round_trip(self, dest: str) -> None:
        """Return once an echo went through the broker and back (recently, or now); ``LinkDown`` if not."""
        if self._echo_refused or self._loop.time() - self._echoed_at < ECHO_FRESH:
            return
        if self._echo is None or self._echo.done():
            self._echo = asyncio.ensure_future(self._send_echo())
        try:
            await asyncio.shield(self._echo)
        except LinkDown as exc:
            raise LinkDown(str(exc), transport=self.name, peer=dest) from exc

    async def _send_echo(self) -> None:
        conn = self._conn
        if conn is None:
            raise LinkDown("not connected to a broker", transport=self.name)
        self._echo_count += 1
        token = ECHO_MARK + b"%d" % self._echo_count
        back = self._echoes[token] = self._loop.create_future()
        try:
            async with asyncio.timeout(ECHO_WAIT):
                await conn.publish(self.topics.publish_topic(self.node_id), token)
                await back
        except DeliveryRefused as exc:
            self._echo_refused = True
            self._log.warning(
                "mqtt link %s: the broker refuses our echo (%s); probes check presence only and cannot"
                " notice a broker that acknowledges and delivers nothing: let each node write its own"
                " inbox topic (deploy/mqtt/acl.example does)",
                self.name,
                exc,
            )
            return
        except TimeoutError:
            raise LinkDown(
                f"the broker passes nothing: our own echo did not come back within {ECHO_WAIT:g} s",
                transport=self.name,
            ) from None
        finally:
            self._echoes.pop(token, None)
        self._echoed_at = self._loop.time()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True  # the supervisor stops at its next step
        try:
            if self._conn is not None:
                await self._goodbye(self._conn)
        finally:
            await cancel_and_wait(self._supervisor)
            self._events.put_nowait(None)

    # --- connection management -----------------------------------------------------------------------
    def _connection_settings(self) -> ConnectionSettings:
        return ConnectionSettings(
            name=self.name,
            options=self.options,
            will_topic=self.topics.presence(self.node_id),
            loop=self._loop,
            loop_thread=self._loop_thread,
            log=self._log,
            on_message=self._on_message,
        )

    async def _supervise(self) -> None:
        delay, index = BACKOFF_START, 0
        while not self._closed:
            broker = self.options.brokers[index]
            conn: BrokerConnection | None = None
            try:
                conn = BrokerConnection(self._connection_settings(), broker)
                await self._establish(conn)
            except asyncio.CancelledError:  # aclose() while connecting
                if conn is not None:
                    await self._release(conn)
                raise
            except Exception as exc:  # whatever goes wrong, a crisis link keeps trying
                self._log.warning("mqtt link %s: cannot use broker %s: %s", self.name, broker, exc)
                index = (index + 1) % len(self.options.brokers)
                if conn is not None:
                    await self._release(conn)
            else:
                delay = BACKOFF_START
                self._conn, self._reading_paused = conn, False
                try:
                    await self._announce(conn)
                    # Up only now: our subscriptions are live at the broker, so frames sent to us from
                    # here on are queued for us. Peer presence that came in meanwhile follows in order.
                    self._up = True
                    self._put(LinkChanged(up=True, reason=f"connected to {broker}"))
                    for node, up in sorted(self._presence.items()):
                        self._put(LinkChanged(up=up, reason=_presence_reason(up), peer=node))
                    why = await self._serve(conn)
                finally:
                    # Presence learnt on a dead connection is stale; the next one reports it afresh.
                    self._conn, self._up = None, False
                    self._presence.clear()
                    self._presence_seen.clear()
                    await self._release(conn)
                self._log.log(
                    logging.INFO if self._closed else logging.WARNING, "mqtt link %s: %s", self.name, why
                )
                self._put(LinkChanged(up=False, reason=why))
            if not self._closed:
                await asyncio.sleep(random.uniform(delay / 2, delay))
                delay = min(self.options.reconnect_max, delay * 2)

    async def _establish(self, conn: BrokerConnection) -> None:
        try:
            conn.job = asyncio.ensure_future(asyncio.to_thread(conn.connect_blocking))
            # paho bounds TCP connect and TLS handshake by connect_timeout each; name resolution is
            # bounded only by the resolver, so the whole step gets a deadline of its own.
            async with asyncio.timeout(3 * self.options.connect_timeout):
                await asyncio.shield(conn.job)
            conn.attach()
            async with asyncio.timeout(self.options.connect_timeout):
                await conn.connack
        except (OSError, ValueError, TimeoutError) as exc:  # socket, DNS, TLS (ssl.SSLError is an OSError)
            raise LinkDown(f"cannot connect to {conn.broker}: {exc!r}", transport=self.name) from exc

    async def _announce(self, conn: BrokerConnection) -> None:
        """Subscribe (again: retained presence is re-sent per subscribe) and say we are online."""
        conn.subscribe(
            [self.topics.inbox_filter()] + [self.topics.presence(p) for p in sorted(self._watched)]
        )
        conn.subscribe(
            [self.topics.all_filter()] + [self.topics.group_filter(g) for g in self.options.groups],
            no_local=True,
        )
        try:
            await conn.publish(self.topics.presence(self.node_id), PRESENCE_ONLINE, retain=True)
        except DeliveryRefused as exc:  # an ACL without our presence topic; frames may still flow
            self._log.warning("mqtt link %s: presence refused: %s", self.name, exc)
        except LinkDown:  # the connection died under us; _serve reports it
            pass

    async def _release(self, conn: BrokerConnection) -> None:
        """Close ``conn``, first letting a connect() still running in its worker thread finish (bounded)."""
        job = conn.job
        if job is not None:
            if not job.done():
                # The thread cannot be cancelled; wait so the socket it opens is closed, not leaked.
                await asyncio.wait({job}, timeout=2 * self.options.connect_timeout + 1)
            if job.done() and not job.cancelled():
                job.exception()  # retrieved: it was already reported through _establish
        conn.close()

    async def _serve(self, conn: BrokerConnection) -> str:
        while not conn.lost.done():
            await asyncio.wait({conn.lost}, timeout=1.0)
            if conn.fd is not None and not conn.lost.done():
                conn.pump(conn.client.loop_misc)  # keepalive: PINGREQ, and give up on a silent broker
        return conn.lost.result()

    async def _goodbye(self, conn: BrokerConnection) -> None:
        """Say "offline" ourselves and disconnect cleanly (which suppresses the will), within a deadline."""
        with contextlib.suppress(LinkDown, DeliveryRefused, TimeoutError):
            async with asyncio.timeout(GOODBYE_WAIT):
                await conn.publish(self.topics.presence(self.node_id), PRESENCE_OFFLINE, retain=True)
                conn.client.disconnect()
                await asyncio.shield(conn.lost)

    def _watch(self, dest: str) -> None:
        """Follow the presence of a node we send to or probe."""
        if dest in self._watched or dest == self.node_id or not is_node_id(dest):
            return
        self._watched.add(dest)
        if self._conn is not None:
            self._conn.subscribe([self.topics.presence(dest)])

    # --- inbound -----------------------------------------------------------------------------------
    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            meaning = self.topics.parse(message.topic)
            if isinstance(meaning, Inbound):
                if meaning.sender == self.node_id:
                    back = self._echoes.get(bytes(message.payload))
                    if back is not None and not back.done():
                        back.set_result(None)
                else:
                    meta = {"topic": message.topic, "channel": meaning.channel}
                    self._put(Received(source=meaning.sender, data=bytes(message.payload), meta=meta))
                return
            up = parse_presence(bytes(message.payload))
        except ProtocolError as exc:
            self.malformed += 1
            self._log.warning("mqtt link %s: dropped a publication: %s", self.name, exc)
            return
        node = meaning.node
        if self._presence.get(node) != up:
            self._presence[node] = up
            if self._up:
                self._put(LinkChanged(up=up, reason=_presence_reason(up), peer=node))
        self._presence_seen.setdefault(node, asyncio.Event()).set()

    def _put(self, event: TransportEvent) -> None:
        if self._closed:
            return
        # Never drop: paho has already acknowledged the frame to the broker. Instead, once the hub is
        # this far behind, stop reading the socket; the broker then holds further frames for us.
        self._events.put_nowait(event)
        conn = self._conn
        if (
            conn is not None
            and not self._reading_paused
            and self._events.qsize() >= self.options.receive_queue
        ):
            self._reading_paused = True
            self.paused_reads += 1
            conn.pause_reading()
            self._log.warning(
                "mqtt link %s: %d frames waiting for the hub; reading paused", self.name, self._events.qsize()
            )

    def _maybe_resume(self) -> None:
        if self._reading_paused and self._events.qsize() <= self.options.receive_queue // 2:
            self._reading_paused = False
            if self._conn is not None:
                self._conn.resume_reading()


def _presence_reason(up: bool) -> str:
    return "presence online" if up else "presence offline (left, or its last will)"


async def open_transport(name: str, options: Mapping[str, Any], ctx: TransportContext) -> MqttTransport:
    """``[links.<name>] kind = "mqtt"``; see ``transports.mqtt_topics.MqttOptions`` for the options."""
    node_id = ctx.node_id.lower()
    parsed = parse_options(name, options, node_id)

    def located(key: str, path: Path | None) -> Path | None:
        """Relative certificate paths are taken from the config file's folder, like every other path."""
        if path is None:
            return None
        if not path.is_absolute() and ctx.config_dir is not None:
            path = ctx.config_dir / path
        if not path.is_file():
            raise ConfigError(
                f"filen {str(path)!r} findes ikke; forventede en PEM-fil", key=f"links.{name}.{key}"
            )
        return path

    parsed = dataclasses.replace(
        parsed,
        tls_ca=located("tls_ca", parsed.tls_ca),
        tls_cert=located("tls_cert", parsed.tls_cert),
        tls_key=located("tls_key", parsed.tls_key),
    )
    return MqttTransport(name, parsed, node_id, ctx)
