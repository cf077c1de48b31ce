"""A hub with no neighbour on a link without broadcast announces itself to the addresses the link knows
(``Capabilities.entry``): a SINE link's entry ISSIs, a satellite modem's provider. Our ``RouteLearning``
over a real in-memory link given those capabilities, on a manual clock; the entry radio listens."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

import pytest

from hub.core.clock import ManualClock
from hub.core.frame import BROADCAST, Kind
from hub.core.kinds.routes import decode
from hub.core.transport import Cost
from hub.relay.health import HealthBoard, Reason, Why
from hub.relay.links import LinkSet
from hub.relay.route_learning import RADIO_GAP, RouteLearning
from tests.relay.engine_kit import ME, PEER, next_frame
from transports.memory import MemoryMedium, MemoryTransport

ENTRY = "2380042"
GAP = 6 * 3600.0
FREE = 30.0


@dataclasses.dataclass
class Setup:
    routes: RouteLearning
    clock: ManualClock
    entry: MemoryTransport
    """The radio at the entry address."""
    medium: MemoryMedium


@contextlib.asynccontextmanager
async def alone(
    cost: Cost, *, paid_gaps: dict[str, float] | None = None, listening: bool = True
) -> AsyncIterator[Setup]:
    """Our hub on a link of ``cost`` with no broadcast and ``ENTRY`` as its entry, no neighbour known."""
    medium = MemoryMedium(cost=cost)
    ours = medium.attach("me", "sine")
    ours.capabilities = dataclasses.replace(ours.capabilities, broadcast=False, entry=(ENTRY,))
    entry = medium.attach(ENTRY if listening else "elsewhere", "sine")
    clock = ManualClock()
    links = LinkSet({"sine": ours}, {"sine": "sine"}, [], HealthBoard(), clock)
    routes = RouteLearning(ME, links, lambda _: True, clock, interval=FREE, paid_gaps=paid_gaps)
    try:
        yield Setup(routes, clock, entry, medium)
    finally:
        await ours.aclose()
        await entry.aclose()


async def run_for(setup: Setup, seconds: float, step: float = 60.0) -> None:
    for _ in range(round(seconds / step)):
        setup.clock.advance(step)
        await setup.routes.tick()


async def test_a_sine_hub_alone_announces_itself_to_its_entry_radio_hourly() -> None:
    async with alone(Cost.METERED) as setup:
        await setup.routes.tick()
        frame = await next_frame(setup.entry)
        assert frame.kind is Kind.ROUTE and frame.recipient == BROADCAST and frame.sender == ME.node_id
        assert decode(frame.payload).alone
        await run_for(setup, RADIO_GAP - 60)
        assert setup.medium.delivered == 1
        await run_for(setup, 60)
        assert setup.medium.delivered == 2


async def test_a_hub_with_a_neighbour_there_tells_it_its_routes_but_never_that_it_is_alone() -> None:
    async with alone(Cost.METERED) as setup:
        setup.routes.links.learn(PEER.node_id, "sine", ENTRY, PEER.name, stamped=1_800_000_000)
        await run_for(setup, 2 * RADIO_GAP)
        told = [await next_frame(setup.entry) for _ in range(setup.medium.delivered)]
        assert told and all(f.recipient == PEER.node_id and not decode(f.payload).alone for f in told)


async def test_a_paid_link_announces_only_when_it_asked_and_at_its_gap() -> None:
    async with alone(Cost.PAID) as setup:
        await run_for(setup, 2 * RADIO_GAP)
        assert setup.medium.delivered == 0 and setup.routes.paid_frames == 0
    async with alone(Cost.PAID, paid_gaps={"sine": GAP}) as setup:
        await setup.routes.tick()
        assert setup.medium.delivered == 1 and setup.routes.paid_frames == 1
        await run_for(setup, GAP - 60)
        assert setup.medium.delivered == 1
        await run_for(setup, 60)
        assert setup.medium.delivered == 2 and setup.routes.paid_frames == 2


async def test_an_announcement_the_link_did_not_take_is_tried_again_soon() -> None:
    async with alone(Cost.PAID, paid_gaps={"sine": GAP}, listening=False) as setup:
        await setup.routes.tick()  # no radio at the entry address: the link refuses it
        assert setup.routes.paid_frames == 0
        late = setup.medium.attach(ENTRY, "sine")
        await run_for(setup, FREE - 1, step=1.0)
        assert setup.medium.delivered == 0
        await run_for(setup, 1, step=1.0)
        assert setup.medium.delivered == 1 and setup.routes.paid_frames == 1
        await late.aclose()


async def test_a_paid_link_that_loses_its_neighbour_announces_itself_no_sooner_than_its_gap() -> None:
    # a neighbour there going down and up again must not draw a self-announcement each time it goes down
    async with alone(Cost.PAID, paid_gaps={"sine": GAP}) as setup:
        await setup.routes.tick()
        assert decode((await next_frame(setup.entry)).payload).alone
        links = setup.routes.links
        links.learn(PEER.node_id, "sine", ENTRY, PEER.name, stamped=1_800_000_000)
        await run_for(setup, 3600)
        assert setup.routes.link_to(PEER.node_id) == "sine"
        told = [decode((await next_frame(setup.entry)).payload) for _ in range(setup.medium.delivered - 1)]
        assert told and not any(page.alone for page in told)
        before = setup.medium.delivered
        now = setup.clock.monotonic()
        links.health.failure("sine", PEER.node_id.hex(), now, Reason(Why.LINK_DOWN), hard=True)
        await run_for(setup, GAP - 3600 - 60)
        assert setup.routes.link_to(PEER.node_id) is None
        assert setup.medium.delivered == before
        await run_for(setup, 60)
        assert setup.medium.delivered == before + 1
        assert decode((await next_frame(setup.entry)).payload).alone


async def test_announcements_no_radio_takes_back_off_to_the_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # An entry radio that is switched off fails each SDS only after it went out: tried again soon at
    # first, then ever more seldom, not every 30 s (each try is one more SDS on the control channel).
    caplog.set_level(logging.DEBUG, logger="beredt.routes")
    async with alone(Cost.METERED, listening=False) as setup:
        await run_for(setup, 2 * RADIO_GAP, step=1.0)
        tries = sum("not sent" in record.getMessage() for record in caplog.records)
        # 30, 60, 120, ..., 1920 s, then hourly: 8 or 9 in two hours, where every 30 s made 240
        assert 6 <= tries <= 10, tries
