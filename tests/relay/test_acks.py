"""Hop acks over real in-memory links: batched per (link, source), routine ones longer than urgent ones,
split at the id limit, and one link's slow send never holds back another link's acks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hub.core.errors import RoutingError
from hub.core.frame import Kind, Priority, Status
from hub.core.tasks import cancel_and_wait
from hub.relay import acks
from hub.relay.acks import MAX_IDS_PER_ACK, AckBatcher, decode_ids
from tests.inproc import eventually
from tests.relay.engine_kit import ME, PEER, Wiring, next_frame, wired
from transports.memory import MemoryMedium

IDS = [bytes([n]) * 16 for n in range(200)]


async def _no_e2e(
    kind: Kind, recipient: bytes, payload: bytes, priority: Priority, ttl: int, status: Status
) -> bytes:
    raise AssertionError("no end-to-end ack expected here")


@pytest.fixture
async def fast_and_slow() -> AsyncIterator[tuple[Wiring, AckBatcher]]:
    """A fast link and one at 2 bytes/s (a hop ack of ~130 bytes holds it for about a minute)."""
    media = {"fast": MemoryMedium(), "slow": MemoryMedium(rate=2.0)}
    async with wired(media) as wiring:
        batcher = AckBatcher(ME, wiring.links, wiring.clock, _no_e2e, e2e_delay=0.01)
        task = asyncio.create_task(batcher.run(), name="acks")
        try:
            yield wiring, batcher
        finally:
            await cancel_and_wait(task)


async def run_until(batcher: AckBatcher, done: asyncio.Event) -> None:
    """The batcher's loop until ``done`` (10 s at most), then cancelled."""
    task = asyncio.create_task(batcher.run())
    try:
        async with asyncio.timeout(10):
            await done.wait()
    finally:
        await cancel_and_wait(task)


async def test_hop_acks_are_signed_batched_and_addressed_to_the_previous_hop(
    fast_and_slow: tuple[Wiring, AckBatcher],
) -> None:
    wiring, batcher = fast_and_slow
    for message_id in IDS[:3]:
        batcher.hop_ack("fast", PEER.name, PEER.node_id, message_id, Priority.URGENT)
    ack = await next_frame(wiring.far["fast"])
    assert (ack.kind, ack.sender, ack.recipient) == (Kind.HOP_ACK, ME.node_id, PEER.node_id)
    assert decode_ids(ack.payload) == IDS[:3]
    assert ack.priority is Priority.URGENT
    assert batcher.hop_acks_sent == 1


