"""The ROUTE payload: what one hub can reach, told to its direct neighbours only (sans-IO).

Routing is path-vector: every entry carries the whole path, as node ids, from the announcer's next hop
to the destination (the last id). A hub refuses any path that already holds its own id, so a loop cannot
form and there is nothing to count to infinity; a path is at most ``MAX_PATH`` ids long. Each payload is
self-contained (a receiver needs no other page of the same announcement), so a large table is simply cut
into several frames, and the loss of one costs only its own entries until the next full announcement.

    CBOR map, canonical
      1 interval: seconds until the sender's next full announcement (a receiver forgets an entry not
        heard again within ``EXPIRY_INTERVALS`` of them)
      2 entries: list of [cost (uint), path (node ids concatenated, 8 bytes each)]
      3 withdrawn: list of destination node ids the sender can no longer reach
      4 default: true when the sender offers itself as the way to every destination not listed (sent
        over radio links instead of the whole table; see ``hub.relay.route_table``)
      5 roster: the roster version the sender holds (0: none yet), so a neighbour holding a newer one
        hands it over (``hub.relay.roster_handoff``); absent from hubs that do not say
      6 alone: true when the sender knows no neighbour on the link it sends over (its announcement of
        itself to entry points or a radio channel): a neighbour that holds it answers with its table

Unknown map keys are skipped, so fields may be added. The frame around it is signed by its sender and
sent with zero hops to one neighbour: a receiver takes it only from a roster-trusted neighbour, never
forwarded (each hub announces its own table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cbor2

from hub.core.errors import ProtocolError
from hub.core.frame import MAX_PAYLOAD, NODE_ID_SIZE

MAX_PATH = 16
"""Longest path, in hops, a hub takes or announces: far beyond any municipality's network diameter."""
MAX_COST = 1 << 16
"""Costs above this are refused: a path of MAX_PATH satellite hops stays well below it."""
EXPIRY_INTERVALS = 2.5
"""A learned entry not heard again within this many of its sender's intervals is forgotten."""
MAX_INTERVAL = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class RouteEntry:
    cost: int
    path: tuple[bytes, ...]
    """From the announcer's next hop to the destination, which is the last id."""

    @property
    def destination(self) -> bytes:
        return self.path[-1]


@dataclass(frozen=True, slots=True)
class RouteAnnouncement:
    interval: int
    entries: tuple[RouteEntry, ...] = ()
    withdrawn: tuple[bytes, ...] = ()
    default: bool = False
    roster: int | None = None
    """The sender's roster version (0: it holds none); None: not said."""
    alone: bool = False
    """The sender knows no neighbour on this link yet: tell it our table."""


def entry_size(entry: RouteEntry) -> int:
    """Bytes an entry adds to a payload (CBOR: array, cost, byte string)."""
    return 1 + len(cbor2.dumps(entry.cost)) + len(cbor2.dumps(b"".join(entry.path)))


def encode(announcement: RouteAnnouncement) -> bytes:
    body: dict[int, Any] = {1: announcement.interval}
    if announcement.entries:
        body[2] = [[e.cost, b"".join(e.path)] for e in announcement.entries]
    if announcement.withdrawn:
        body[3] = list(announcement.withdrawn)
    if announcement.default:
        body[4] = True
    if announcement.roster is not None:
        body[5] = announcement.roster
    if announcement.alone:
        body[6] = True
    payload = cbor2.dumps(body, canonical=True)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"route announcement of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return payload


def paginate(
    interval: int,
    entries: list[RouteEntry],
    withdrawn: list[bytes],
    *,
    default: bool = False,
    budget: int = MAX_PAYLOAD - 64,
) -> list[RouteAnnouncement]:
    """Cut a table into self-contained announcements of at most ``budget`` bytes each; the first carries
    ``default``. None if there is nothing to say."""
    pages: list[RouteAnnouncement] = []
    batch: list[RouteEntry] = []
    gone: list[bytes] = []
    size = 8
    items: list[RouteEntry | bytes] = [*entries, *withdrawn]
    for item in items:
        grow = entry_size(item) if isinstance(item, RouteEntry) else NODE_ID_SIZE + 1
        if size + grow > budget and (batch or gone):
            pages.append(RouteAnnouncement(interval, tuple(batch), tuple(gone)))
            batch, gone, size = [], [], 8
        if isinstance(item, RouteEntry):
            batch.append(item)
        else:
            gone.append(item)
        size += grow
    if batch or gone or (default and not pages):
        pages.append(RouteAnnouncement(interval, tuple(batch), tuple(gone)))
    if default:
        pages[0] = RouteAnnouncement(interval, pages[0].entries, pages[0].withdrawn, default=True)
    return pages


def decode(payload: bytes) -> RouteAnnouncement:
    """The announcement in ``payload``; ``ProtocolError`` names what is wrong."""
    try:
        body = cbor2.loads(payload)
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as exc:
        raise ProtocolError(f"route announcement is not CBOR: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError("route announcement is not a map")
    interval = body.get(1)
    if not isinstance(interval, int) or not 0 < interval <= MAX_INTERVAL:
        raise ProtocolError(f"route announcement interval {interval!r} is not 1..{MAX_INTERVAL} seconds")
    entries = []
    for index, item in enumerate(_list(body.get(2, []), "entries")):
        if not (isinstance(item, list) and len(item) == 2):
            raise ProtocolError(f"route entry {index} is not [cost, path]")
        cost, raw = item
        if not isinstance(cost, int) or not 0 <= cost <= MAX_COST:
            raise ProtocolError(f"route entry {index}: cost {cost!r} is not 0..{MAX_COST}")
        path = _ids(raw, f"route entry {index}")
        if not 1 <= len(path) <= MAX_PATH:
            raise ProtocolError(f"route entry {index}: a path of {len(path)} hops, not 1..{MAX_PATH}")
        if len(set(path)) != len(path):
            raise ProtocolError(f"route entry {index}: the path holds a node twice")
        entries.append(RouteEntry(cost, path))
    withdrawn = []
    for index, raw in enumerate(_list(body.get(3, []), "withdrawn")):
        ids = _ids(raw, f"withdrawn {index}")
        if len(ids) != 1:
            raise ProtocolError(f"withdrawn {index} is not one node id")
        withdrawn.append(ids[0])
    default = body.get(4, False)
    if not isinstance(default, bool):
        raise ProtocolError(f"route announcement default {default!r} is not true or false")
    roster = body.get(5)
    if roster is not None and not (isinstance(roster, int) and 0 <= roster < 1 << 32):
        raise ProtocolError(f"route announcement roster version {roster!r} is not 0..2^32-1")
    alone = body.get(6, False)
    if not isinstance(alone, bool):
        raise ProtocolError(f"route announcement alone {alone!r} is not true or false")
    return RouteAnnouncement(interval, tuple(entries), tuple(withdrawn), default, roster, alone)


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtocolError(f"route announcement {what} is not a list")
    return value


def _ids(raw: object, what: str) -> tuple[bytes, ...]:
    if not isinstance(raw, bytes) or not raw or len(raw) % NODE_ID_SIZE:
        raise ProtocolError(f"{what}: not a list of {NODE_ID_SIZE}-byte node ids")
    return tuple(raw[i : i + NODE_ID_SIZE] for i in range(0, len(raw), NODE_ID_SIZE))
