"""A fake Meshtastic radio's cable: its TCP server or its pty, and the host connections open on it.

``HostCable`` serves the stream protocol on TCP like a network radio, or over a pty reached through a
stable symlink (as udev's ``/dev/serial/by-id`` names are); ``unplug``/``plug`` pull and reinsert it.
``HostSession`` is one connection: its frame reader (``simulators.meshtastic_framing``), how to write
to it, and whether the host has finished the config handshake (only then are packets passed on).
``PtyHost`` is the radio's side of its pty as the sans-IO device model that the shared
``simulators.pty_device.PtyDevice`` serves: bytes from the host go to ``receive``, bytes for the host
wait until the device asks for them; a freshly plugged cable starts a fresh session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from simulators.meshtastic_framing import FrameReader
from simulators.pty_device import PtyDevice


class HostSession:
    """One host connection (a TCP client or the pty): its frame reader and how to write to it."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.reader = FrameReader()
        self.write = write
        self.configured = False


class PtyHost:
    """The radio's side of its pty; ``receive`` is the radio's handler of bytes from a host."""

    def __init__(self, receive: Callable[[HostSession, bytes], None]) -> None:
        self.wakeup: Callable[[], None] | None = None
        self._receive = receive
        self._out = bytearray()
        self._session = self.new_session()

    def new_session(self) -> HostSession:
        """A fresh parser for a freshly plugged cable; output still queued for the old one is lost."""
        self._out.clear()
        self._session = HostSession(self._queue)
        return self._session

    def receive_data(self, data: bytes) -> None:
        self._receive(self._session, data)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _queue(self, data: bytes) -> None:
        self._out += data
        if self.wakeup is not None:
            self.wakeup()


class HostCable:
    """The radio's cable; ``receive`` handles bytes from a host, ``changed`` hears of every connection
    opened or closed."""

    def __init__(self, receive: Callable[[HostSession, bytes], None], changed: Callable[[], None]) -> None:
        self.sessions: list[HostSession] = []
        """Host connections open now (TCP clients, or the pty's one while plugged)."""
        self.plugged = False
        self.tcp_port = 0
        """The TCP port served (after ``start_tcp``); the same one serves again after ``plug``."""
        self._receive = receive
        self._changed = changed
        self._tcp_host = "127.0.0.1"
        self._server: asyncio.AbstractServer | None = None
        self._client_tasks: set[asyncio.Task[None]] = set()
        self._pty: PtyDevice | None = None
        self._pty_host = PtyHost(receive)

    async def start_tcp(self, host: str, port: int) -> int:
        self._tcp_host, self.tcp_port = host, port
        await self._open_tcp()
        return self.tcp_port

    def start_pty(self, link: Path) -> None:
        self._pty = PtyDevice(self._pty_host, link)
        self._open_pty()

    async def unplug(self) -> None:
        """The TCP server and its connections close, or the pty goes away."""
        self.plugged = False
        if self._server is not None:
            self._server.close()
            for session_task in list(self._client_tasks):
                session_task.cancel()
            await asyncio.gather(*self._client_tasks, return_exceptions=True)
            self._server = None
        if self._pty is not None:
            self._pty.unplug()
        self.sessions.clear()
        self._changed()

    async def plug(self) -> None:
        """The same TCP port or the same symlink path serves again."""
        if self.plugged:
            return
        if self._pty is not None:
            self._open_pty()
        else:
            await self._open_tcp()

    async def _open_tcp(self) -> None:
        self._server = await asyncio.start_server(self._serve_client, self._tcp_host, self.tcp_port)
        self.tcp_port = self._server.sockets[0].getsockname()[1]
        self.plugged = True

    def _open_pty(self) -> None:
        assert self._pty is not None
        self.sessions.append(self._pty_host.new_session())
        self._pty.start()
        self._changed()
        self.plugged = True

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._client_tasks.add(task)
        session = HostSession(writer.write)
        self.sessions.append(session)
        self._changed()
        try:
            while data := await reader.read(4096):
                self._receive(session, data)
        except ConnectionError:
            pass  # the host hung up; a cancel (unplug) ends the task as cancelled, as asked
        finally:
            self._client_tasks.discard(task)
            with contextlib.suppress(ValueError):
                self.sessions.remove(session)
            self._changed()
            writer.transport.abort()
