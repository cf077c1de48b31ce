"""The systemd notify protocol against a real datagram socket standing in for systemd's notify socket."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.service.watchdog import ServiceNotification, SystemdNotifier, watchdog_loop

DEADLINE = 10.0


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.setblocking(False)
    try:
        yield sock, path
    finally:
        sock.close()


async def receive(sock: socket.socket) -> str:
    loop = asyncio.get_running_loop()
    data = await asyncio.wait_for(loop.sock_recv(sock, 4096), DEADLINE)
    return data.decode()


def drain(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def test_unset_notify_socket_is_a_no_op() -> None:
    notifier = SystemdNotifier.from_environ({})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert notifier.ready("up") is False
    assert notifier.watchdog() is False


async def test_watchdog_loop_returns_at_once_without_systemd() -> None:
    await asyncio.wait_for(watchdog_loop(SystemdNotifier.from_environ({})), DEADLINE)
    await asyncio.wait_for(watchdog_loop(SystemdNotifier.from_environ({"NOTIFY_SOCKET": "/x"})), DEADLINE)


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_our_pid(
    environ: dict[str, str], interval: float | None
) -> None:
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": "/run/x", **environ})
    assert notifier.watchdog_interval == interval


async def test_ready_status_and_stopping_datagrams(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier.ready("store open, 3 links")
    assert await receive(sock) == "READY=1\nSTATUS=store open, 3 links"
    assert notifier.status("lora down")
    assert await receive(sock) == "STATUS=lora down"
    assert notifier.extend_timeout(90)
    assert await receive(sock) == "EXTEND_TIMEOUT_USEC=90000000"
    assert notifier.stopping()
    assert await receive(sock) == "STOPPING=1"
    notifier.close()
    notifier.close()


async def test_abstract_socket_address() -> None:
    name = f"beredt-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": "@" + name})
        assert notifier.watchdog()
        assert await receive(sock) == "WATCHDOG=1"
        notifier.close()


def test_newline_in_a_value_is_refused(notify_socket: tuple[socket.socket, str]) -> None:
    notifier = SystemdNotifier(notify_socket[1])
    with pytest.raises(ValueError, match="newline"):
        notifier.status("one\nREADY=1")
    notifier.close()


async def test_missing_socket_logs_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SystemdNotifier(str(tmp_path / "gone"), watchdog_usec=100_000)
    with caplog.at_level(logging.DEBUG, logger="hub.service.watchdog"):
        assert notifier.ready() is False
        assert notifier.watchdog() is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "gone" in warnings[0].getMessage()


async def test_pings_come_from_the_event_loop_and_stop_while_it_is_blocked(
    notify_socket: tuple[socket.socket, str],
) -> None:
    sock, path = notify_socket
    # WATCHDOG_USEC of 0.1 s: a ping every 50 ms.
    notifier = SystemdNotifier.from_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    async with ServiceNotification(notifier, status="ready") as service:
        assert await receive(sock) == "READY=1\nSTATUS=ready"
        for _ in range(3):
            assert await receive(sock) == "WATCHDOG=1"

        seen_while_blocked: list[str] = []
        blocked = asyncio.Event()

        def block_the_loop() -> None:
            drain(sock)  # everything sent before the loop stalled
            time.sleep(0.6)  # twelve ping periods with the loop stuck
            seen_while_blocked.extend(drain(sock))
            blocked.set()

        asyncio.get_running_loop().call_soon(block_the_loop)
        await asyncio.wait_for(blocked.wait(), DEADLINE)
        assert seen_while_blocked == []
        # Once the loop turns again the pings resume.
        assert await receive(sock) == "WATCHDOG=1"
    assert "STOPPING=1" in drain(sock)
    assert service._task is not None and service._task.done()
    await service.aclose()  # idempotent: no second STOPPING=1
    assert drain(sock) == []
