"""The broker and the two baselines of ``bench_mqtt.py``: raw paho, and the MQTT link alone.

``quiet_broker`` is a Mosquitto as a site would run it (per-message debug logging off, so the broker is
not the bottleneck of the baseline). ``raw_paho`` measures one paho publisher and one subscriber, QoS 1,
messages/s from the first publish to the last receipt, and the CPU the two clients spent per message;
``link_alone`` measures frames/s between two MQTT links (``transports/mqtt.py`` opened twice) with a
number of sends waiting for their PUBACK at once. A phase that does not complete within ``DEADLINE``
raises ``BenchError``: its figures would be meaningless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from hub.core.transport import LinkChanged, Received, Transport, TransportContext
from tests.mosquitto import Mosquitto
from transports.mqtt import open_transport

FRAME_BYTES = 200
DEADLINE = 60.0  # the longest any one phase may take before the run is declared failed


class BenchError(RuntimeError):
    """A phase did not complete: the figures would be meaningless, so the run stops with the reason."""


# ---- 1. raw paho --------------------------------------------------------------------------------------


def _client(name: str) -> paho.Client:
    return paho.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=MQTTProtocolVersion.MQTTv5)


def _wait(event: threading.Event, what: str) -> None:
    if not event.wait(DEADLINE):
        raise BenchError(f"raw paho: no {what} within {DEADLINE:.0f} s")


def raw_paho(port: int, count: int) -> tuple[float, float]:
    """QoS 1 messages/s from one paho publisher to one paho subscriber, each with its network thread,
    and the CPU seconds both clients together spent per message."""
    topic = f"bench/raw/{os.getpid()}"
    payload = b"\x01" * FRAME_BYTES
    received = 0
    subscribed, done = threading.Event(), threading.Event()

    def on_subscribe(
        client: paho.Client, userdata: object, mid: int, codes: list[ReasonCode], props: object
    ) -> None:
        subscribed.set()

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received == count:
            done.set()

    subscriber, publisher = _client("bench-raw-sub"), _client("bench-raw-pub")
    subscriber.on_subscribe = on_subscribe
    subscriber.on_message = on_message
    try:
        for client in (subscriber, publisher):
            client.connect("127.0.0.1", port)
            client.loop_start()
        subscriber.subscribe(topic, qos=1)
        _wait(subscribed, "SUBACK")
        start, cpu = time.perf_counter(), time.process_time()
        last = None
        for _ in range(count):
            last = publisher.publish(topic, payload, qos=1)
        _wait(done, f"receipt of all {count} messages (got {received})")
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        if last is not None:
            last.wait_for_publish(DEADLINE)  # every PUBACK in before the clients go
        return count / elapsed, cpu / count
    finally:
        for client in (subscriber, publisher):
            client.disconnect()
            client.loop_stop()


# ---- 2. the MQTT link alone ---------------------------------------------------------------------------


async def _until(transport: Transport, check: Callable[[object], bool], what: str) -> None:
    async with asyncio.timeout(DEADLINE):
        async for event in transport.events():
            if check(event):
                return
    raise BenchError(f"link closed while waiting for {what}")


def presence_up(peer: str) -> Callable[[object], bool]:
    return lambda event: isinstance(event, LinkChanged) and event.peer == peer and event.up


async def link_alone(url: str, work: Path, count: int, window: int) -> float:
    """Frames/s from one MQTT link to another with ``window`` sends waiting for their PUBACK at once."""
    a_id, b_id = os.urandom(8).hex(), os.urandom(8).hex()
    log = logging.getLogger("bench.link")
    a = await open_transport("mqtt", {"brokers": [url], "peers": [b_id]}, TransportContext(a_id, work, log))
    b = await open_transport("mqtt", {"brokers": [url], "peers": [a_id]}, TransportContext(b_id, work, log))
    try:
        for transport, peer in ((a, b_id), (b, a_id)):
            await _until(transport, presence_up(peer), f"{peer}'s presence")
        frame = b"\x02" * FRAME_BYTES
        received = 0

        def arrived(event: object) -> bool:
            nonlocal received
            if isinstance(event, Received):
                received += 1
            return received == count

        async def sender(share: int) -> None:
            for _ in range(share):
                await a.send(b_id, frame)

        start = time.perf_counter()
        async with asyncio.timeout(DEADLINE), asyncio.TaskGroup() as group:
            for n in range(window):
                group.create_task(sender(count // window + (n < count % window)), name=f"sender-{n}")
            group.create_task(_until(b, arrived, f"all {count} frames"), name="receiver")
        return count / (time.perf_counter() - start)
    finally:
        await a.aclose()
        await b.aclose()


# ---- the broker ---------------------------------------------------------------------------------------


def quiet_broker(folder: Path, inflight: int | None) -> Mosquitto:
    """A broker as a site would run it: per-message debug logging would tax the baseline most.

    ``inflight`` sets ``max_inflight_messages``, which Mosquitto also announces as its Receive Maximum:
    the most QoS 1 publications a client may have unacknowledged (Mosquitto's default is 20)."""
    broker = Mosquitto(folder, extra="" if inflight is None else f"max_inflight_messages {inflight}\n")
    text = broker.config.read_text()
    if "log_type all\n" not in text:
        raise BenchError(f"tests/mosquitto.py changed its logging; update quiet_broker:\n{text}")
    broker.config.write_text(text.replace("log_type all\n", "log_type warning\n"))
    return broker
