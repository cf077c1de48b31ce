"""Handing the held roster to a neighbour that lacks it, so it need not wait for the next re-broadcast.

A care home that joins through an entry point, or over LoRa alone, trusts nothing but the root key: it
takes no frame from anyone until it holds a signed roster version, and the staff hub re-broadcasts that
only every ``announce_interval`` (ten minutes by default; over radio not at all, those repeats are
routine). Every route announcement says which roster version its sender holds, so when route learning
takes one from a neighbour behind ours (or a new neighbour that does not say,
``RouteLearning.on_needs_roster``), this hub sends that neighbour the pages of the version it holds,
addressed to it alone. The page listing this hub goes first: a hub with no roster takes a ROSTER frame
from a sender the page it carries vouches for, and each later page from the card in a page it already
holds (``Admission``). Staff and relay hubs hand off; a care home's role may not send ROSTER frames, so
it leaves that to them.

Only a neighbour whose announcement passed admission (signed by a node the roster trusts) is offered,
and handed the pages only if our own roster trusts it (not another municipality's node: it would refuse
our root's pages as forged) when its turn comes. The pages go routine over free links (internet, MQTT);
to a neighbour only radio reaches (LoRa) they go at normal priority, the least radio takes, through the
link's airtime budget like any frame: one hand-off costs about a second of air per page. Each neighbour
is handed the roster at most once per ``GAP`` (``RADIO_GAP`` over radio), so one that comes and goes, or
keeps saying it is behind, does not keep drawing the whole roster. A neighbour that already holds the
version stores the pages and acts on none of them. A neighbour only radio reaches that says it holds
the version our root-signed delta was made from is handed that delta alone (one or two LoRa packets
where the pages take dozens), at most once per ``GAP``; should it not arrive, the neighbour stays behind
and gets the whole version.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from hub.core.clock import Clock
from hub.core.errors import BeredtError
from hub.core.frame import Kind, Priority
from hub.core.kinds.roster import verify
from hub.core.kinds.roster_delta import is_delta
from hub.relay.roster_updates import RosterUpdates

log = logging.getLogger("beredt.roster")

GAP = 600.0
"""Seconds before the same neighbour is handed the roster again over a free link."""
RADIO_GAP = 3600.0
"""The same over radio, where each page takes about a second of the hour's airtime."""
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
        self._last_delta: dict[bytes, float] = {}
        """Neighbour -> when it was last handed only the delta (monotonic)."""
        self._waiting: asyncio.Queue[tuple[bytes, bool, bytes | None]] = asyncio.Queue()
        self.handed = 0
        """Hand-offs made: one per neighbour given a version's pages."""

    def offer(self, neighbour: bytes, radio: bool = False, theirs: int | None = None) -> None:
        """Queue a hand-off to ``neighbour`` (over ``radio`` when only radio reaches it, holding version
        ``theirs`` if it said) unless this hub holds no version or gave it one lately."""
        if not self._updates.payloads or not self._trusted(neighbour):
            return
        now = self._clock.monotonic()
        made = self._updates.delta
        if radio and made is not None and theirs is not None and made[0] == theirs:
            last = self._last_delta.get(neighbour)
            if last is None or now - last >= GAP:
                self._last_delta[neighbour] = now
                self._waiting.put_nowait((neighbour, radio, made[1]))
                return
        last = self._last.get(neighbour)
        if last is not None and now - last < (RADIO_GAP if radio else GAP):
            return
        self._last[neighbour] = now
        self._waiting.put_nowait((neighbour, radio, None))

    async def run(self) -> None:
        """Hand the roster to each neighbour offered, in turn; never returns."""
        while True:
            neighbour, radio, delta = await self._waiting.get()
            if self._trusted(neighbour):  # it may have been revoked while it waited
                await self._hand(neighbour, radio, delta)

    async def _hand(self, neighbour: bytes, radio: bool, delta: bytes | None) -> None:
        version, payloads = self._updates.version, self._updates.payloads
        if delta is not None:  # the neighbour holds the delta's base: the change alone will do
            payloads = [delta]
        priority = Priority.NORMAL if radio else Priority.ROUTINE  # routine traffic may not use radio
        try:
            for payload in self._ours_first(payloads) if delta is None else payloads:
                await self._send(Kind.ROSTER, neighbour, payload, priority=priority, ttl_minutes=TTL_MINUTES)
        except BeredtError as exc:
            log.info("roster version %d not handed to %s: %s", version, neighbour.hex(), exc)
            return
        self.handed += 1
        log.info(
            "roster version %d (%s) handed to neighbour %s%s",
            version, "its delta" if delta else f"{len(payloads)} pages", neighbour.hex(),
            " over radio" if radio else "",
        )  # fmt: skip

    def _ours_first(self, payloads: list[bytes]) -> list[bytes]:
        """``payloads`` with the page that lists this hub first: it vouches for our frames."""
        root = self._updates.root
        if root is None:
            return payloads
        for index, payload in enumerate(payloads):
            if not is_delta(payload) and verify(payload, root).version.node(self._me) is not None:
                return [payload, *payloads[:index], *payloads[index + 1 :]]
        return payloads
