"""``Store.accept_many``: a batch of messages is one transaction, each message is counted against the
quota on its own, and a failed commit takes back everything it counted."""

from __future__ import annotations

import time
from pathlib import Path

from hub.core.errors import StoreError, StoreFull
from hub.core.frame import Kind, Priority, decode_frame
from hub.core.identity import Identity
from hub.relay.store import Store
from hub.relay.store_records import Incoming
from tests.relay.engine_kit import as_if_disk_full

ME = Identity.generate("Aarhus", "staff")
HOP = bytes.fromhex("00112233445566aa")


def incoming(
    payload: bytes, priority: Priority = Priority.NORMAL, *, hops: tuple[bytes, ...] = (HOP,)
) -> Incoming:
    frame = ME.sign(Kind.TEXT, HOP, payload, created=int(time.time()), ttl_minutes=60, priority=priority)
    wire = frame.encode()
    return Incoming(decode_frame(wire), wire, hops, local=False, for_me=not hops, via="internet")


async def test_a_batch_is_committed_in_one_transaction(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    batch = [incoming(i.to_bytes(2, "big")) for i in range(50)] + [incoming(b"for us", hops=())]
    before = store.commits
    assert await store.accept_many(batch) == [None] * len(batch)
    assert store.commits == before + 1, "one commit (one fsync) for the whole batch"
    assert all(store.has(item.frame.id) for item in batch)
    assert (store.live_messages, store.live_bytes) == (50, sum(len(i.wire) for i in batch[:50]))
    ours = await store.message(batch[-1].frame.id)
    assert ours is not None and ours.state == "delivered"
    await store.close()
    reopened = await Store.open(tmp_path / "s.db")
    assert reopened.live_messages == 50 and all(reopened.has(item.frame.id) for item in batch)
    await reopened.close()


async def test_a_message_without_room_is_left_out_and_the_rest_committed(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db", max_messages=2)
    life = incoming(b"life", Priority.LIFE_SAFETY)
    assert await store.accept_many([life, incoming(b"first", Priority.URGENT)]) == [None, None]
    routine, urgent = incoming(b"routine", Priority.ROUTINE), incoming(b"urgent", Priority.URGENT)
    for_us = incoming(b"for us", Priority.ROUTINE, hops=())  # takes no quota
    outcome = await store.accept_many([routine, urgent, for_us])
    # the routine message would have to evict higher priorities: refused; the urgent one evicts the older
    # urgent one (never life-safety); the one for us needs no room
    assert isinstance(outcome[0], StoreFull) and outcome[1:] == [None, None]
    assert not store.has(routine.frame.id)
    assert store.has(urgent.frame.id) and store.has(for_us.frame.id)
    assert store.live_messages == 2
    state = await store.message(life.frame.id)
    assert state is not None and state.state == "active"
    await store.close()


async def test_a_failed_commit_counts_nothing_and_stores_nothing(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    await store.accept_many([incoming(b"kept")])
    live = (store.live_messages, store.live_bytes)
    await as_if_disk_full(store)
    batch = [incoming(i.to_bytes(2, "big") * 400) for i in range(40)]
    outcome = await store.accept_many(batch)
    assert all(isinstance(error, StoreError) for error in outcome)
    assert (store.live_messages, store.live_bytes) == live
    assert not any(store.has(item.frame.id) for item in batch)
    await store.close()
