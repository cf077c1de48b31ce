"""What a LoRa send waits for: its turn on the radio, then the routing answers to its packet.

A Meshtastic radio takes one ``want_ack`` packet at a time from Beredt, so ``PriorityGate`` hands the
radio to waiting senders by priority, then by arrival, and passes a turn on when its holder is
cancelled. ``AckWaiter`` collects the routing answers to one packet in the order the radio sent them:
the library's response callback (called on its reader thread, reaching the event loop only through
``loop.call_soon_threadsafe``) brings the first, the transport's receive path the rest. The library
never expires response handlers, so ``drop_response_handlers`` removes ours once the send stops waiting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator
from typing import Any


class AckWaiter:
    """Collects the routing answers to one packet: the implicit ACK, the real ACK, or a NAK.

    The library calls ``onAckNak`` on its reader thread with the *first* answer and then forgets the
    handler, so later answers (the real ACK after a relay's implicit one) come in through the
    transport's receive path as ``offer``. Both reach the event loop in the order the radio sent them:
    the first answer's callback is scheduled before anything read after it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.packet_id: int | None = None
        """The mesh packet id of what we sent, once known (from the library or the first answer)."""
        self._answers: collections.deque[dict[str, Any]] = collections.deque()
        self._seen: set[object] = set()
        self._arrived = asyncio.Event()
        self._error: BaseException | None = None

    # The library hands plain ACKs (not only NAKs) to a response callback only if it is named onAckNak.
    def onAckNak(self, packet: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self._loop.call_soon_threadsafe(self.offer, packet)

    def offer(self, packet: dict[str, Any]) -> None:
        """A routing packet about our packet; the same answer may be offered twice (callback, pubsub)."""
        request_id = packet.get("decoded", {}).get("requestId")
        if self.packet_id is None and isinstance(request_id, int):
            self.packet_id = request_id
        key = packet.get("id"), packet.get("from")
        if key in self._seen:
            return
        self._seen.add(key)
        self._answers.append(packet)
        self._arrived.set()

    def fail(self, exc: BaseException) -> None:
        self._error = exc
        self._arrived.set()

    async def next_answer(self) -> dict[str, Any]:
        """The next answer in arrival order; raises what ``fail`` was given."""
        while not self._answers:
            if self._error is not None:
                raise self._error
            self._arrived.clear()
            await self._arrived.wait()
        return self._answers.popleft()


class ResponseWaiter:
    """Waits for an application reply (or a NAK) to one request; plain ACKs do not reach it.

    The library passes a response handler not named ``onAckNak`` only data replies and NAKs, and
    keeps it across the implicit and real ACKs of the request itself.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.future: asyncio.Future[dict[str, Any]] = loop.create_future()

    def on_response(self, packet: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._settle, packet)

    def _settle(self, packet: dict[str, Any]) -> None:
        if not self.future.done():
            self.future.set_result(packet)


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


def drop_response_handlers(iface: Any, waiter: AckWaiter | ResponseWaiter) -> None:
    """The library never expires response handlers: remove ours once we stop waiting."""
    handlers = getattr(iface, "responseHandlers", {})
    for request_id, handler in list(handlers.items()):
        if getattr(handler.callback, "__self__", None) is waiter:
            handlers.pop(request_id, None)
