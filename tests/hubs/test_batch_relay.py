"""A relay that sends in batches delivers a burst exactly once, even when it is killed mid-burst.

A sender streams signed frames for care home C into relay B (a real ``beredt run`` process) over its
internet link; B forwards them to C (another real process) in batches. B is SIGKILLed while it is busy
with the burst and started again, the sender resends everything, and at the end C holds every frame once
and every delivery B recorded towards C is hop-acked: nothing lost, nothing left open."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest

from drill.topology import free_port
from hub.core.frame import Kind
from hub.core.identity import Identity
from tests.hubproc import HubProcess
from tests.hubs.test_batch_crash import Sender, stored_from
from tests.inproc import eventually

FRAMES = 500
KILL_AFTER = 100  # frames C has stored before B is killed: B is in the middle of the burst


def delivery_states(hub: HubProcess, hop: HubProcess) -> dict[str, int]:
    """Read from a stopped hub's store (a running hub holds it for itself alone)."""
    # closed at once: a connection left to the garbage collector would keep the hub from starting again
    with contextlib.closing(sqlite3.connect(hub.dir / "data" / "store.db")) as db:
        rows = db.execute(
            "SELECT state, count(*) FROM deliveries WHERE hop=? GROUP BY state", (bytes.fromhex(hop.node_id),)
        )
        return dict(rows.fetchall())


def inbox_from(hub: HubProcess, sender: Identity) -> list[bytes]:
    """The ids of what the running ``hub`` holds from ``sender``, through its API."""
    return [bytes.fromhex(m["id"]) for m in hub.inbox() if m["from"] == sender.node_id.hex()]


async def settle_towards(hub: HubProcess, hop: HubProcess, ids: list[bytes], timeout: float) -> None:
    """Until the running ``hub`` has every delivery of ``ids`` towards ``hop`` hop-acked, through its API
    (a message settled is not asked again)."""
    unsettled = set(ids)

    def settled() -> bool:
        for message_id in sorted(unsettled):
            hops = [h["state"] for h in hub.message(message_id.hex())["hops"] if h["hop"] == hop.node_id]
            if hops and set(hops) == {"hop-acked"}:
                unsettled.discard(message_id)
        return not unsettled

    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(settled):
        assert time.monotonic() < deadline, f"{len(unsettled)} deliveries towards {hop.name} still open"
        await asyncio.sleep(0.5)


@pytest.mark.timeout(400)  # two hubs, a kill and a restart, CLI runs: minutes on a loaded 2-core machine
async def test_a_burst_through_a_relay_killed_mid_burst_arrives_exactly_once(tmp_path: Path) -> None:
    source = Identity.generate("Kilde", "staff")
    port = free_port()
    b = HubProcess.create(tmp_path / "b", "Relæ Nord", "relay")
    c = HubProcess.create(tmp_path / "c", "Plejehjemmet Solgaarden", "care-home")
    b.config["peers"] = [
        {"node": source.node_id.hex(), "name": "Kilde", "links": {"internet": f"http://127.0.0.1:{port}"}}
    ]
    b.add_peer(c, {"internet": c.internet_url})
    c.add_peer(b, {"internet": b.internet_url})
    c.set_default_route([b])
    for hub, other in ((b, c), (c, b)):
        hub.trust(other)
        hub.cli("roster", "add", source.card.encode())
    recipient = bytes.fromhex(c.node_id)
    now = int(time.time())
    frames = [
        source.sign(Kind.TEXT, recipient, f"besked {i:05d}".encode(), created=now, ttl_minutes=60)
        for i in range(FRAMES)
    ]
    ids = sorted(frame.id for frame in frames)
    wires = [frame.encode() for frame in frames]
    sender = Sender(source, port, b)
    runner = await sender.serve()
    await asyncio.to_thread(c.start)
    await asyncio.to_thread(b.start)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            stop = asyncio.Event()
            streaming = asyncio.create_task(sender.post_all(session, wires, stop))
            await eventually(lambda: c.get("/healthz")["accepted_inbound"] >= KILL_AFTER, timeout=120)
            await asyncio.to_thread(b.kill)
            stop.set()
            await streaming
            assert len(inbox_from(c, source)) < FRAMES, "B died before it had relayed the whole burst"

            await asyncio.to_thread(b.start)
            await sender.post_all(session, wires, asyncio.Event())
            await eventually(lambda: len(sender.acked) == FRAMES, timeout=120)
            await eventually(lambda: sorted(inbox_from(c, source)) == ids, timeout=120)
            await settle_towards(b, c, ids, timeout=120)
        await asyncio.to_thread(b.stop)
        await asyncio.to_thread(c.stop)
        assert sorted(stored_from(c, source)) == ids, "every frame stored at C exactly once"
        assert delivery_states(b, c) == {"hop-acked": FRAMES}, "every delivery towards C settled"
    finally:
        await asyncio.to_thread(b.kill)
        await asyncio.to_thread(c.kill)
        await runner.cleanup()