async def test_routine_ids_wait_for_company_and_an_urgent_one_takes_them_along(
    fast_and_slow: tuple[Wiring, AckBatcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    wiring, batcher = fast_and_slow
    monkeypatch.setattr(acks, "ROUTINE_HOP_ACK_DELAY", 60.0)  # whatever goes sooner did not wait for it
    batcher.hop_ack("fast", PEER.name, PEER.node_id, IDS[0], Priority.ROUTINE)
    batcher.hop_ack("fast", PEER.name, PEER.node_id, IDS[1], Priority.NORMAL)
    await asyncio.sleep(0.05)  # the routine ids wait (were the urgent one sooner, the result is the same)
    assert batcher.hop_acks_sent == 0
    batcher.hop_ack("fast", PEER.name, PEER.node_id, IDS[2], Priority.LIFE_SAFETY)
    ack = await next_frame(wiring.far["fast"])
    assert decode_ids(ack.payload) == IDS[:3] and ack.priority is Priority.LIFE_SAFETY


async def test_many_ids_are_split_at_the_limit(fast_and_slow: tuple[Wiring, AckBatcher]) -> None:
    wiring, batcher = fast_and_slow
    count = 2 * MAX_IDS_PER_ACK + 4
    for message_id in IDS[:count]:
        batcher.hop_ack("fast", PEER.name, PEER.node_id, message_id, Priority.NORMAL)
    acked = [i for _ in range(3) for i in decode_ids((await next_frame(wiring.far["fast"])).payload)]
    assert acked == IDS[:count]


async def test_a_slow_links_hop_ack_does_not_hold_back_the_fast_links(
    fast_and_slow: tuple[Wiring, AckBatcher],
) -> None:
    wiring, batcher = fast_and_slow
    slow = wiring.ours["slow"]
    batcher.hop_ack("slow", PEER.name, PEER.node_id, IDS[0], Priority.NORMAL)
    await eventually(lambda: slow.on_air == 1)
    batcher.hop_ack("fast", PEER.name, PEER.node_id, IDS[1], Priority.NORMAL)
    ack = await next_frame(wiring.far["fast"], timeout=15)
    assert decode_ids(ack.payload) == [IDS[1]]
    assert slow.on_air == 1, "the slow link's ack is still on the air"


async def test_end_to_end_acks_are_batched_per_originator_with_the_highest_priority() -> None:
    submitted: list[tuple[Kind, bytes, list[bytes], Priority, int, Status]] = []
    done = asyncio.Event()

    async def submit(
        kind: Kind, recipient: bytes, payload: bytes, priority: Priority, ttl: int, status: Status
    ) -> bytes:
        submitted.append((kind, recipient, decode_ids(payload), priority, ttl, status))
        if len(submitted) == 2:
            done.set()
        return b"\x00" * 16

    async with wired({"fast": MemoryMedium()}) as wiring:
        batcher = AckBatcher(ME, wiring.links, wiring.clock, submit, e2e_delay=0.01)
        batcher.e2e_ack(PEER.node_id, IDS[0], Priority.ROUTINE, remaining_minutes=30)
        batcher.e2e_ack(PEER.node_id, IDS[1], Priority.URGENT, remaining_minutes=90)
        # an exercise's message gets an exercise's ack, apart, so it queues behind the real ones
        batcher.e2e_ack(PEER.node_id, IDS[2], Priority.URGENT, remaining_minutes=60, status=Status.EXERCISE)
        await run_until(batcher, done)
    assert submitted == [
        (Kind.ACK, PEER.node_id, IDS[:2], Priority.URGENT, 90, Status.ACTUAL),
        (Kind.ACK, PEER.node_id, IDS[2:3], Priority.URGENT, 60, Status.EXERCISE),
    ]
    assert batcher.e2e_acks_sent == 2


async def test_an_end_to_end_ack_with_no_route_back_yet_waits_for_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A LoRa care home can take a message before it hears its relay's announcement: the ack goes once it
    has a way back, not never."""
    monkeypatch.setattr(acks, "NO_ROUTE_RETRY", 0.05)
    tries: list[list[bytes]] = []
    done = asyncio.Event()

    async def submit(
        kind: Kind, recipient: bytes, payload: bytes, priority: Priority, ttl: int, status: Status
    ) -> bytes:
        tries.append(decode_ids(payload))
        if len(tries) < 3:
            raise RoutingError(f"ingen rute til {recipient.hex()}")
        done.set()
        return b"\x00" * 16

    async with wired({"fast": MemoryMedium()}) as wiring:
        batcher = AckBatcher(ME, wiring.links, wiring.clock, submit, e2e_delay=0.01)
        batcher.e2e_ack(PEER.node_id, IDS[0], Priority.NORMAL, remaining_minutes=30)
        await run_until(batcher, done)
    assert tries == [IDS[:1]] * 3
    assert batcher.e2e_acks_sent == 1


async def test_an_end_to_end_ack_with_no_route_is_given_up_when_it_would_have_expired(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(acks, "NO_ROUTE_RETRY", 0.05)
    tries: list[float] = []

    async with wired({"fast": MemoryMedium()}) as wiring:

        async def submit(
            kind: Kind, recipient: bytes, payload: bytes, priority: Priority, ttl: int, status: Status
        ) -> bytes:
            tries.append(wiring.clock.monotonic())
            raise RoutingError(f"ingen rute til {recipient.hex()}")

        batcher = AckBatcher(ME, wiring.links, wiring.clock, submit, e2e_delay=0.01)
        batcher.e2e_ack(PEER.node_id, IDS[0], Priority.NORMAL, remaining_minutes=10)
        task = asyncio.create_task(batcher.run())
        try:
            await eventually(lambda: len(tries) >= 2, timeout=10)  # kept, and tried again
            wiring.clock.advance(600)  # the ack's ten minutes are up
            await eventually(lambda: "given up" in caplog.text, timeout=10)
            given_up = len(tries)
            await asyncio.sleep(0.3)  # six retry periods: nothing more is tried
        finally:
            await cancel_and_wait(task)
    assert len(tries) == given_up and batcher.e2e_acks_sent == 0
