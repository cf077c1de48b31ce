"""Real Mosquitto brokers for tests: one on a free port, two joined by a bridge, stop and restart.

Each broker gets its own temporary folder with a generated config file, a persistence file and a log, so
tests never touch the Mosquitto that may already run on the machine. ``start`` returns once the broker
accepts TCP connections (or raises with the broker's log); ``kill`` (SIGKILL), ``stop`` (orderly, saves
persistence), ``freeze``/``thaw`` (SIGSTOP/SIGCONT) and ``start`` again on the same port with the same
persistence let tests cut the link under a running transport. Mosquitto must be installed:
its absence is a test failure, not a skip, so CI cannot pass without the real broker.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from drill.sims import (  # fails loudly, with the fix, when the broker is missing
    broker_config,
    mosquitto_binary,
)
from drill.topology import free_port

START_DEADLINE = 10.0


class Mosquitto:
    """One broker process on 127.0.0.1:``port`` with a config written into ``folder``."""

    def __init__(self, folder: Path, *, port: int | None = None, extra: str = "") -> None:
        self.folder = folder
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.config = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        self.config.write_text(broker_config(folder, self.port, self.log, "log_type all\n" + extra))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start: {self._tail()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"mosquitto did not listen on {self.port} within {START_DEADLINE} s: {self._tail()}"
        )

    def _tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        if self.process is not None and self.process.stderr is not None and self.process.poll() is not None:
            text += self.process.stderr.read().decode(errors="replace")
        return text[-2000:]

    def freeze(self) -> None:
        """SIGSTOP: the broker keeps its sockets but answers nothing, like a hung machine."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after ``freeze``."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (works on a frozen broker too); the kernel resets its connections."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=START_DEADLINE)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def stop(self) -> None:
        """SIGTERM: an orderly shutdown, which saves the persistence file (sessions, queued frames)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=START_DEADLINE)
        self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()


@contextlib.contextmanager
def running_mosquitto(extra: str = "") -> Iterator[Mosquitto]:
    with tempfile.TemporaryDirectory(prefix="beredt-mosquitto-") as folder:
        broker = Mosquitto(Path(folder), extra=extra)
        try:
            broker.start()
            yield broker
        finally:
            broker.kill()


def wait_for_bridge(source: Mosquitto, target: Mosquitto, topic: str = "beredt/bridge-check") -> None:
    """Block until a message published on ``source`` is delivered by ``target``: the bridge is up."""
    arrived = threading.Event()
    listener = paho.Client(CallbackAPIVersion.VERSION2)
    listener.on_message = lambda client, userdata, message: arrived.set()
    listener.connect("127.0.0.1", target.port)
    listener.subscribe(topic)
    listener.loop_start()
    talker = paho.Client(CallbackAPIVersion.VERSION2)
    talker.connect("127.0.0.1", source.port)
    talker.loop_start()
    try:
        deadline = time.monotonic() + START_DEADLINE
        while not arrived.wait(0.2):
            if time.monotonic() > deadline:
                raise RuntimeError(f"bridge {source.port} -> {target.port} not up: {target._tail()}")
            talker.publish(topic, b"ping")
    finally:
        for client in (listener, talker):
            client.disconnect()
            client.loop_stop()


@contextlib.contextmanager
def bridged_mosquittos(topic_pattern: str = "beredt/#") -> Iterator[tuple[Mosquitto, Mosquitto]]:
    """Two brokers; the second bridges ``topic_pattern`` both ways to the first, as one site to another."""
    with tempfile.TemporaryDirectory(prefix="beredt-bridge-") as folder:
        for name in ("one", "two"):
            (Path(folder) / name).mkdir()
        first = Mosquitto(Path(folder) / "one")
        bridge = (
            "connection site-two-to-one\n"
            f"address 127.0.0.1:{first.port}\n"
            f"topic {topic_pattern} both 1\n"
            "cleansession false\n"
            "restart_timeout 1\n"
            "try_private true\n"
        )
        second = Mosquitto(Path(folder) / "two", extra=bridge)
        try:
            first.start()
            second.start()
            wait_for_bridge(second, first)
            wait_for_bridge(first, second)
            yield first, second
        finally:
            second.kill()
            first.kill()
