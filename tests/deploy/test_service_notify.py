"""``beredt run`` as systemd sees it: a real hub process talking to a stand-in for systemd's notify socket."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubproc import HubError, HubProcess

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


def drain(sock: socket.socket) -> list[str]:
    """Every datagram already queued, without waiting for more."""
    sock.setblocking(False)
    seen: list[str] = []
    while True:
        try:
            seen.append(sock.recv(4096).decode())
        except BlockingIOError:
            return seen


@pytest.mark.parametrize("taken", ["link", "api"])
def test_a_hub_that_fails_before_ready_never_says_ready(
    tmp_path: Path, notify_socket: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch, taken: str
) -> None:
    """A port another program holds: the hub exits with a clear reason and systemd never hears READY=1,
    so ``Type=notify`` counts the start as failed instead of a hub that is not serving."""
    sock, path = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    hub = HubProcess.create(tmp_path / "hub", "Plejecenter Solbakken", "care-home")
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", hub.link_port if taken == "link" else hub.api_port))
    squatter.listen()
    try:
        with pytest.raises(HubError, match="exited with"):
            hub.start(move_api=False)
        assert hub.process is not None and hub.process.returncode not in (0, None)
        log = hub.log_tail()
        assert "address already in use" in log.lower(), log
        assert "Traceback" not in log, log
        assert not any("READY=1" in m.splitlines() for m in drain(sock)), "READY=1 from a hub that failed"
    finally:
        squatter.close()
        hub.kill()
