"""Resuming a store's queue after a restart, a page at a time: highest priority first, at most a window of
resumed messages per next hop in memory, the next page read as those settle, and an end-to-end ack that
came while a message waited on disk honoured when it is read (settled, not sent again)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.core.frame import Frame, Priority
from hub.core.tasks import cancel_and_wait
from hub.relay.store import Store
from tests.inproc import eventually
from tests.relay.engine_kit import OTHER, PEER, engine, message
from transports.memory import MemoryMedium


async def fill(path: Path, frames: list[Frame], hops: tuple[bytes, ...] = (PEER.node_id,)) -> None:
    store = await Store.open(path, max_messages=1000)
    for n, frame in enumerate(frames):
        await store.accept(frame, frame.encode(), hops=hops, local=True, for_me=False, via=None, now=n)
    await store.close()


def in_memory(router_ids: set[bytes], frames: list[Frame]) -> list[int]:
    return [n for n, frame in enumerate(frames) if frame.id in router_ids]


async def test_resume_holds_a_window_per_hop_highest_priority_first_and_reads_on_as_they_settle(
    tmp_path: Path,
) -> None:
    frames = [message(f"routine {n}".encode()) for n in range(5)]
    frames += [message(f"life {n}".encode(), priority=Priority.LIFE_SAFETY) for n in range(2)]
    await fill(tmp_path / "store.db", frames)
    async with engine(tmp_path, {"a": MemoryMedium()}) as e:
        e.router.resumption.window, e.router.resumption.page = 3, 2
        loaded = asyncio.Event()
        resume = asyncio.create_task(e.router.resume(loaded))
        try:
            await asyncio.wait_for(loaded.wait(), 10)

            def tracked() -> list[int]:
                return in_memory({f.id for f in frames if e.router.deliveries(f.id)}, frames)

            assert tracked() == [0, 5, 6]  # both life-safety messages, then the oldest routine one
            assert e.router.open_count() == 3
            e.router.e2e_acked([frames[5].id, frames[6].id], PEER.node_id)
            await eventually(lambda: tracked() == [0, 1, 2])
            e.router.e2e_acked([frames[0].id, frames[1].id, frames[2].id], PEER.node_id)
            await eventually(lambda: tracked() == [3, 4])
            e.router.e2e_acked([frames[3].id, frames[4].id], PEER.node_id)
            await asyncio.wait_for(resume, 10)
            assert e.router.open_count() == 0
        finally:
            await cancel_and_wait(resume)


async def test_an_end_to_end_ack_for_a_message_still_on_disk_settles_it_when_read(tmp_path: Path) -> None:
    frames = [message(f"routine {n}".encode()) for n in range(2)]
    await fill(tmp_path / "store.db", frames)
    async with engine(tmp_path, {"a": MemoryMedium()}) as e:
        e.router.resumption.window = 1
        loaded = asyncio.Event()
        resume = asyncio.create_task(e.router.resume(loaded))
        try:
            await asyncio.wait_for(loaded.wait(), 10)
            assert e.router.deliveries(frames[1].id) == []  # still on disk
            e.router.e2e_acked([frames[1].id], PEER.node_id)
            await e.store.flush()
            e.router.e2e_acked([frames[0].id], PEER.node_id)
            await asyncio.wait_for(resume, 10)
            await e.store.flush()
            rows = await e.store.deliveries(frames[1].id)
            assert [(r.state, r.attempts) for r in rows] == [("hop-acked", 0)]  # settled without a send
            stored = await e.store.message(frames[1].id)
            assert stored is not None and stored.state == "done"
            assert e.store.live_messages == 0
        finally:
            await cancel_and_wait(resume)


async def test_a_message_for_two_hops_is_resumed_whole_by_one_of_them(tmp_path: Path) -> None:
    frame = message(b"to both")
    await fill(tmp_path / "store.db", [frame], hops=(PEER.node_id, OTHER.node_id))
    async with engine(tmp_path, {"a": MemoryMedium()}, peers=(PEER, OTHER)) as e:
        loaded = asyncio.Event()
        await asyncio.wait_for(e.router.resume(loaded), 10)
        assert loaded.is_set()
        assert sorted(d.hop for d in e.router.deliveries(frame.id)) == sorted([PEER.node_id, OTHER.node_id])
