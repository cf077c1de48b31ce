"""The hub's side of learned routes: which link tells each neighbour, sending ROUTE frames, hearing them.

Every second the hub looks at its neighbours (the peers ``LinkSet`` knows, configured or learned): a
neighbour is told over its best usable free link (internet, MQTT) when it has one, else over a metered
one (LoRa, SINE: the radio pace of ``hub.relay.route_table``), never over a paid one (satellite). A
neighbour with no usable link at all is down: every route through it is dropped at once. ROUTE frames are
signed, sent straight to the neighbour's address with zero hops, never stored, queued or retried: a lost
one is made good by the next. One is taken only when it is addressed to us, comes from a neighbour with
zero hops and is not older than the last one taken from it, so a recorded announcement replayed later
cannot bring back a route that was withdrawn.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from hub.core.clock import Clock
from hub.core.errors import ProtocolError, TransportError
from hub.core.frame import Frame, Kind, Priority
from hub.core.identity import Identity
from hub.core.kinds.routes import EXPIRY_INTERVALS, RouteAnnouncement, decode, encode
from hub.core.transport import Cost
from hub.relay.health import LinkState
from hub.relay.links import LinkSet
from hub.relay.route_table import Pace, RouteTable, hop_cost

log = logging.getLogger("beredt.routes")

TICK = 1.0
RADIO_INTERVAL = 12 * 3600.0
"""A LoRa frame with its signature takes about 1.3 s of air (LONG_FAST), and announcements may use 1.8 s
an hour (5 % of the EU868 duty cycle): so a radio neighbour hears our table twice a day, and a change at
most hourly. Probes, not announcements, notice a radio link lost."""
RADIO_GAP = 3600.0


class RouteLearning:
    def __init__(
        self,
        identity: Identity,
        links: LinkSet,
        known: Callable[[bytes], bool],
        clock: Clock,
        *,
        interval: float = 30.0,
        gap: float = 1.0,
        radio_interval: float = RADIO_INTERVAL,
        radio_gap: float = RADIO_GAP,
    ) -> None:
        self.identity = identity
        self.links = links
        self.clock = clock
        self.table = RouteTable(identity.node_id, known)
        self.free_pace = (interval, gap)
        self.radio_pace = (radio_interval, radio_gap)
        self._via: dict[bytes, tuple[str, str, bool]] = {}
        """Neighbour -> (link, address, radio) that tells it now."""
        self._newest: dict[bytes, int] = {}
        self.sent_frames = 0
        self.sent_bytes = 0
        self.refused = 0

    def next_hops(self, destination: bytes) -> list[bytes]:
        return self.table.next_hops(destination)

    def _best_link(self, neighbour: bytes) -> tuple[str, str, bool, int] | None:
        """The (link, address, radio, cost) to tell ``neighbour`` over, cheapest usable first."""
        best: tuple[int, str, str, bool] | None = None
        for option in self.links.options(neighbour):
            caps = self.links.capabilities(option.link)
            if caps.cost is Cost.PAID or self.links.state(option.link, neighbour) is LinkState.DOWN:
                continue
            cost = hop_cost(self.links.kind_of(option.link))
            if best is None or cost < best[0]:
                best = (cost, option.link, option.address, caps.cost is Cost.METERED)
        return None if best is None else (best[1], best[2], best[3], best[0])

    def refresh(self) -> None:
        """Bring the table's neighbours in line with the links: up at their cost, or down."""
        now = self.clock.monotonic()
        for neighbour in list(self.links.peers):
            chosen = self._best_link(neighbour)
            if chosen is None:
                if self._via.pop(neighbour, None) is not None:
                    log.info("no usable link to %s: routes through it dropped", neighbour.hex())
                self.table.neighbour_down(neighbour)
                continue
            link, address, radio, cost = chosen
            interval, gap = self.radio_pace if radio else self.free_pace
            pace = Pace(interval, gap, radio=radio, next_full=now)  # used only when new or changed
            old = self._via.get(neighbour)
            self._via[neighbour] = (link, address, radio)
            self.table.neighbour_up(neighbour, cost, pace)
            if old is not None and old[2] != radio:
                self.table.set_pace(neighbour, pace)

    async def run(self) -> None:
        """Announce what is due, forget what is stale, every second; never returns."""
        while True:
            self.refresh()
            now = self.clock.monotonic()
            self.table.expire(now)
            for neighbour, pages in self.table.outgoing(now).items():
                await self._send(neighbour, pages)
            await asyncio.sleep(TICK)

    async def _send(self, neighbour: bytes, pages: list[RouteAnnouncement]) -> None:
        link, address, radio = self._via[neighbour]
        priority = Priority.NORMAL if radio else Priority.ROUTINE  # routine traffic may not use radio
        for page in pages:
            ttl = max(1, math.ceil(EXPIRY_INTERVALS * page.interval / 60))
            frame = self.identity.sign(
                Kind.ROUTE,
                neighbour,
                encode(page),
                created=int(self.clock.time()),
                ttl_minutes=ttl,
                priority=priority,
            )
            wire = frame.encode()
            try:
                await self.links.send(link, address, wire, int(priority))
            except TransportError as exc:
                log.debug("route announcement to %s over %s not sent: %s", neighbour.hex(), link, exc)
                return
            self.sent_frames += 1
            self.sent_bytes += len(wire)

    def newer(self, frame: Frame) -> bool:
        """Whether ``frame`` is newer than every announcement taken from its sender."""
        return frame.created > self._newest.get(frame.sender, 0)

    def hear(self, frame: Frame, me: bytes) -> str | None:
        """Take an admitted ROUTE frame; return why it was refused, or None."""
        if frame.recipient != me or frame.hops != 0:
            return "a route announcement is for one neighbour, never relayed"
        if frame.sender not in self._via and frame.sender in self.links.peers:
            self.refresh()  # a neighbour just learned from this very frame
        if frame.sender not in self._via:
            return f"{frame.sender.hex()} is not a neighbour with a usable link"
        if frame.created < self._newest.get(frame.sender, 0):
            return "older than the last route announcement taken from its sender"
        try:
            announcement = decode(frame.payload)
        except ProtocolError as exc:
            return str(exc)
        self._newest[frame.sender] = frame.created
        self.refused += self.table.hear(frame.sender, announcement, self.clock.monotonic())
        return None
