"""The links view counts everything waiting for a link from the store, not just its worker queue."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.relay.hub import Hub
from hub.relay.roster import Role
from tests.inproc import eventually, hub_config, medium_name, peer, running

STAFF = Identity.generate("Krisestab", "staff")
HOME = Identity.generate("Solbakken", "care-home")


async def _waiting(hub: Hub) -> int:
    """The largest queue depth any row of the memory link shows (its peer's row, or the link's own)."""
    await hub.store.flush()  # acks are written behind the router's back
    return max(r["queue_depth"] for r in await hub.links_summary() if r["link"] == "memory")


async def _until(hub: Hub, expected: int) -> None:
    for _ in range(1500):
        if await _waiting(hub) == expected:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"queue depth {await _waiting(hub)}, expected {expected}")


async def test_queue_depth_counts_every_waiting_delivery(tmp_path: Path) -> None:
    medium = medium_name()
    staff_config = hub_config(tmp_path / "staff", STAFF.name, medium, peers=(peer(HOME, HOME.name),))
    home_config = hub_config(tmp_path / "home", HOME.name, medium, role=Role.CARE_HOME,
                             peers=(peer(STAFF, STAFF.name),))  # fmt: skip
    async with running(staff_config, STAFF) as staff:
        staff.roster.add(HOME.card)
        staff.roster.save()
        for n in range(5):  # the home is not running: all five wait, though at most one is being tried
            await staff.submit(Kind.TEXT, HOME.node_id, f"besked {n}".encode())
        await eventually(lambda: staff.links.state("memory", HOME.node_id).label == "down")
        assert await _waiting(staff) == 5
        rows = [r for r in await staff.links_summary() if r["peer"] == HOME.node_id.hex()]
        assert rows and rows[0]["queue_depth"] == 5 and rows[0]["sending"] < 5
    async with running(staff_config, STAFF) as staff:
        assert await _waiting(staff) == 5, "read from disk after a restart"
        async with running(home_config, HOME) as home:
            home.roster.add(STAFF.card)
            await eventually(lambda: home.inbound.accepted >= 5, timeout=60)
            await _until(staff, 0)
