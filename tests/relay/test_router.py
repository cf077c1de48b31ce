"""The router over real in-memory links and a real store, with a manual clock: what it plans, what it
does when a delivery falls due, and how hop acks and end-to-end acks settle deliveries."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.core.frame import Priority
from hub.core.tasks import cancel_and_wait
from hub.relay.delivery import Delivery, DeliveryState, HopAckOutcome
from hub.relay.events import EndToEndAcked, HubEvent
from hub.relay.health import HealthBoard, LinkState
from hub.relay.link_reasons import Reason, Why
from hub.relay.links import LinkSet
from hub.relay.planning import plan, tried_key
from hub.relay.policy import Policy
from tests.inproc import eventually
from tests.relay.engine_kit import OTHER, PEER, Engine, engine, message, next_frame, wired
from transports.memory import MemoryMedium


def two_media() -> dict[str, MemoryMedium]:
    return {"a": MemoryMedium(), "b": MemoryMedium()}


def pending(priority: Priority = Priority.NORMAL, preferred: str | None = None) -> Delivery:
    frame = message(priority=priority)
    d = Delivery(frame.id, PEER.node_id, frame.encode(), priority, frame.expires, preferred=preferred)
    d.candidates = [PEER.node_id, OTHER.node_id]
    return d


def pairs(delivery: Delivery, links: LinkSet, blocked: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """The (link, hop) pairs planned now, hops by name."""
    names = {PEER.node_id: "peer", OTHER.node_id: "other"}
    return [
        (a.candidate.link, names[a.hop])
        for a in plan(delivery, Policy(order=("a", "b")), links, lambda link: link in blocked)
    ]


# ---- planning ---------------------------------------------------------------------------------------


async def test_plan_walks_links_then_alternative_hops() -> None:
    async with wired(two_media(), peers=(PEER, OTHER)) as w:
        d = pending()
        assert pairs(d, w.links) == [("a", "peer")]
        d.tried.add(tried_key("a", PEER.node_id))
        assert pairs(d, w.links) == [("b", "peer")]
        d.tried.add(tried_key("b", PEER.node_id))
        assert pairs(d, w.links) == [("a", "other")]
        assert pairs(d, w.links, blocked=frozenset({"a"})) == [("b", "other")]
        d.tried.update({tried_key("a", OTHER.node_id), tried_key("b", OTHER.node_id)})
        assert pairs(d, w.links) == []


async def test_plan_skips_a_hop_whose_links_are_down_and_honours_a_preferred_link() -> None:
    async with wired(two_media(), peers=(PEER, OTHER)) as w:
        for link in ("a", "b"):
            w.links.health.failure(link, PEER.node_id.hex(), 0.0, Reason(Why.LINK_DOWN, "gone"), hard=True)
        assert pairs(pending(), w.links) == [("a", "other")]
        assert pairs(pending(preferred="b"), w.links) == [("b", "other")]


async def test_life_safety_fans_out_on_every_usable_link_of_the_first_reachable_hop() -> None:
    async with wired(two_media(), peers=(PEER, OTHER)) as w:
        assert pairs(pending(Priority.LIFE_SAFETY), w.links) == [("a", "peer"), ("b", "peer")]
        w.links.health.failure("a", PEER.node_id.hex(), 0.0, Reason(Why.LINK_DOWN, "gone"), hard=True)
        assert pairs(pending(Priority.LIFE_SAFETY), w.links) == [("b", "peer")]


# ---- dispatch and settlement ---------------------------------------------------------------------------


async def _sent_over(e: Engine, delivery: Delivery, link: str) -> None:
    frame = await next_frame(e.wiring.far[link])
    assert frame.id == delivery.message_id
    await eventually(lambda: delivery.state is DeliveryState.SENT)
    assert (delivery.link, delivery.carrier) == (link, PEER.node_id)


async def test_a_hop_ack_from_the_hop_settles_the_delivery_and_retires_the_message(tmp_path: Path) -> None:
    async with engine(tmp_path, two_media()) as e:
        d = await e.submit(message())
        assert e.store.live_messages == 1
        await _sent_over(e, d, "a")
        await e.store.flush()
        assert [r.state for r in await e.store.deliveries(d.message_id)] == ["sent"]

        assert e.router.hop_acked([d.message_id], OTHER.node_id) == HopAckOutcome(0, 1)  # never handed it
        assert d.state is DeliveryState.SENT
        assert e.router.hop_acked([d.message_id], PEER.node_id) == HopAckOutcome(1, 0)
        assert d.state is DeliveryState.HOP_ACKED
        assert e.router.open_count() == 0 and e.router.deliveries(d.message_id) == []
        assert e.store.live_messages == 0
        await e.store.flush()
        row = (await e.store.deliveries(d.message_id))[0]
        assert (row.state, row.link, row.next_hop) == ("hop-acked", "a", PEER.node_id)
        stored = await e.store.message(d.message_id)
        assert stored is not None and stored.state == "done"


async def test_no_hop_ack_in_time_fails_over_to_the_next_link(tmp_path: Path) -> None:
    async with engine(tmp_path, two_media()) as e:
        d = await e.submit(message())
        await _sent_over(e, d, "a")
        e.clock.advance(e.router.timing.hop_ack_timeout + 1)
        e.router.dispatch_due()
        assert e.wiring.links.health.state("a", PEER.node_id.hex()) is LinkState.DEGRADED
        await _sent_over(e, d, "b")
        assert d.attempts == 2
        assert e.wiring.links.last_failover[PEER.node_id.hex()].startswith("a -> b")
        e.router.hop_acked([d.message_id], PEER.node_id)
        assert d.state is DeliveryState.HOP_ACKED


async def test_when_every_link_fails_the_round_backs_off_then_starts_over(tmp_path: Path) -> None:
    media = two_media()
    for medium in media.values():
        medium.attach(OTHER.name)  # someone else stays on the media; only the peer leaves
    async with engine(tmp_path, media) as e:
        for medium in media.values():
            medium.unplug(PEER.name)
        d = await e.submit(message())
        await eventually(lambda: d.state is DeliveryState.QUEUED and d.attempts == 2 and not d.tried)
        assert "peer not on the medium" in (d.last_error or "")
        e.router.dispatch_due()  # the back-off has not passed on the manual clock: nothing happens
        assert d.state is DeliveryState.QUEUED

        for medium in media.values():
            medium.plug(PEER.name)
        e.clock.advance(e.router.timing.retry_cap)
        e.router.dispatch_due()
        await _sent_over(e, d, "a")
        assert d.attempts == 3


async def test_a_delivery_with_no_usable_link_waits_until_one_heals(tmp_path: Path) -> None:
    health = HealthBoard()
    for link in ("a", "b"):
        health.failure(link, None, 0.0, Reason(Why.SEND_FAILED, "link down"), hard=True)
    async with engine(tmp_path, two_media(), health=health) as e:
        d = await e.submit(message())
        e.router.dispatch_due()
        assert d.state is DeliveryState.QUEUED and d.attempts == 0  # parked
        health.success("b", None, e.clock.monotonic(), Reason(Why.LINK_UP), hard=True)  # no clock move needed
        await _sent_over(e, d, "b")


async def test_a_delivery_past_its_expiry_is_settled_as_expired(tmp_path: Path) -> None:
    async with engine(tmp_path, two_media()) as e:
        d = await e.submit(message())
        await _sent_over(e, d, "a")
        e.clock.advance(3600)  # the frame lives 60 minutes
        e.router.dispatch_due()
        assert d.state is DeliveryState.EXPIRED
        assert e.store.live_messages == 0
        await e.store.flush()
        stored = await e.store.message(d.message_id)
        assert stored is not None and stored.state == "expired"


async def test_an_end_to_end_ack_settles_every_open_delivery(tmp_path: Path) -> None:
    health = HealthBoard()
    health.failure("a", None, 0.0, Reason(Why.SEND_FAILED, "link down"), hard=True)
    health.failure("b", None, 0.0, Reason(Why.SEND_FAILED, "link down"), hard=True)
    async with engine(tmp_path, two_media(), health=health) as e:
        seen: list[HubEvent] = []

        async def watch() -> None:
            async for event in e.events.subscribe():
                seen.append(event)

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0)
        d = await e.submit(message())  # queued: no link is usable
        e.router.e2e_acked([d.message_id], PEER.node_id)
        assert d.state is DeliveryState.HOP_ACKED
        assert e.store.live_messages == 0
        await eventually(lambda: any(isinstance(ev, EndToEndAcked) for ev in seen))
        await cancel_and_wait(watcher)
        await e.store.flush()
        stored = await e.store.message(d.message_id)
        assert stored is not None and stored.e2e_acked_at == e.clock.time()
