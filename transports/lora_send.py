"""What a LoRa send waits for: its turn on the radio, then the far radio's routing ACK.

A Meshtastic radio takes one ``want_ack`` packet at a time from Beredt, so ``PriorityGate`` hands the
radio to waiting senders by priority, then by arrival, and passes a turn on when its holder is
cancelled. ``AckWaiter`` is the response callback the meshtastic library calls on its reader thread when
the routing ACK or NAK of our packet arrives; it reaches the event loop only through
``loop.call_soon_threadsafe``. The library never expires response handlers, so
``drop_response_handlers`` removes ours once the send stops waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator
from typing import Any


class AckWaiter:
    """Waits for the routing ACK/NAK of one packet; the library calls ``onAckNak`` on its reader thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.future: asyncio.Future[dict[str, Any]] = loop.create_future()

    # The library hands plain ACKs (not only NAKs) to a response callback only if it is named onAckNak.
    def onAckNak(self, packet: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._settle, packet)

    def _settle(self, packet: dict[str, Any]) -> None:
        if not self.future.done():
            self.future.set_result(packet)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class PriorityGate:
    """One packet on its way at a time; waiting senders get the radio by priority, then by arrival."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def depth(self) -> int:
        """Senders waiting plus the one on the air."""
        return len(self._waiting) + int(self._busy)

    @contextlib.asynccontextmanager
    async def turn(self, priority: int) -> AsyncIterator[None]:
        if self._busy:
            entry = (-priority, next(self._order), asyncio.get_running_loop().create_future())
            heapq.heappush(self._waiting, entry)
            try:
                await entry[2]
            except BaseException:
                if entry[2].done() and not entry[2].cancelled():
                    self._release()  # the turn was handed to us as we were cancelled: pass it on
                else:
                    self._waiting.remove(entry)
                    heapq.heapify(self._waiting)
                raise
        self._busy = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)
                return
        self._busy = False


def drop_response_handlers(iface: Any, waiter: AckWaiter) -> None:
    """The library never expires response handlers: remove ours once we stop waiting."""
    handlers = getattr(iface, "responseHandlers", {})
    for request_id, handler in list(handlers.items()):
        if getattr(handler.callback, "__self__", None) is waiter:
            handlers.pop(request_id, None)
