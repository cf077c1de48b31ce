"""An asyncio byte stream over a serial port that survives the device being unplugged and plugged back.

``SerialLink(device, baud)`` wraps pyserial through pyserial-asyncio-fast, which watches the port's file
descriptor with the event loop's ``add_reader`` (no threads; only the blocking open and close run in the
default executor). API:

* ``await link.open(deadline=...)`` - open the port within a deadline; ``DeviceGone`` if it is absent.
* ``await link.write(data)`` - queue bytes; ``DeviceGone`` when the port has vanished.
* ``await link.read(deadline=None)`` - the next chunk of bytes as it arrived; ``DeviceGone`` on unplug,
  ``CommandTimeout`` when ``deadline`` seconds pass with nothing read.
* ``await link.reopen(deadline=...)`` - close whatever is left and retry ``open`` with capped, jittered
  back-off until the device is back or the deadline passes (then ``DeviceGone``).
* ``await link.aclose()`` - idempotent; releases the port even when cancelled.
* ``await probe_baud(device, rates)`` - the first rate at which the device answers ``AT`` with ``OK``.

pyserial raises ``SerialException``/``OSError`` on a vanished device; they are mapped to ``DeviceGone``
here and nowhere else. ``serial_for_url`` also accepts ``socket://host:port``. Every ``deadline`` in this
package is a number of seconds from the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable, Iterator

import serial
import serial_asyncio_fast

from hub.core.errors import CommandTimeout, DeviceGone

COMMON_RATES = (115200, 38400, 19200, 9600, 57600)


def backoff_delays(
    initial: float = 0.2, cap: float = 10.0, rng: random.Random | None = None
) -> Iterator[float]:
    """Endless exponential back-off delays, each jittered into [delay/2, delay], capped at ``cap``."""
    rng = rng or random.Random()
    delay = initial
    while True:
        yield rng.uniform(delay / 2, delay)
        delay = min(cap, delay * 2)


class _Reception(asyncio.Protocol):
    """Hands received chunks and the loss of the port to ``SerialLink`` through a queue."""

    def __init__(self) -> None:
        self.chunks: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()

    def data_received(self, data: bytes) -> None:
        self.chunks.put_nowait(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.chunks.put_nowait(exc if exc is not None else None)


class SerialLink:
    """One serial device by path (a stable path such as ``/dev/serial/by-id/...`` survives a replug)."""

    def __init__(self, device: str, baud: int, *, name: str = "") -> None:
        self.device = device
        self.baud = baud
        self.name = name or device
        self._transport: asyncio.Transport | None = None
        self._reception: _Reception | None = None
        self._closed = False

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def open(self, *, deadline: float = 5.0) -> None:
        """Open the device at ``self.baud`` (8N1, no flow control) within ``deadline`` seconds."""
        if self._closed:
            raise DeviceGone("link closed", device=self.device)
        await self._drop()
        loop = asyncio.get_running_loop()
        reception = _Reception()
        try:
            async with asyncio.timeout(deadline):
                transport, _ = await serial_asyncio_fast.create_serial_connection(
                    loop, lambda: reception, self.device, baudrate=self.baud, exclusive=True
                )
        except TimeoutError as exc:
            raise DeviceGone(f"open did not finish within {deadline} s", device=self.device) from exc
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceGone(f"cannot open: {exc}", device=self.device) from exc
        self._transport, self._reception = transport, reception

    async def reopen(self, *, deadline: float = 60.0, delays: Iterable[float] | None = None) -> None:
        """Retry ``open`` with back-off until the device is back; ``DeviceGone`` after ``deadline`` s."""
        await self._drop()
        delay_iter = iter(delays if delays is not None else backoff_delays())
        last: DeviceGone | None = None
        try:
            async with asyncio.timeout(deadline):
                while True:
                    try:
                        await self.open(deadline=max(1.0, deadline / 4))
                        return
                    except DeviceGone as exc:
                        if self._closed:
                            raise
                        last = exc
                    await asyncio.sleep(next(delay_iter))
        except TimeoutError as exc:
            raise DeviceGone(f"did not come back within {deadline} s ({last})", device=self.device) from exc

    async def write(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            raise DeviceGone("device is not open", device=self.device)
        try:
            transport.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DeviceGone(f"write failed: {exc}", device=self.device) from exc

    async def read(self, deadline: float | None = None) -> bytes:
        """The next chunk received. ``DeviceGone`` once the device vanished or the link was closed."""
        reception = self._reception
        if reception is None:
            raise DeviceGone("device is not open", device=self.device)
        try:
            async with asyncio.timeout(deadline):
                item = await reception.chunks.get()
        except TimeoutError as exc:
            raise CommandTimeout(f"nothing read within {deadline} s", device=self.device) from exc
        if isinstance(item, bytes):
            return item
        # Keep the end marker for any later reader, then forget the dead port.
        reception.chunks.put_nowait(item)
        if self._reception is reception:
            self._transport = None
        raise DeviceGone(f"device vanished: {item}" if item else "device closed", device=self.device)

    async def aclose(self) -> None:
        self._closed = True
        await self._drop()

    async def _drop(self) -> None:
        transport, self._transport = self._transport, None
        if transport is None:
            return
        lost = self._reception
        transport.abort()
        if lost is not None:
            # abort() closes the pyserial port in the executor and then reports connection_lost; wait a
            # bounded time for that, so a reopen finds the port free. A cancel of the caller ends the
            # wait and propagates: abort() has released the port either way.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await _wait_lost(lost)


async def _wait_lost(reception: _Reception) -> None:
    while True:
        item = await reception.chunks.get()
        if not isinstance(item, bytes):
            reception.chunks.put_nowait(item)
            return


async def probe_baud(device: str, rates: Iterable[int] = COMMON_RATES, *, deadline: float = 1.0) -> int:
    """The first of ``rates`` at which ``device`` answers ``AT`` with ``OK``; ``DeviceGone`` if none does."""
    tried: list[int] = []
    for rate in rates:
        tried.append(rate)
        link = SerialLink(device, rate)
        try:
            await link.open(deadline=deadline)
            if await _answers_ok(link, deadline):
                return rate
        finally:
            await link.aclose()
    raise DeviceGone(f"no answer to AT at any of {tried} baud", device=device)


async def _answers_ok(link: SerialLink, deadline: float) -> bool:
    # A leading CR flushes half a line the device may hold from before; garbage at a wrong rate never
    # spells OK, so a plain substring test suffices here.
    await link.write(b"\rAT\r")
    seen = b""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while b"OK" not in seen:
        remaining = end - loop.time()
        if remaining <= 0:
            return False
        try:
            seen += await link.read(deadline=remaining)
        except CommandTimeout:
            return False
    return True
