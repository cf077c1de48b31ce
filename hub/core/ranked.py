"""A queue that hands out its highest-ranked item first (FIFO within a rank), for receive paths where
acks must not wait behind data.

Ranks are small integers agreed between the hub and its links: data frames rank by their priority
(``0`` routine .. ``3`` life-safety) and link control (hop acks, end-to-end acks) ranks ``URGENT_RANK``.
The hub computes the rank and hands the function to transports (``TransportContext.frame_rank``), so a
transport can order and admit frames without knowing message kinds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

URGENT_RANK = 4
"""Frames ranked this high are acks: read before any data and never refused for being busy."""

FrameRank = Callable[[bytes], int]
"""Rank of a received frame or fragment, ``0..URGENT_RANK``."""


def unranked(data: bytes) -> int:
    """The default ``FrameRank``: every frame is routine data."""
    return 0


class RankedQueue(Generic[T]):
    """FIFO per rank, highest rank first. ``maxsize`` bounds each rank on its own (0: unbounded), so a
    full data rank never blocks an ack. Safe for many getters and putters on one event loop."""

    def __init__(self, ranks: int, maxsize: int = 0) -> None:
        self._lanes: tuple[deque[T], ...] = tuple(deque() for _ in range(ranks))
        self._maxsize = maxsize
        self._count = 0
        self._nonempty = asyncio.Event()
        self._room = asyncio.Event()

    def qsize(self, *, below: int | None = None) -> int:
        """Items queued, or only those ranked under ``below``."""
        if below is None:
            return self._count
        return sum(len(lane) for lane in self._lanes[:below])

    def full(self, rank: int) -> bool:
        return 0 < self._maxsize <= len(self._lanes[rank])

    def put_nowait(self, item: T, rank: int) -> None:
        """Queue ``item`` at ``rank`` (clamped to the ranks there are); ``asyncio.QueueFull`` if full."""
        rank = min(max(rank, 0), len(self._lanes) - 1)
        if self.full(rank):
            raise asyncio.QueueFull
        self._lanes[rank].append(item)
        self._count += 1
        self._nonempty.set()

    async def put(self, item: T, rank: int) -> None:
        """Queue ``item``, waiting while its rank is full."""
        rank = min(max(rank, 0), len(self._lanes) - 1)
        while self.full(rank):
            self._room.clear()
            await self._room.wait()
        self.put_nowait(item, rank)

    def get_nowait(self) -> T:
        """The oldest item of the highest non-empty rank; ``asyncio.QueueEmpty`` if there is none."""
        for lane in reversed(self._lanes):
            if lane:
                self._count -= 1
                self._room.set()
                return lane.popleft()
        raise asyncio.QueueEmpty

    async def get(self) -> T:
        """Like ``get_nowait``, waiting for an item."""
        while not self._count:
            self._nonempty.clear()
            await self._nonempty.wait()
        return self.get_nowait()
