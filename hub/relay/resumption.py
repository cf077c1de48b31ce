"""Taking up the store's open deliveries after a start, a page at a time (``Router.resume``).

Each next hop's queue is resumed highest priority first, oldest first, holding at most ``window`` of
its resumed messages in memory: the next page is read as they settle (``forget``). So a long queue costs
neither memory nor start-up time, and a hop that is down holds back only its own queue. Nothing is lost
meanwhile: the messages are on disk, and an ack for one still there is recorded and honoured when it is
read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hub.core.frame import Priority
from hub.relay.store import Store
from hub.relay.store_records import PendingDelivery

RESUME_WINDOW = 1024
"""Messages resumed from the store that each next hop holds in memory at once; the rest of its queue
waits on disk, in priority order, until these settle."""
RESUME_PAGE = 256

Track = Callable[[list[PendingDelivery], set[bytes]], None]
"""Tracks a page of pending deliveries, adding the id of each message it takes up to the set before it
may settle (an end-to-end ack already recorded settles it at once, and ``forget`` must find it)."""


class Resumption:
    """The pages of each next hop's queue read so far, and room for the next as they settle."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.window = RESUME_WINDOW
        self.page = RESUME_PAGE
        self._resumed: dict[bytes, set[bytes]] = {}
        """Per next hop whose queue is being resumed: the ids of its resumed messages still open."""
        self._room: dict[bytes, asyncio.Event] = {}

    async def run(self, loaded: asyncio.Event, track: Track) -> None:
        """Resume every next hop's queue through ``track``; set ``loaded`` once every hop has its first
        ``window`` messages (or all of them) in memory, return when all are."""
        upto = await self.store.resume_bound()
        hops = await self.store.pending_hops()
        first_pages = [asyncio.Event() for _ in hops]
        async with asyncio.TaskGroup() as group:
            for hop, first in zip(hops, first_pages, strict=True):
                group.create_task(self._resume_hop(hop, upto, first, track), name=f"resume-{hop.hex()}")
            for first in first_pages:
                await first.wait()
            loaded.set()
        self._resumed.clear()
        self._room.clear()

    def forget(self, message_id: bytes) -> None:
        """``message_id`` settled or was evicted: its hop may read on."""
        for hop, resumed in self._resumed.items():
            if message_id in resumed:
                resumed.discard(message_id)
                self._room[hop].set()
                return

    async def _resume_hop(self, hop: bytes, upto: int, first: asyncio.Event, track: Track) -> None:
        resumed = self._resumed[hop] = set()
        room = self._room[hop] = asyncio.Event()
        for priority in sorted(Priority, reverse=True):
            after = (0.0, 0)
            while True:
                while len(resumed) >= self.window:
                    first.set()
                    room.clear()
                    await room.wait()
                evicted = self.store.evicted
                limit = min(self.page, self.window - len(resumed))
                page = await self.store.pending(hop, priority, after=after, upto=upto, limit=limit)
                if self.store.evicted != evicted:
                    continue  # the page may hold a message evicted meanwhile: read it again
                if not page.deliveries:
                    break
                after = page.after
                track(page.deliveries, resumed)
        first.set()
