"""Tell systemd how the hub is doing: ready, status lines, watchdog pings and stopping.

This speaks the ``sd_notify`` protocol (``man 3 sd_notify``) directly, without libsystemd: newline-separated
``KEY=VALUE`` assignments sent as one datagram to the ``AF_UNIX`` socket named by ``$NOTIFY_SOCKET`` (a path,
or an abstract socket when it starts with ``@``). With ``Type=notify`` systemd considers the service started
only when ``READY=1`` arrives, so the hub sends it once its store is open and its links are started. With
``WatchdogSec=`` systemd sets ``$WATCHDOG_USEC`` and kills and restarts the service if ``WATCHDOG=1`` does not
arrive in time; ``watchdog_loop`` pings at half that interval *from the event loop itself*, so an event loop
that is blocked (a stuck synchronous call, a deadlock) stops pinging and systemd restarts the hub. When
``$NOTIFY_SOCKET`` is unset (run by hand, in tests, under another supervisor) every call is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Mapping
from types import TracebackType
from typing import Self

from hub.core.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class SystemdNotifier:
    """Sends notification datagrams to systemd; a no-op when the service is not run by systemd.

    ``watchdog_interval`` is the ping period in seconds (half of ``$WATCHDOG_USEC``), or None when systemd
    expects no pings, including when ``$WATCHDOG_PID`` names a process other than this one (the variable
    was inherited, the watchdog is not ours). Sending never raises: a notification that cannot be delivered
    is logged, because losing a status line must not take the hub down (a lost ``WATCHDOG=1`` is what
    systemd's own timeout is for).
    """

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_interval = watchdog_usec / 2_000_000 if watchdog_usec else None
        self._socket: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """Build from ``NOTIFY_SOCKET``, ``WATCHDOG_USEC``, ``WATCHDOG_PID`` (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        watchdog_usec: int | None = None
        pid = env.get("WATCHDOG_PID")
        if pid is None or (pid.isdigit() and int(pid) == os.getpid()):
            raw = env.get("WATCHDOG_USEC", "")
            if raw.isdigit() and int(raw) > 0:
                watchdog_usec = int(raw)
            elif raw:
                log.warning("ignoring WATCHDOG_USEC=%r: not a positive integer", raw)
        return cls(address, watchdog_usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram (keys upper-cased); True if it was sent."""
        if self.address is None:
            return False
        lines = []
        for key, value in fields.items():
            text = str(value)
            if "\n" in text:
                # A newline would start a new assignment that systemd would parse as its own.
                raise ValueError(f"notification value for {key} contains a newline")
            lines.append(f"{key.upper()}={text}")
        try:
            sock = self._connect()
            sock.send("\n".join(lines).encode())
        except OSError as exc:
            # Log the first failure loudly and later ones quietly: a missing socket fails every ping.
            level = logging.DEBUG if self._failed else logging.WARNING
            log.log(level, "systemd notification to %s failed: %s", self.address, exc)
            self._failed = True
            self._close_socket()
            return False
        self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        """The hub is up: store open, links started, API listening."""
        return self.notify(ready=1, status=status) if status else self.notify(ready=1)

    def status(self, text: str) -> bool:
        """A one-line status that ``systemctl status beredt`` shows."""
        return self.notify(status=text)

    def watchdog(self) -> bool:
        """One keep-alive ping."""
        return self.notify(watchdog=1)

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time to start or stop (a long store recovery) than the unit's timeout allows."""
        return self.notify(extend_timeout_usec=int(seconds * 1_000_000))

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown has begun; systemd then waits up to ``TimeoutStopSec`` for the process to exit."""
        return self.notify(stopping=1, status=status) if status else self.notify(stopping=1)

    def close(self) -> None:
        """Release the socket; later notifications reopen it. Idempotent."""
        self._close_socket()

    def _connect(self) -> socket.socket:
        if self._socket is None:
            assert self.address is not None
            # Abstract namespace sockets are written with a leading "@" and addressed with a NUL byte.
            target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            try:
                # Never block the event loop on a full receive queue: a ping that cannot go now is moot.
                sock.setblocking(False)
                sock.connect(target)
            except OSError:
                sock.close()
                raise
            self._socket = sock
        return self._socket

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


async def watchdog_loop(notifier: SystemdNotifier, interval: float | None = None) -> None:
    """Ping ``WATCHDOG=1`` every ``interval`` seconds (default: the notifier's) until cancelled.

    The sleep and the ping both run on the event loop, so the pings stop exactly when the loop stops
    turning. Returns at once when systemd expects no pings.
    """
    period = notifier.watchdog_interval if interval is None else interval
    if period is None or not notifier.enabled:
        return
    while True:
        notifier.watchdog()
        await asyncio.sleep(period)


class ServiceNotification:
    """The hub's life cycle as systemd sees it, as an async context manager.

    Entering sends ``READY=1`` (with an optional status) and starts the watchdog pings in a task owned by
    this object; leaving (or ``aclose()``) sends ``STOPPING=1`` and cancels the pings. Enter it when the hub
    is ready and leave it when shutdown begins, so draining happens between ``STOPPING=1`` and exit.
    """

    def __init__(self, notifier: SystemdNotifier, status: str | None = None) -> None:
        self.notifier = notifier
        self._status = status
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        self.notifier.ready(self._status)
        self._task = asyncio.create_task(watchdog_loop(self.notifier), name="systemd-watchdog")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self, status: str | None = None) -> None:
        """Send ``STOPPING=1`` and stop pinging. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.notifier.stopping(status)
        await cancel_and_wait(self._task)
        self.notifier.close()
