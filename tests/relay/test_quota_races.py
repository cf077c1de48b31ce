"""The store's quota with the router settling messages at the same time: every message is counted out
of the live set once, whether an ack or an eviction gets to it first."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.core.frame import Priority
from hub.relay.delivery import DeliveryState
from hub.relay.store import Store
from tests.inproc import eventually
from tests.relay.engine_kit import PEER, engine, message
from transports.memory import MemoryMedium


async def active_in_database(store: Store) -> int:
    await store.flush()
    async with store._db.execute("SELECT count(*) FROM messages WHERE state='active'") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_hop_acks_that_arrive_while_an_eviction_is_written(tmp_path: Path) -> None:
    async with engine(tmp_path, {"memory": MemoryMedium()}, max_messages=2) as e:
        old = await e.submit(message(b"old", Priority.ROUTINE))
        e.clock.advance(1)  # the oldest routine message is the victim
        newer = await e.submit(message(b"newer", Priority.ROUTINE))
        await eventually(lambda: old.state is newer.state is DeliveryState.SENT)

        arriving = asyncio.create_task(e.submit(message(b"urgent", Priority.URGENT)))
        # One loop turn at a time, to act in the window where the victim is chosen and its eviction is
        # being committed (an event would fire after it).
        while e.store.evicted == 0:  # noqa: ASYNC110
            await asyncio.sleep(0)
        e.router.hop_acked([old.message_id, newer.message_id], PEER.node_id)
        await arriving

        assert e.store.live_messages == await active_in_database(e.store) == 1
        assert old.state is DeliveryState.EVICTED  # dropped with the decision: the late ack finds none
        assert newer.state is DeliveryState.HOP_ACKED
        stored = await e.store.message(old.message_id)
        assert stored is not None and stored.state == "evicted"


async def test_many_concurrent_arrivals_with_acks_keep_the_count_true(tmp_path: Path) -> None:
    async with engine(tmp_path, {"memory": MemoryMedium()}, max_messages=5) as e:
        first = [await e.submit(message(bytes([i]), Priority.ROUTINE)) for i in range(5)]
        await eventually(lambda: all(d.state is DeliveryState.SENT for d in first))
        arrivals = [asyncio.create_task(e.submit(message(b"n" + bytes([i])))) for i in range(8)]
        for d in first:  # acks trickle in while the arrivals evict
            await asyncio.sleep(0)
            e.router.hop_acked([d.message_id], PEER.node_id)
        await asyncio.gather(*arrivals)
        assert e.store.live_messages == await active_in_database(e.store) <= 5
