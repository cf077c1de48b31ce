"""Learned routes: each hub's next hops per destination, from its neighbours' ROUTE announcements.

Path-vector (``hub.core.kinds.routes``): a neighbour tells us, for every destination it reaches, its
cost and the whole path. We take a path only if it does not hold our own id and is at most ``MAX_PATH``
long, so a loop cannot form and no bad news has to count to infinity; a destination we lose is
withdrawn explicitly at once (triggered), and an entry not refreshed within ``EXPIRY_INTERVALS`` of its
sender's intervals is forgotten, so a relay that vanished silently is routed around within three
intervals. Split horizon comes with it: a route through a neighbour is never offered back to it, and
when our best route to a destination starts going through a neighbour we withdraw it from that one
(poisoned reverse), so it drops any route through us at once.

Radio links cannot carry a whole table (EU868 allows 36 s of airtime an hour). To neighbours reached
only over a metered link (LoRa, SINE) a hub sends, rarely, just what it reaches through its other radio
neighbours and, if it holds no default itself, a *default*: "everything else through me". On a radio
link that broadcasts (LoRa) that is one announcement for all its neighbours there, a *channel*: split
horizon then falls to the receivers, which refuse any path holding their own id and drop their route
through us for it (the poisoned reverse a unicast withdrawal would have told them).
A default is taken only from a hub that has no default of its own, so a chain of defaults is one hop long
and cannot loop; explicit routes always come first. A paid link (satellite) is told the same way, and
never twice within its gap (``Pace.paid``).

The cost of a hop is the cost of the cheapest link kind that reaches that neighbour
(``LINK_COSTS``); among equal costs the shorter path wins, then the lower neighbour id, so every hub
decides the same way. Only destinations ``known`` (the roster) are learned, so what one neighbour can
make us hold is bounded by the roster's size. Sans-IO: time is passed in, nothing is sent here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hub.core.kinds.routes import (
    EXPIRY_INTERVALS,
    MAX_PATH,
    RouteAnnouncement,
    RouteEntry,
    paginate,
)

LINK_COSTS = {"internet": 1, "memory": 1, "mqtt": 2, "lora": 10, "sine": 10, "satellite": 100}
"""What one hop over a link of each kind costs; unknown kinds cost as much as satellite."""
UNKNOWN_KIND_COST = 100


def hop_cost(kind: str) -> int:
    return LINK_COSTS.get(kind, UNKNOWN_KIND_COST)


@dataclass(frozen=True, slots=True)
class Route:
    cost: int
    path: tuple[bytes, ...]
    """From us: the next hop first, the destination last."""
    expires: float
    heard: float
    """When its neighbour last told it to us (``now`` of ``hear``)."""

    @property
    def rank(self) -> tuple[int, int, bytes]:
        return (self.cost, len(self.path), self.path[0])


Target = bytes | str
"""Who an announcement is for: one neighbour (its node id) or every neighbour on a channel (link name)."""


@dataclass(slots=True)
class Pace:
    """How often one neighbour is told our table: in full every ``interval``, changes at most every
    ``gap``; over a ``radio`` link only the radio part and a default. Over a ``paid`` one the first after
    the neighbour came up is the full table, at ``next_full`` at the earliest, and nothing goes sooner
    than ``gap`` after the last, a full table included, whatever asked for it."""

    interval: float
    gap: float
    radio: bool = False
    paid: bool = False
    told_default: bool = False
    offered: set[bytes] = field(default_factory=set)
    """Over radio: the destinations this neighbour was offered, the only ones worth withdrawing there."""
    next_full: float = 0.0
    last_sent: float = float("-inf")
    told_full: bool = False
    """Whether this neighbour was told the full table since it came up (over this kind of link)."""
    pending: set[bytes] = field(default_factory=set)


class RouteTable:
    def __init__(self, me: bytes, known: Callable[[bytes], bool] = lambda _: True) -> None:
        self.me = me
        self.known = known
        self._cost: dict[bytes, int] = {}
        """Neighbour -> cost of the hop to it; absent: not a neighbour now."""
        self._heard: dict[bytes, dict[bytes, Route]] = {}
        """Neighbour -> destination -> the route through that neighbour."""
        self._best: dict[bytes, list[Route]] = {}
        self._pace: dict[Target, Pace] = {}
        """Neighbour or channel -> how it is told; a neighbour on a channel has no pace of its own."""
        self._channel: dict[bytes, str] = {}
        """Neighbour -> the channel it is told on, if any."""
        self._defaults: dict[bytes, float] = {}
        """Neighbour offering itself as the way to everything else -> when that offer expires."""
        self._next_expiry = float("inf")
        """No entry expires before this: most calls to ``expire`` are a comparison."""

    # ---- what we know -------------------------------------------------------------------------------

    def next_hops(self, destination: bytes) -> list[bytes]:
        """Neighbours to try for ``destination``, best first (explicit routes, then defaults); empty if
        none reaches it."""
        hops = [route.path[0] for route in self._best.get(destination, ())]
        if destination != self.me and self._defaults and self.known(destination):
            hops += [n for n in self.defaults() if n not in hops]
        return hops

    @property
    def offers_default(self) -> bool:
        """Whether we may offer ourselves as a default: we know routes and rely on no default."""
        return bool(self._best) and not self._defaults

    def best(self, destination: bytes) -> Route | None:
        routes = self._best.get(destination)
        return routes[0] if routes else None

    def routes(self, destination: bytes) -> list[Route]:
        """Every route we hold to ``destination``, best first."""
        return list(self._best.get(destination, ()))

    def defaults(self) -> list[bytes]:
        """Neighbours offering themselves as the way to everything else, best first."""
        return sorted(self._defaults, key=lambda n: (self._cost[n], n))

    def destinations(self) -> list[bytes]:
        return list(self._best)

    def neighbours(self) -> list[bytes]:
        return list(self._cost)

    # ---- what changes it ----------------------------------------------------------------------------

    def neighbour_up(self, neighbour: bytes, cost: int, pace: Pace, channel: str | None = None) -> None:
        """``neighbour`` is reachable directly at ``cost``: announce to it at ``pace``, or on ``channel``
        (a broadcast every neighbour there hears) at that channel's pace. A neighbour new to its target
        gets a full table now (on a channel: once the channel's gap allows). Routes through it count
        once it has announced itself."""
        if neighbour == self.me:
            return
        target: Target = channel if channel is not None else neighbour
        if self._target(neighbour) != target:
            self._leave(neighbour)
            if channel is not None:
                self._channel[neighbour] = channel
            current = self._pace.get(target)
            if current is None:
                self._pace[target] = pace
            else:  # one more neighbour on a channel: the full table again, within the channel's gap
                current.next_full = min(
                    current.next_full, max(pace.next_full, current.last_sent + current.gap)
                )
        elif _kind(self._pace[target]) != _kind(pace):  # its best link changed kind: a full table now
            pace.pending = self._pace[target].pending
            self._pace[target] = pace
        old = self._cost.get(neighbour)
        self._cost[neighbour] = cost
        routes = self._heard.get(neighbour)
        if old is not None and old != cost and routes:
            for dest, route in list(routes.items()):
                routes[dest] = Route(route.cost - old + cost, route.path, route.expires, route.heard)
            self._recompute(list(routes))

    def tell_again(self, now: float, neighbour: bytes | None = None) -> None:
        """The full table to ``neighbour`` (on a channel: to everyone there), or to every neighbour, at the
        next ``outgoing``, whatever the pace: a hub that has just taken its roster refused what it was
        told before it held one. The caller bounds how often."""
        targets = self._pace.keys() if neighbour is None else [self._target(neighbour)]
        for target in list(targets):
            if target is not None:
                self._pace[target].next_full = min(self._pace[target].next_full, now)

    def neighbour_down(self, neighbour: bytes) -> None:
        """No link reaches ``neighbour`` now: forget every route through it."""
        if self._cost.pop(neighbour, None) is None:
            return
        self._leave(neighbour)
        self._drop_default(neighbour)
        self._recompute(self._heard.pop(neighbour, {}))

    def _target(self, neighbour: bytes) -> Target | None:
        if neighbour in self._channel:
            return self._channel[neighbour]
        return neighbour if neighbour in self._pace else None

    def _members(self, channel: str) -> set[bytes]:
        return {n for n, c in self._channel.items() if c == channel}

    def _leave(self, neighbour: bytes) -> None:
        """Stop telling ``neighbour`` where it is told now; a channel nobody is on any more goes."""
        channel = self._channel.pop(neighbour, None)
        if channel is None:
            self._pace.pop(neighbour, None)
        elif channel not in self._channel.values():
            self._pace.pop(channel, None)

    def hear(
        self, neighbour: bytes, announcement: RouteAnnouncement, now: float, *, shared: bool = False
    ) -> int:
        """Take ``neighbour``'s announcement; return how many of its entries were refused (loops,
        unknown destinations, too long). A neighbour we hold no link to is ignored. In a ``shared`` one
        (broadcast on a channel) paths through us are expected, the split horizon left to us: they are
        dropped like the others but not counted."""
        cost = self._cost.get(neighbour)
        if cost is None:
            return len(announcement.entries)
        routes = self._heard.setdefault(neighbour, {})
        expires = now + EXPIRY_INTERVALS * announcement.interval
        self._next_expiry = min(self._next_expiry, expires)
        routes[neighbour] = Route(cost, (neighbour,), expires, now)
        touched: list[bytes] = [neighbour]
        refused = 0
        for entry in announcement.entries:
            path = (neighbour, *entry.path)
            dest = entry.destination
            if self.me in path or neighbour in entry.path or len(path) > MAX_PATH or not self.known(dest):
                refused += not (shared and self.me in path)
                if dest in routes and dest != neighbour:  # its route now runs through us: drop ours via it
                    del routes[dest]
                    touched.append(dest)
                continue
            routes[dest] = Route(cost + entry.cost, path, expires, now)
            touched.append(dest)
        for dest in announcement.withdrawn:
            if dest != neighbour and routes.pop(dest, None) is not None:
                touched.append(dest)
        if announcement.default:
            self._defaults[neighbour] = expires
        self._recompute(touched)
        return refused

    def _drop_default(self, neighbour: bytes) -> None:
        self._defaults.pop(neighbour, None)

    def expire(self, now: float) -> None:
        """Forget entries whose sender has not repeated them in time."""
        if now < self._next_expiry:
            return
        later = [r.expires for routes in self._heard.values() for r in routes.values() if r.expires > now]
        later += [e for e in self._defaults.values() if e > now]
        self._next_expiry = min(later, default=float("inf"))
        for routes in self._heard.values():
            stale = [dest for dest, route in routes.items() if route.expires <= now]
            for dest in stale:
                del routes[dest]
            self._recompute(stale)
        for neighbour in [n for n, expires in self._defaults.items() if expires <= now]:
            self._drop_default(neighbour)

    def _recompute(self, destinations: Iterable[bytes]) -> None:
        for dest in set(destinations):
            if dest == self.me:
                continue
            routes = sorted(
                (r for n, heard in self._heard.items() if (r := heard.get(dest)) is not None),
                key=lambda r: r.rank,
            )
            old = self._best.get(dest)
            if routes:
                self._best[dest] = routes
            else:
                self._best.pop(dest, None)
            if _head(old) != _head(routes):
                for pace in self._pace.values():
                    pace.pending.add(dest)

    # ---- what we tell ---------------------------------------------------------------------------------

    def outgoing(self, now: float) -> dict[Target, list[RouteAnnouncement]]:
        """The announcements due now, per neighbour or channel: the full table when its interval is up,
        else the changes since the last one once its gap has passed."""
        due: dict[Target, list[RouteAnnouncement]] = {}
        offers_default = self.offers_default
        for target, pace in self._pace.items():
            if pace.radio and pace.told_default != offers_default:
                pace.pending.add(self.me)  # radio neighbours learn it at their next gap
            if pace.paid:
                # Credits: nothing sooner than the gap, and the first after it came up (after a start, or
                # back after an outage that forgot our routes there) is the full table: changes sent
                # before it would hold it back for another gap.
                opens = pace.last_sent + pace.gap
                if not pace.told_full:
                    opens = max(opens, pace.next_full)
                if now < opens:
                    continue
            if now >= pace.next_full:
                dests: Iterable[bytes] = self._best.keys()
                pace.next_full = now + pace.interval
                pace.told_full = full = True
            elif pace.pending and now >= pace.last_sent + pace.gap:
                dests = pace.pending & self._best.keys()
                full = False
            else:
                continue
            entries, withdrawn = self._offer(target, dests, pace, full)
            default = pace.radio and offers_default
            news = default != pace.told_default
            pace.told_default = default
            pace.pending.clear()
            pace.last_sent = now
            if full or entries or withdrawn or news:
                interval = max(1, round(pace.interval))
                due[target] = paginate(interval, entries, withdrawn, default=default)
                if not due[target]:  # nothing to say, but our silence would expire our own entry
                    due[target] = [RouteAnnouncement(interval)]
        return due

    def _radio(self, neighbour: bytes) -> bool:
        target = self._target(neighbour)
        pace = None if target is None else self._pace.get(target)
        return pace is not None and pace.radio

    def _offer(
        self, target: Target, dests: Iterable[bytes], pace: Pace, full: bool
    ) -> tuple[list[RouteEntry], list[bytes]]:
        """What ``target`` may hear about ``dests``, and what it must forget: our best route, unless it
        runs through the neighbour (then, if it changed, a withdrawal: poisoned reverse) or is the
        neighbour itself; over radio only routes whose first hop is itself a radio neighbour (what only
        radio reaches), and withdrawals only of what was offered there (airtime). On a channel a route
        goes out unless it runs through every neighbour there: a receiver refuses a path holding itself."""
        entries: list[RouteEntry] = []
        poisoned: list[bytes] = []
        listeners = {target} if isinstance(target, bytes) else self._members(target)
        for dest in sorted(dests):
            if dest == target:
                continue
            route = self._best[dest][0]
            if listeners <= set(route.path):  # every listener would refuse it: airtime for nothing
                if dest in pace.pending:
                    poisoned.append(dest)
            elif len(route.path) < MAX_PATH and (not pace.radio or self._radio(route.path[0])):
                entries.append(RouteEntry(route.cost, route.path))
        lost = [d for d in pace.pending if d not in self._best and d not in (target, self.me)]
        if not pace.radio:
            return entries, [*sorted(lost), *poisoned]
        offered = {e.destination for e in entries}
        gone = sorted(d for d in pace.offered - offered if full or d in pace.pending)
        pace.offered.difference_update(gone)
        pace.offered.update(offered)
        return entries, gone


def _kind(pace: Pace) -> tuple[bool, bool]:
    return pace.radio, pace.paid


def _head(routes: list[Route] | None) -> tuple[int, tuple[bytes, ...]] | None:
    return (routes[0].cost, routes[0].path) if routes else None
