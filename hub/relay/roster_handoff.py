"""Handing the held roster to a neighbour just learned, so it need not wait for the next re-broadcast.

A care home that joins through an entry point trusts nothing but the root key: it takes no frame from
anyone until it holds a signed roster version, and the staff hub re-broadcasts that only every
``announce_interval`` (ten minutes by default). So when route learning takes the first announcement from
a neighbour it did not have a moment before (``RouteLearning.on_new_neighbour``), this hub sends that
neighbour the pages of the version it holds, addressed to it alone. The page listing this hub goes first:
a hub with no roster takes a ROSTER frame from a sender the page it carries vouches for, and each later
page from the card in a page it already holds (``Admission``). Staff and relay hubs hand off; a care
home's role may not send ROSTER frames, so it leaves that to them.

Only a neighbour whose announcement passed admission (signed by a node the roster trusts) is offered,
and handed the pages only if our own roster trusts it (not another municipality's node: it would refuse
our root's pages as forged) when its turn comes; each at most once per ``GAP``, so a neighbour that comes and
goes does not keep drawing the whole roster. The pages go routine, so they keep to free links (internet,
MQTT): on radio and paid links a hub catches up from the broadcasts, as before. A neighbour that already
holds the version stores the pages and acts on none of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hub.core.clock import Clock
from hub.core.errors import BeredtError
from hub.core.frame import Kind, Priority
from hub.core.kinds.roster import verify
from hub.relay.roster_updates import RosterUpdates

log = logging.getLogger("beredt.roster")

GAP = 600.0
"""Seconds before the same neighbour is handed the roster again."""
TTL_MINUTES = 10
"""A hand-off left undelivered this long is stale: the neighbour has the broadcasts by then."""

Send = Callable[..., Awaitable[bytes]]
"""``Hub.submit``: sign, store and queue a message to one recipient."""


class RosterHandoff:
    def __init__(
        self,
        me: bytes,
        updates: RosterUpdates,
        trusted: Callable[[bytes], bool],
        send: Send,
        clock: Clock,
    ) -> None:
        self._me = me
        self._updates = updates
        self._trusted = trusted
        self._send = send
        self._clock = clock
        self._last: dict[bytes, float] = {}
        """Neighbour -> when it was last handed the roster (monotonic)."""
        self._waiting: asyncio.Queue[bytes] = asyncio.Queue()
        self.handed = 0
        """Hand-offs made: one per neighbour given a version's pages."""

    def offer(self, neighbour: bytes) -> None:
        """Queue a hand-off to ``neighbour`` unless this hub holds no version or gave it one lately."""
        if not self._updates.payloads or not self._trusted(neighbour):
            return
        now = self._clock.monotonic()
        last = self._last.get(neighbour)
        if last is not None and now - last < GAP:
            return
        self._last[neighbour] = now
        self._waiting.put_nowait(neighbour)

    async def run(self) -> None:
        """Hand the roster to each neighbour offered, in turn; never returns."""
        while True:
            neighbour = await self._waiting.get()
            if self._trusted(neighbour):  # it may have been revoked while it waited
                await self._hand(neighbour)

    async def _hand(self, neighbour: bytes) -> None:
        version, payloads = self._updates.version, self._updates.payloads
        try:
            for payload in self._ours_first(payloads):
                await self._send(
                    Kind.ROSTER, neighbour, payload, priority=Priority.ROUTINE, ttl_minutes=TTL_MINUTES
                )
        except BeredtError as exc:
            log.info("roster version %d not handed to %s: %s", version, neighbour.hex(), exc)
            return
        self.handed += 1
        log.info(
            "roster version %d (%d pages) handed to new neighbour %s", version, len(payloads), neighbour.hex()
        )

    def _ours_first(self, payloads: list[bytes]) -> list[bytes]:
        """``payloads`` with the page that lists this hub first: it vouches for our frames."""
        root = self._updates.root
        if root is None:
            return payloads
        for index, payload in enumerate(payloads):
            if verify(payload, root).version.node(self._me) is not None:
                return [payload, *payloads[:index], *payloads[index + 1 :]]
        return payloads
