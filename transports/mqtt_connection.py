"""One connection of the MQTT link: a fresh paho client on one socket to one broker, driven by the loop.

``BrokerConnection`` is the part of ``transports.mqtt`` that speaks to paho-mqtt (callback API 2, MQTT
v5). Its blocking ``connect_blocking`` (TCP and TLS handshake) is the only call that runs in a worker
thread; everything else runs on the event loop, the way aiomqtt drives paho: the socket is watched with
``add_reader``/``add_writer``, ``loop_read``/``loop_write`` run when it is ready, and writes of one loop
iteration are flushed together. paho's callbacks settle the CONNACK future, the per-message PUBACK
futures (at most ``INFLIGHT`` at once) and the ``lost`` future; a lost connection fails every pending
publication with ``LinkDown`` at once. The owning ``MqttTransport`` supplies the options, the topic
layout, the logger and the inbound message handler, and decides what to do when ``lost`` settles.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from hub.core.errors import DeliveryRefused, LinkDown
from transports.mqtt_topics import PRESENCE_OFFLINE, Broker, MqttOptions

INFLIGHT = 20  # unacknowledged QoS 1 publications at once: Mosquitto's default receive maximum
TCP_USER_TIMEOUT_MS = 3000  # unacknowledged bytes older than this kill the socket: the 3 s detection budget


class _TrackingContext(ssl.SSLContext):
    """An SSL context that remembers the sockets it wraps, so a failed handshake's socket is closed."""

    def __init__(self, protocol: ssl._SSLMethod) -> None:
        super().__init__()
        self.wrapped: list[ssl.SSLSocket] = []

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        sock = super().wrap_socket(*args, **kwargs)
        self.wrapped.append(sock)
        return sock


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """What a broker connection needs from the transport that owns it."""

    name: str  # the link's name, for errors
    options: MqttOptions
    will_topic: str  # the presence topic that the broker marks offline if we vanish
    loop: asyncio.AbstractEventLoop
    loop_thread: int  # the event loop's thread id: paho callbacks from elsewhere are marshalled to it
    log: logging.Logger
    on_message: Callable[[paho.Client, Any, paho.MQTTMessage], None]


