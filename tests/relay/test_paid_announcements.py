"""Route announcements over a paid link that asked for them (``announce = "changes"``): never two to one
neighbour within ``announce_hours``, whatever asks for the second. Our ``RouteLearning`` over real
in-memory links (one billed like a satellite), on a manual clock; the neighbour at the far end listens."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from hub.core.frame import Kind, Priority
from hub.core.kinds.routes import RouteAnnouncement, RouteEntry, encode
from hub.core.transport import Cost
from hub.relay.link_reasons import Reason, Why
from hub.relay.route_learning import PAID_INTERVAL, RADIO_GAP, RADIO_INTERVAL, RouteLearning
from hub.relay.route_table import Pace, RouteTable
from tests.relay.engine_kit import ME, PEER, Wiring, wired
from transports.memory import MemoryMedium

HOURS = 6
GAP = HOURS * 3600.0
"""``announce_hours = 6`` on the satellite link."""
FREE = 30.0
"""The free announcement interval: the first paid announcement waits this long after the neighbour."""
COSTS = {"internet": Cost.FREE, "satellite": Cost.PAID}


@contextlib.asynccontextmanager
async def learning(*kinds: str) -> AsyncIterator[tuple[RouteLearning, Wiring, MemoryMedium]]:
    """Our routes over a link of each of ``kinds`` (named after its kind) to the one neighbour, and the
    satellite medium (what it delivered to the far end)."""
    media = {kind: MemoryMedium(cost=COSTS[kind]) for kind in kinds}
    async with wired(media, kinds={kind: kind for kind in kinds}) as wiring:
        routes = RouteLearning(
            ME, wiring.links, lambda _: True, wiring.clock, interval=FREE,
            roster_version=lambda: 1, paid_gaps={"satellite": GAP},
        )  # fmt: skip
        yield routes, wiring, media["satellite"]


async def run_for(routes: RouteLearning, wiring: Wiring, seconds: float, step: float = 1.0) -> None:
    for _ in range(round(seconds / step)):
        wiring.clock.advance(step)
        await routes.tick()


def set_link(wiring: Wiring, link: str, *, up: bool) -> None:
    """The transport reports ``link`` to the neighbour down or up (a hard change, no probation)."""
    now, peer = wiring.clock.monotonic(), PEER.node_id.hex()
    if up:
        wiring.links.health.success(link, peer, now, Reason(Why.LINK_UP), hard=True)
    else:
        wiring.links.health.failure(link, peer, now, Reason(Why.LINK_DOWN), hard=True)


async def first_paid(routes: RouteLearning, wiring: Wiring) -> float:
    """Let the neighbour come up over the satellite and get the first announcement, one free interval
    later; return when it went."""
    await routes.tick()
    await run_for(routes, wiring, FREE - 1)
    assert routes.paid_frames == 0
    await run_for(routes, wiring, 1)
    assert routes.paid_frames == 1
    return wiring.clock.monotonic()


async def held_until_gap(routes: RouteLearning, wiring: Wiring, satellite: MemoryMedium, sent: float) -> None:
    """Nothing more goes over the satellite until ``GAP`` after ``sent``; then the next one does."""
    await run_for(routes, wiring, sent + GAP - 60 - wiring.clock.monotonic(), step=60)
    assert routes.paid_frames == 1
    await run_for(routes, wiring, 61)
    assert routes.paid_frames == 2
    assert satellite.delivered == 2  # the far end got exactly those two


async def test_a_neighbour_back_after_an_outage_waits_for_the_gap() -> None:
    async with learning("satellite") as (routes, wiring, satellite):
        sent = await first_paid(routes, wiring)
        set_link(wiring, "satellite", up=False)
        await run_for(routes, wiring, 60)
        assert routes.table.neighbours() == []
        set_link(wiring, "satellite", up=True)
        await routes.tick()
        assert routes.table.neighbours() == [PEER.node_id]
        await held_until_gap(routes, wiring, satellite, sent)


async def test_switching_between_a_free_link_and_the_satellite_waits_for_the_gap() -> None:
    async with learning("internet", "satellite") as (routes, wiring, satellite):
        set_link(wiring, "internet", up=False)
        sent = await first_paid(routes, wiring)
        set_link(wiring, "internet", up=True)  # told over the free link now, as often as it likes
        free_before = routes.sent_frames
        await run_for(routes, wiring, 3 * FREE)
        assert routes.sent_frames > free_before and routes.paid_frames == 1
        set_link(wiring, "internet", up=False)  # back on the satellite: a new pace there
        await held_until_gap(routes, wiring, satellite, sent)


async def test_a_prompt_for_our_table_waits_for_the_gap() -> None:
    async with learning("satellite") as (routes, wiring, satellite):
        sent = await first_paid(routes, wiring)
        # The neighbour is heard for the first time and holds our roster version: it is told our table
        # again out of pace (it may have refused what we said before it caught up), but not sooner
        # than the satellite link allows.
        page = RouteAnnouncement(int(PAID_INTERVAL), roster=1)
        frame = PEER.sign(
            Kind.ROUTE, ME.node_id, encode(page), created=int(wiring.clock.time()), ttl_minutes=60,
            priority=Priority.URGENT,
        )  # fmt: skip
        assert routes.hear(frame, ME.node_id) is None
        await held_until_gap(routes, wiring, satellite, sent)


def test_a_neighbour_moving_from_a_radio_link_to_a_paid_one_is_told_at_the_paid_pace() -> None:
    # SINE (metered, no broadcast) gives way to the satellite (announce_hours = 24, the default): the
    # radio pace (a change every hour, the table every 12 h) must not carry over to the paid link.
    me, neighbour = b"\x00" * 7 + b"\x01", b"\x00" * 7 + b"\x02"
    day = 24 * 3600.0
    table = RouteTable(me)
    table.neighbour_up(neighbour, 10, Pace(RADIO_INTERVAL, RADIO_GAP, radio=True))
    assert list(table.outgoing(0.0)) == [neighbour]  # over SINE
    paid = Pace(PAID_INTERVAL, day, radio=True, paid=True, next_full=FREE)
    table.neighbour_up(neighbour, 100, paid)
    assert list(table.outgoing(FREE)) == [neighbour]  # the first over the satellite
    for hours in (1, 12, 23):
        table.tell_again(hours * 3600.0, neighbour)
        assert table.outgoing(hours * 3600.0) == {}
    assert list(table.outgoing(FREE + day)) == [neighbour]


def test_a_paid_neighbour_hears_nothing_before_its_first_full_table() -> None:
    # A free neighbour announces itself just after the satellite neighbour came up: that change (and the
    # default it lets us offer) must wait for the first full table, or it would go alone and hold that
    # table back for the whole gap.
    me, far, near = (bytes(7) + bytes([n]) for n in (1, 2, 3))
    table = RouteTable(me)
    table.neighbour_up(far, 100, Pace(PAID_INTERVAL, GAP, radio=True, paid=True, next_full=FREE))
    table.neighbour_up(near, 1, Pace(FREE, 5.0))
    table.hear(near, RouteAnnouncement(int(FREE)), 1.0)
    assert far not in table.outgoing(2.0)
    assert far not in table.outgoing(FREE - 1)
    assert far in table.outgoing(FREE)
    assert far not in table.outgoing(FREE + GAP - 1)


def test_a_paid_neighbour_back_after_more_than_the_gap_hears_the_full_table_first() -> None:
    # Back after an outage longer than the gap, the far end has forgotten every route through us. A change
    # noticed before its first full table (a radio neighbour's new home) must not go alone: it would hold
    # the full table, and so every home that did not change, back for another gap.
    me, far, radio, old_home, new_home = (bytes(7) + bytes([n]) for n in (1, 2, 3, 4, 5))
    table = RouteTable(me)
    table.neighbour_up(far, 100, Pace(PAID_INTERVAL, GAP, radio=True, paid=True, next_full=FREE))
    table.neighbour_up(radio, 10, Pace(RADIO_INTERVAL, RADIO_GAP, radio=True))
    table.hear(radio, RouteAnnouncement(int(RADIO_INTERVAL), (RouteEntry(1, (old_home,)),)), 1.0)
    assert far in table.outgoing(FREE)
    table.neighbour_down(far)
    back = FREE + 2 * GAP
    table.neighbour_up(far, 100, Pace(PAID_INTERVAL, GAP, radio=True, paid=True, next_full=back + FREE,
                                      last_sent=FREE))  # fmt: skip
    homes = (RouteEntry(1, (old_home,)), RouteEntry(1, (new_home,)))
    table.hear(radio, RouteAnnouncement(int(RADIO_INTERVAL), homes), back + 1)
    assert far not in table.outgoing(back + 2)
    told = table.outgoing(back + FREE)[far]
    assert {e.destination for page in told for e in page.entries} >= {old_home, new_home}
