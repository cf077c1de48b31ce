"""LinkSet over real in-memory links: frames cut to each link's MTU, and probes that move health (with
the hold-down measured on a manual clock)."""

from __future__ import annotations

import asyncio

import pytest

from hub.core.errors import LinkDown
from hub.core.fragment import Reassembler, decode_fragment, is_fragment
from hub.core.tasks import cancel_and_wait
from hub.core.transport import Received
from hub.relay.health import HealthBoard, LinkState
from hub.relay.link_reasons import Reason, Why
from tests.inproc import eventually
from tests.relay.engine_kit import PEER, message, wired
from transports.memory import MemoryMedium


async def test_a_frame_larger_than_the_mtu_travels_in_fragments_and_reassembles() -> None:
    async with wired({"radio": MemoryMedium(mtu=64)}) as w:
        wire = message(b"x" * 300).encode()
        await w.links.send("radio", PEER.name, wire, priority=1)
        assert w.links.sent_bytes["radio"] == len(wire)
        reassembler, whole = Reassembler(), None
        async with asyncio.timeout(10):
            async for event in w.far["radio"].events():
                assert isinstance(event, Received) and len(event.data) <= 64
                assert is_fragment(event.data)
                whole = reassembler.add("me", decode_fragment(event.data), 0.0)
                if whole is not None:
                    break
        assert whole == wire


async def test_a_send_to_an_unreachable_peer_raises_link_down() -> None:
    medium = MemoryMedium()
    async with wired({"net": medium}) as w:
        medium.unplug(PEER.name)
        with pytest.raises(LinkDown):
            await w.links.send("net", PEER.name, b"\x01frame", priority=1)
        assert w.links.sent_bytes["net"] == 0


async def test_probes_take_a_dead_peer_down_and_bring_it_back_after_the_hold_down() -> None:
    medium = MemoryMedium()
    health = HealthBoard(down_after=2, up_after=2, hold_down=5.0)
    async with wired({"net": medium}, health=health) as w:
        peer = PEER.node_id.hex()
        probing = asyncio.create_task(w.links.probe_forever(0.01))
        try:
            medium.unplug(PEER.name)
            await eventually(lambda: health.state("net", peer) is LinkState.DOWN)
            medium.plug(PEER.name)
            await eventually(lambda: health.entry("net", peer).successes >= 3)  # answers in a row...
            assert health.state("net", peer) is LinkState.DOWN  # ...but within the hold-down
            w.clock.advance(5.0)
            await eventually(lambda: health.state("net", peer) is LinkState.UP)
        finally:
            await cancel_and_wait(probing)


async def test_a_silent_peer_is_probed_down_by_the_deadline_and_says_so() -> None:
    """A peer that answers nothing fails each probe at the prober's deadline (1 s at the least), not
    never: two such silences in a row and it is down, with a reason a person can read."""
    medium = MemoryMedium()
    health = HealthBoard(down_after=2, up_after=2, hold_down=5.0)
    async with wired({"net": medium}, health=health) as w:
        peer = PEER.node_id.hex()
        probing = asyncio.create_task(w.links.probe_forever(0.01))
        try:
            await eventually(lambda: health.entry("net", peer).successes >= 1)
            medium.silence(PEER.name)
            w.clock.advance(1.0)  # quiet for longer than the interval: probed again
            await eventually(lambda: health.state("net", peer) is LinkState.DOWN, timeout=30)
            assert health.entry("net", peer).reason == Reason(Why.PROBE_SILENT, params={"seconds": "1"})
            medium.unsilence(PEER.name)
            await eventually(lambda: health.entry("net", peer).successes >= 1, timeout=30)
        finally:
            await cancel_and_wait(probing)


async def test_a_peer_heard_from_within_the_interval_is_not_probed() -> None:
    health = HealthBoard()
    async with wired({"net": MemoryMedium()}, health=health) as w:
        peer = PEER.node_id.hex()
        health.success(
            "net", peer, w.clock.monotonic(), Reason(Why.HOP_ACK)
        )  # traffic just showed it working
        probing = asyncio.create_task(w.links.probe_forever(0.05))
        try:
            await eventually(lambda: w.links.probes_skipped >= 3)
            assert health.entry("net", peer).successes == 1, "no probe went out"
            w.clock.advance(1.0)  # quiet for longer than the interval: probed again
            await eventually(lambda: health.entry("net", peer).successes >= 2)
        finally:
            await cancel_and_wait(probing)
