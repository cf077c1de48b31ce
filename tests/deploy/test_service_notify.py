"""``beredt run`` as systemd sees it: a real hub process talking to a stand-in for systemd's notify socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubproc import HubProcess

DEADLINE = 30.0


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(DEADLINE)
    try:
        yield sock, path
    finally:
        sock.close()


def receive_until(sock: socket.socket, wanted: str) -> list[str]:
    """Datagrams up to and including the first that contains the line ``wanted``."""
    seen: list[str] = []
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        message = sock.recv(4096).decode()
        seen.append(message)
        if wanted in message.splitlines():
            return seen
    raise AssertionError(f"no {wanted} within {DEADLINE} s; got {seen}")


def test_hub_reports_ready_pings_the_watchdog_and_reports_stopping(
    tmp_path: Path, notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # WatchdogSec=0.4: a ping every 0.2 s
    hub = HubProcess.create(tmp_path / "hub", "Plejecenter Solbakken", "care-home")
    hub.start()
    try:
        before_ready = receive_until(sock, "READY=1")
        assert not any("WATCHDOG=1" in m for m in before_ready), "pings before READY=1"
        # The hub answers its API before or at READY=1: systemd may start dependants now.
        assert hub.get("/healthz")["ok"]
        for _ in range(3):
            receive_until(sock, "WATCHDOG=1")
        assert hub.stop() == 0
        receive_until(sock, "STOPPING=1")
    finally:
        hub.kill()
