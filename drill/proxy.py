"""A switchable TCP proxy: the drill's honest way to cut a hub off the internet or from its broker.

Each hub's internet link listens on a private port; its peers know it only by the proxy's address (the
hub's ``public_url``), and the hubs reach Mosquitto through one too. Two faults:

- ``switch_off``: a loud death. The listening socket closes and every connection through it is reset,
  so peers see exactly what a dead uplink gives them: refused connections and broken POSTs.
- ``go_silent``: a silent drop, the kind a cable cut far away or a wedged router gives. Nothing is
  refused or reset: connections open as before, but not one byte passes in either direction, so a
  client learns of it only by waiting. Bytes already sent wait in the proxy (as unacknowledged segments
  wait in a sender's TCP buffer), and ``switch_on`` lets them through late, as retransmission would.

``switch_on`` ends either fault. The hub process itself is never touched.
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
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def on(self) -> bool:
        return self._server is not None

    @property
    def silent(self) -> bool:
        return self.on and not self._flowing.is_set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reserve(self) -> int:
        """Pick the port now (before the hubs' configs are written); ``switch_on`` binds it."""
        if not self.port:
            self.port = free_port(self.host)
        return self.port

    async def switch_on(self) -> None:
        """Listen (again) and let bytes flow, those held while silent first."""
        self._flowing.set()
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._serve, self.host, self.reserve(), reuse_address=True)

    async def go_silent(self) -> None:
        """Keep accepting connections but pass nothing, with no reset and no close (see the module)."""
        await self.switch_on()
        self._flowing.clear()

    async def switch_off(self) -> None:
        """Stop listening and reset every open connection (RST, as a dead router would cause)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._flowing.set()  # a silent link that then dies outright: the resets below must not wait
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
        self._writers.add(writer)
        await self._flowing.wait()  # silent: the client's connection opens, and then nothing happens
        if self._server is None or writer.is_closing():
            return  # switched off meanwhile: already reset
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), 5.0)
        except (OSError, TimeoutError):
            self._writers.discard(writer)
            writer.transport.abort()
            return
        self._writers.add(up_writer)
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

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(_CHUNK):
                await self._flowing.wait()  # silent: hold it (and read no more) until the path returns
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            await self._flowing.wait()  # an end of stream is a packet too
            if sink.can_write_eof():
                with contextlib.suppress(OSError, RuntimeError):
                    sink.write_eof()
