"""Many hubs' route tables in one process, joined by memory links with a delay, on a manual clock.

Each hub is a ``RouteTable``; every ``step`` lets each live hub expire what is stale and send what is due
(encoded with the real ROUTE codec, so bytes are counted as they would be on the air), and delivers what
has arrived. Nodes and links can be killed, added and moved; a killed node is silent (its neighbours
notice only because its announcements stop), a removed link is noticed at once (the hub's probes see
it). Radio links broadcast, as LoRa does: a hub's announcement on one reaches every live neighbour it
has over that kind at once, one frame. ``forwarding`` follows each hub's first next hop towards a
destination, the way a frame would go.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from hub.core.kinds.routes import decode, encode
from hub.relay.route_learning import RADIO_GAP, RADIO_INTERVAL
from hub.relay.route_table import Pace, RouteTable, hop_cost

FREE_PACE = (30.0, 1.0)
"""(interval, gap) over free links in the simulation, seconds."""
RADIO_PACE = (RADIO_INTERVAL, RADIO_GAP)


@dataclass(slots=True)
class Sent:
    """Announcement traffic over one link kind: frames and payload bytes."""

    frames: int = 0
    payload_bytes: int = 0


@dataclass
class RouteMesh:
    latency: float = 0.05
    now: float = 0.0
    radio_pace: tuple[float, float] = RADIO_PACE
    """(interval, gap) over radio links; a bench may compress it to simulate a radio interval sooner."""
    tables: dict[bytes, RouteTable] = field(default_factory=dict)
    links: dict[frozenset[bytes], str] = field(default_factory=dict)
    dead: set[bytes] = field(default_factory=set)
    sent: dict[str, Sent] = field(default_factory=dict)
    sent_by: dict[bytes, dict[str, Sent]] = field(default_factory=dict)
    refused: int = 0
    _queue: list[tuple[float, int, bytes, bytes | str, bytes]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def add_node(self, node: bytes) -> None:
        self.tables[node] = RouteTable(node, known=lambda n: n in self.tables)

    def link(self, a: bytes, b: bytes, kind: str) -> None:
        self.links[frozenset((a, b))] = kind
        for me, other in ((a, b), (b, a)):
            self._refresh_neighbour(me, other)

    def unlink(self, a: bytes, b: bytes) -> None:
        del self.links[frozenset((a, b))]
        for me, other in ((a, b), (b, a)):
            self._refresh_neighbour(me, other)

    def kill(self, node: bytes) -> None:
        self.dead.add(node)

    def _refresh_neighbour(self, me: bytes, other: bytes) -> None:
        kind = self.links.get(frozenset((me, other)))
        table = self.tables[me]
        if kind is None:
            table.neighbour_down(other)
            return
        radio = hop_cost(kind) >= hop_cost("lora")
        interval, gap = self.radio_pace if radio else FREE_PACE
        pace = Pace(interval, gap, radio=radio, next_full=self.now)
        table.neighbour_up(other, hop_cost(kind), pace, channel=kind if radio else None)

    def step(self, dt: float) -> None:
        """Advance the clock by ``dt``: deliver what arrives meanwhile, then let every hub speak."""
        end = self.now + dt
        while self._queue and self._queue[0][0] <= end:
            when, _, sender, target, payload = heapq.heappop(self._queue)
            self.now = when
            shared = isinstance(target, str)
            receivers = self._on_channel(sender, target) if isinstance(target, str) else [target]
            for receiver in receivers:
                if receiver not in self.dead and frozenset((sender, receiver)) in self.links:
                    heard = self.tables[receiver].hear(sender, decode(payload), when, shared=shared)
                    self.refused += heard
        self.now = end
        for node, table in self.tables.items():
            if node in self.dead:
                continue
            table.expire(self.now)
            for target, pages in table.outgoing(self.now).items():
                kind = target if isinstance(target, str) else self.links[frozenset((node, target))]
                for page in pages:
                    payload = encode(page)
                    for tally in (
                        self.sent.setdefault(kind, Sent()),
                        self.sent_by.setdefault(node, {}).setdefault(kind, Sent()),
                    ):
                        tally.frames += 1
                        tally.payload_bytes += len(payload)
                    heapq.heappush(
                        self._queue, (self.now + self.latency, next(self._seq), node, target, payload)
                    )

    def _on_channel(self, sender: bytes, kind: str) -> list[bytes]:
        """The hubs a broadcast by ``sender`` on its ``kind`` radio reaches: its neighbours over that kind."""
        return [
            other
            for pair, k in self.links.items()
            if k == kind and sender in pair
            for other in pair - {sender}
        ]

    def run(self, seconds: float, dt: float = 0.25) -> None:
        for _ in range(round(seconds / dt)):
            self.step(dt)

    # ---- what a frame would do ----------------------------------------------------------------------

    def forwarding(self, source: bytes, destination: bytes) -> tuple[list[bytes], bool]:
        """The hubs a frame from ``source`` visits following first next hops, and whether it arrives. A
        loop shows as a repeated hub at the end of the list."""
        path = [source]
        here = source
        while here != destination:
            skip = {source, path[-2]} if len(path) > 1 else {source}  # as the router excludes them
            hops = [h for h in self.tables[here].next_hops(destination) if h not in skip]
            if not hops:
                return path, False
            here = hops[0]
            if here in path:
                path.append(here)
                return path, False
            path.append(here)
            if here in self.dead or here not in self.tables:
                return path, False
        return path, True

    def reachable(self, source: bytes) -> set[bytes]:
        """Live hubs connected to ``source`` over live links: what it should be able to reach."""
        adjacent: dict[bytes, list[bytes]] = {}
        for pair in self.links:
            a, b = tuple(pair)
            adjacent.setdefault(a, []).append(b)
            adjacent.setdefault(b, []).append(a)
        seen = {source}
        todo = [source]
        while todo:
            for other in adjacent.get(todo.pop(), ()):
                if other not in seen and other not in self.dead:
                    seen.add(other)
                    todo.append(other)
        return seen

    def loops(self, sources: Iterable[bytes]) -> list[list[bytes]]:
        """Forwarding loops from ``sources`` to every hub (should always be empty)."""
        found = []
        for source in sources:
            for destination in self.tables:
                path, _ = self.forwarding(source, destination)
                if len(path) != len(set(path)):
                    found.append(path)
        return found

    def unreached(self, sources: Iterable[bytes]) -> list[tuple[bytes, bytes]]:
        """(source, destination) pairs that are connected but where forwarding does not arrive."""
        missing = []
        for source in sources:
            if source in self.dead:
                continue
            for destination in self.reachable(source) - {source}:
                if not self.forwarding(source, destination)[1]:
                    missing.append((source, destination))
        return missing