class BrokerConnection:
    """One paho client on one socket to one broker, driven by the event loop."""

    def __init__(self, owner: ConnectionSettings, broker: Broker) -> None:
        self.owner = owner
        self.broker = broker
        self.loop = owner.loop
        self.fd: int | None = None
        self.connack: asyncio.Future[None] = self.loop.create_future()
        self.lost: asyncio.Future[str] = self.loop.create_future()
        self.pending: dict[int, asyncio.Future[None]] = {}
        self.job: asyncio.Future[None] | None = None  # the worker thread running connect_blocking
        self.window = asyncio.Semaphore(INFLIGHT)
        self.flush_scheduled = False
        opts = owner.options
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=opts.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
        )
        client.connect_timeout = opts.connect_timeout
        client.max_inflight_messages_set(INFLIGHT)
        if opts.username is not None:
            client.username_pw_set(opts.username, opts.password)
        self.tls: _TrackingContext | None = None
        if broker.tls:
            self.tls = _TrackingContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the chain and the host name
            self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
            if opts.tls_ca:
                self.tls.load_verify_locations(cafile=opts.tls_ca)
            else:
                self.tls.load_default_certs()
            if opts.tls_cert and opts.tls_key:
                self.tls.load_cert_chain(opts.tls_cert, opts.tls_key)
            client.tls_set_context(self.tls)
        client.will_set(owner.will_topic, PRESENCE_OFFLINE, qos=1, retain=True)
        client.enable_logger(owner.log.getChild("paho"))  # packet traces at DEBUG, for field diagnosis
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = owner.on_message
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        client.on_socket_close = self._on_socket_close
        self.client = client

    # --- blocking part, run in a worker thread -------------------------------------------------------
    def connect_blocking(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it untyped
        props.SessionExpiryInterval = self.owner.options.session_expiry
        try:
            self.client.connect(
                self.broker.host,
                self.broker.port,
                self.owner.options.keepalive,
                clean_start=False,
                properties=props,
            )
        except BaseException:
            if self.tls is not None:  # paho drops the socket of a failed TLS handshake without closing it
                for sock in self.tls.wrapped:
                    sock.close()
            raise

    # --- loop side ---------------------------------------------------------------------------------
    def attach(self) -> None:
        """Start watching the socket that ``connect_blocking`` opened."""
        sock = self.client.socket()
        if sock is None:
            raise LinkDown("broker closed the connection at once", transport=self.owner.name)
        if hasattr(socket, "TCP_USER_TIMEOUT") and isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS)
        if isinstance(sock, socket.socket):
            # Writes are already batched once per loop turn; Nagle would only hold each batch back up to
            # 40 ms waiting for an ACK (measured: hub-to-hub throughput doubles without it).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fd = sock.fileno()
        self.loop.add_reader(self.fd, self._readable)
        self._sync_writer()

    def close(self) -> None:
        """Drop the socket without ceremony; safe to call at any point and more than once."""
        self._detach()
        for name in ("on_connect", "on_disconnect", "on_publish", "on_message", "on_socket_close"):
            setattr(self.client, name, None)
        sock = self.client.socket()
        if sock is not None:
            sock.close()
        self._fail_all("connection closed")

    def pause_reading(self) -> None:
        if self.fd is not None:
            self.loop.remove_reader(self.fd)

    def resume_reading(self) -> None:
        if self.fd is not None:
            self.loop.add_reader(self.fd, self._readable)

    def _detach(self) -> None:
        if self.fd is not None:
            self.loop.remove_reader(self.fd)
            self.loop.remove_writer(self.fd)
            self.fd = None

    def _readable(self) -> None:
        self.pump(self.client.loop_read)

    def _writable(self) -> None:
        self.pump(self.client.loop_write)

    def pump(self, step: Callable[[], object]) -> None:
        """Run one paho step (read, write, keepalive); an exception means the socket is dead."""
        try:
            step()
        except Exception as exc:  # paho raises on some socket states instead of returning an error code
            self._detach()
            self._mark_lost(f"socket error: {exc!r}")

    def _sync_writer(self) -> None:
        if self.fd is None:
            return
        if self.client.want_write():
            self.loop.add_writer(self.fd, self._writable)
        else:
            self.loop.remove_writer(self.fd)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if threading.get_ident() != self.owner.loop_thread:  # during connect, in the worker thread
            self.loop.call_soon_threadsafe(self._sync_writer)
        elif not self.flush_scheduled:
            # Write once at the end of this loop iteration instead of waiting for "writable": the
            # socket almost always has room, and every publish of the iteration goes out in one pass.
            self.flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self.flush_scheduled = False
        if self.fd is not None:
            self.pump(self.client.loop_write)
            if self.fd is not None and self.client.want_write():  # the socket was full: wait for room
                self.loop.add_writer(self.fd, self._writable)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        if self.fd is not None and threading.get_ident() == self.owner.loop_thread:
            self.loop.remove_writer(self.fd)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # Only the loop closes a socket it watches; in the worker thread paho closes nothing we attached.
        if threading.get_ident() == self.owner.loop_thread:
            self._detach()

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if self.connack.done():
            return
        if reason.is_failure:
            self.connack.set_exception(
                LinkDown(f"broker {self.broker} refused: {reason}", transport=self.owner.name)
            )
        else:
            self.connack.set_result(None)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        self._mark_lost(f"disconnected from {self.broker}: {reason}")

    def _mark_lost(self, why: str) -> None:
        if not self.connack.done():
            self.connack.set_exception(LinkDown(why, transport=self.owner.name))
        if not self.lost.done():
            self.lost.set_result(why)
        self._fail_all(why)

    def _fail_all(self, why: str) -> None:
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(LinkDown(why, transport=self.owner.name))

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        future = self.pending.pop(mid, None)
        if future is None or future.done():
            return
        if reason.is_failure:
            future.set_exception(
                DeliveryRefused(
                    f"broker refused the frame: {reason}", transport=self.owner.name, reason=str(reason)
                )
            )
        else:
            future.set_result(None)

    async def publish(self, topic: str, data: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the PUBACK; the registry entry goes whatever happens."""
        # Wait for a slot first, so the PUBACK deadline below runs from when our frame goes out, not
        # from the back of a queue inside paho: a long queue must not look like a hung broker.
        async with self.window:
            await self._publish_now(topic, data, retain)

    async def _publish_now(self, topic: str, data: bytes, retain: bool) -> None:
        info = self.client.publish(topic, data, qos=1, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise LinkDown(f"publish failed: {paho.error_string(info.rc)}", transport=self.owner.name)
        future: asyncio.Future[None] = self.loop.create_future()
        self.pending[info.mid] = future
        try:
            async with asyncio.timeout(self.owner.options.publish_timeout):
                await future
        except TimeoutError as exc:
            # A broker that holds a PUBACK this long is hung (its kernel still ACKs TCP, so neither the
            # socket nor TCP_USER_TIMEOUT notices): give up on this connection and let the supervisor
            # reconnect, rather than wait for two keepalive periods.
            why = f"no PUBACK within {self.owner.options.publish_timeout:g} s"
            self._detach()
            self._mark_lost(why)
            raise LinkDown(why, transport=self.owner.name) from exc
        finally:
            self.pending.pop(info.mid, None)

    def subscribe(self, filters: list[str], *, no_local: bool = False) -> None:
        if filters:
            options = SubscribeOptions(qos=1, noLocal=no_local)
            self.client.subscribe([(f, options) for f in filters])
