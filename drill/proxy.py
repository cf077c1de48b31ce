"""A switchable TCP proxy: the drill's honest way to cut a hub off the internet.

Each hub's internet link listens on a private port; its peers know it only by the proxy's address (the
hub's ``public_url``). Switching the proxy off closes its listening socket and resets every connection
through it, so peers see exactly what a dead uplink gives them: refused connections and broken POSTs.
Switching it on listens again on the same port. The hub process itself is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from drill.topology import free_port

_CHUNK = 65536


class SwitchableProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` while on."""

    def __init__(self, target: tuple[str, int], *, host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def on(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reserve(self) -> int:
        """Pick the port now (before the hubs' configs are written); ``switch_on`` binds it."""
        if not self.port:
            self.port = free_port(self.host)
        return self.port

    async def switch_on(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._serve, self.host, self.reserve(), reuse_address=True)

    async def switch_off(self) -> None:
        """Stop listening and reset every open connection (RST, as a dead router would cause)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # SO_LINGER 0 turns close into a reset: peers notice at once instead of on a timeout.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await server.wait_closed()

    async def aclose(self) -> None:
        await self.switch_off()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), 5.0)
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        tasks = {
            asyncio.create_task(self._pipe(reader, up_writer), name="proxy-up"),
            asyncio.create_task(self._pipe(up_reader, writer), name="proxy-down"),
        }
        self._pipes.update(tasks)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._pipes.difference_update(tasks)
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(_CHUNK):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            if sink.can_write_eof():
                with contextlib.suppress(OSError, RuntimeError):
                    sink.write_eof()
