"""The batched outbound path, driven directly: a router over a real store sends over a real internet link
to a real internet link on loopback (the far side, where nothing acks unless the test does)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drill.topology import free_port
from hub.core.clock import ManualClock
from hub.core.frame import Frame, Kind, Priority, decode_frame
from hub.core.tasks import cancel_and_wait
from hub.core.transport import Received, TransportContext
from hub.relay.delivery import Delivery, DeliveryState, HopAckOutcome
from hub.relay.events import EventBus
from hub.relay.health import HealthBoard
from hub.relay.lanes import frame_rank
from hub.relay.link_reasons import Reason, Why
from hub.relay.links import LinkSet
from hub.relay.outbound import BATCH_BYTES, BATCH_FRAMES
from hub.relay.policy import Policy
from hub.relay.router import Router
from hub.relay.settings import PeerConfig, Timing
from hub.relay.store import Store
from tests.inproc import eventually
from tests.relay.engine_kit import ME, PEER
from transports.internet import InternetTransport, open_transport

TIMING = Timing(hop_ack_timeout=30.0, retry_initial=1.0, retry_cap=4.0)


async def open_link(tmp_path: Path, node: str, port: int = 0, **options: Any) -> InternetTransport:
    ctx = TransportContext(node, tmp_path / node, logging.getLogger("test.outbound"), frame_rank=frame_rank)
    return await open_transport("internet", {"listen": f"127.0.0.1:{port}", **options}, ctx)


@dataclass
class Far:
    """The next hop's side of the link: every frame it received, by id, as often as it came."""

    link: InternetTransport
    received: dict[bytes, int] = field(default_factory=dict)

    async def listen(self) -> None:
        async for event in self.link.events():
            if isinstance(event, Received):
                frame_id = decode_frame(event.data).id
                self.received[frame_id] = self.received.get(frame_id, 0) + 1


@dataclass
class Relay:
    ours: InternetTransport
    links: LinkSet
    router: Router
    store: Store
    clock: ManualClock

    async def burst(self, frames: list[Frame]) -> None:
        """Store ``frames`` first, then track them all without an await between: due at one moment."""
        for frame in frames:
            await self.store.accept(
                frame, frame.encode(), hops=(PEER.node_id,), local=True, for_me=False, via=None,
                now=self.clock.time(),
            )  # fmt: skip
        for frame in frames:
            self.router.track(
                frame.id, frame.encode(), frame.recipient, frame.priority, frame.expires, [PEER.node_id]
            )

    async def states(self, frames: list[Frame]) -> list[str]:
        await self.store.flush()
        return [row.state for frame in frames for row in await self.store.deliveries(frame.id)]


@contextlib.asynccontextmanager
async def relay(tmp_path: Path, far_url: str, *, run: bool = True) -> AsyncIterator[Relay]:
    ours = await open_link(tmp_path, ME.node_id.hex())
    clock = ManualClock()
    health = HealthBoard(down_after=2, up_after=1, hold_down=0.0)
    peers = [PeerConfig(PEER.node_id, PEER.name, {"internet": far_url})]
    links = LinkSet({"internet": ours}, {"internet": "internet"}, peers, health, clock)
    store = await Store.open(tmp_path / "store.db")
    router = Router(
        me=ME.node_id, store=store, links=links, policy=Policy(order=("internet",)), timing=TIMING,
        clock=clock, events=EventBus(), routes={}, default_route=(PEER.node_id,),
    )  # fmt: skip
    task = asyncio.create_task(router.run(), name="router") if run else None
    try:
        yield Relay(ours, links, router, store, clock)
    finally:
        if task is not None:
            await cancel_and_wait(task)
        await store.close()
        await ours.aclose()


@contextlib.asynccontextmanager
async def far_side(tmp_path: Path, port: int = 0, **options: Any) -> AsyncIterator[Far]:
    far = Far(await open_link(tmp_path, PEER.node_id.hex(), port, **options))
    listening = asyncio.create_task(far.listen(), name="far")
    try:
        yield far
    finally:
        await far.link.aclose()
        await cancel_and_wait(listening)


def texts(count: int, priority: Priority = Priority.NORMAL, size: int = 20, tag: str = "") -> list[Frame]:
    return [
        ME.sign(Kind.TEXT, PEER.node_id, f"{tag}{i:05d}".encode().ljust(size, b"."), created=1_800_000_000,
                ttl_minutes=60, priority=priority)
        for i in range(count)
    ]  # fmt: skip


async def test_a_burst_goes_out_in_a_few_posts_with_one_timer_per_batch_and_settles_exactly(
    tmp_path: Path,
) -> None:
    frames = texts(150)
    async with far_side(tmp_path) as far, relay(tmp_path, far.link.public_url) as r:
        await r.burst(frames)
        await eventually(lambda: len(far.received) == len(frames))
        await eventually(lambda: r.router.open_count() == len(frames) and all(
            d.state is DeliveryState.SENT for f in frames for d in r.router.deliveries(f.id)
        ))  # fmt: skip
        assert set(far.received.values()) == {1}, "each frame sent once"
        # three batches of at most 64 (150 frames): at most one POST per batch plus one per 64 frames
        assert r.ours.stats.frames_sent == 150 and r.ours.stats.posts_sent <= 6
        deadlines = {p.next_try for f in frames for p in r.router.progress(f.id)}
        assert len(deadlines) <= 3, "the frames of one batch share one hop-ack timer"

        outcome = r.router.hop_acked([f.id for f in frames], PEER.node_id)  # one hop ack settles them all
        assert outcome == HopAckOutcome(150, 0) and r.router.open_count() == 0
        assert await r.states(frames) == ["hop-acked"] * 150


async def test_a_delivery_settled_within_its_batch_is_freed_at_once_and_the_rest_keep_their_deadline(
    tmp_path: Path,
) -> None:
    frames = texts(10)
    async with far_side(tmp_path) as far, relay(tmp_path, far.link.public_url) as r:
        await r.burst(frames)
        await eventually(lambda: all(
            d.state is DeliveryState.SENT for f in frames for d in r.router.deliveries(f.id)
        ))  # fmt: skip
        (deadline,) = {p.next_try for f in frames for p in r.router.progress(f.id)}
        acked, waiting = frames[:6], frames[6:]
        assert r.router.hop_acked([f.id for f in acked], PEER.node_id) == HopAckOutcome(6, 0)
        gc.collect()
        settled_ids = {f.id for f in acked}
        alive = [o for o in gc.get_objects() if isinstance(o, Delivery) and o.message_id in settled_ids]
        assert alive == [], "a settled delivery is not held until its batch's deadline"
        assert {p.next_try for f in waiting for p in r.router.progress(f.id)} == {deadline}

        r.clock.advance(TIMING.hop_ack_timeout + 1)  # the deadline passes: only the unsettled are due
        r.router.dispatch_due()
        assert all(r.router.deliveries(f.id) == [] for f in acked)
        assert all(
            d.open and d.state is not DeliveryState.SENT for f in waiting for d in r.router.deliveries(f.id)
        )


async def test_a_batch_is_bounded_and_takes_life_safety_first(tmp_path: Path) -> None:
    routine = texts(BATCH_FRAMES + 10, Priority.ROUTINE, tag="r")
    urgent = texts(1, Priority.LIFE_SAFETY, tag="l")
    large = texts(20, Priority.NORMAL, size=4000, tag="x")
    async with relay(tmp_path, "http://127.0.0.1:9", run=False) as r:
        await r.burst(routine + urgent)
        r.router.dispatch_due()
        first = await r.router.outbound.take("internet")
        assert len(first) == BATCH_FRAMES
        assert first[0].delivery.message_id == urgent[0].id, "life-safety leads the batch"
        second = await r.router.outbound.take("internet")
        assert [a.delivery.message_id for a in second] == [f.id for f in routine[BATCH_FRAMES - 1 :]]

        await r.burst(large)
        r.router.dispatch_due()
        by_bytes = await r.router.outbound.take("internet")
        fits = BATCH_BYTES // len(large[0].encode())
        assert 1 < fits < len(large) and len(by_bytes) == fits
        assert len(await r.router.outbound.take("internet")) == len(large) - fits


async def test_a_frame_the_next_hop_refuses_fails_alone_and_the_rest_of_its_batch_goes_once(
    tmp_path: Path,
) -> None:
    small = texts(10)
    big = texts(1, size=600, tag="big")
    async with far_side(tmp_path, mtu=400) as far, relay(tmp_path, far.link.public_url) as r:
        await r.burst(small[:5] + big + small[5:])
        await eventually(lambda: len(far.received) == len(small))
        assert big[0].id not in far.received and set(far.received.values()) == {1}
        (refused,) = r.router.deliveries(big[0].id)
        await eventually(lambda: "413" in (refused.last_error or ""))
        assert refused.open and refused.state is not DeliveryState.SENT  # kept, to be retried
        await eventually(lambda: all(r.router.deliveries(f.id)[0].state is DeliveryState.SENT for f in small))
        r.router.hop_acked([f.id for f in small], PEER.node_id)
        assert await r.states(small) == ["hop-acked"] * 10
        assert await r.states(big) != ["hop-acked"]


async def test_a_failed_batch_loses_nothing_and_goes_again_exactly_once_when_the_hop_returns(
    tmp_path: Path,
) -> None:
    frames = texts(100)
    port = free_port()
    async with relay(tmp_path, f"http://127.0.0.1:{port}") as r:
        await r.burst(frames)
        await eventually(lambda: all(
            (d := r.router.deliveries(f.id)[0]).state is DeliveryState.QUEUED and d.last_error for f in frames
        ))  # fmt: skip
        assert r.router.open_count() == 100 and await r.states(frames) == ["queued"] * 100

        async with far_side(tmp_path, port) as far:
            r.links.health.success(
                "internet", PEER.node_id.hex(), r.clock.monotonic(), Reason(Why.PROBE_ANSWERED), hard=True
            )
            r.clock.advance(TIMING.retry_cap)
            r.router.dispatch_due()
            await eventually(lambda: len(far.received) == len(frames))
            await eventually(
                lambda: all(r.router.deliveries(f.id)[0].state is DeliveryState.SENT for f in frames)
            )
            assert set(far.received.values()) == {1}
            assert r.router.hop_acked([f.id for f in frames], PEER.node_id) == HopAckOutcome(100, 0)
            assert await r.states(frames) == ["hop-acked"] * 100
