"""Acks for a broadcast: each recipient settles its own copy, and none of them is mistaken for a forged
ack of its siblings' copies; an end-to-end ack naming a broadcast, signed by one recipient, never settles
the whole fan-out (in-process hubs over one memory medium)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.core.frame import BROADCAST, Kind
from hub.core.identity import Identity
from hub.relay.events import EndToEndAcked
from hub.relay.roster import Role
from tests.inproc import eventually, hub_config, medium_name, peer, running

STAFF = Identity.generate("Aarhus", "staff")
HOMES = [Identity.generate(f"Plejehjem {n}", "care-home") for n in range(3)]


async def test_each_recipient_settles_only_its_own_copy(tmp_path: Path) -> None:
    medium = medium_name()
    staff_config = hub_config(
        tmp_path / "staff", STAFF.name, medium, peers=tuple(peer(h, h.name) for h in HOMES)
    )
    async with running(staff_config, STAFF) as staff:
        for home in HOMES:
            staff.roster.add(home.card)
        configs = [
            hub_config(
                tmp_path / f"home{n}", h.name, medium, role=Role.CARE_HOME, peers=(peer(STAFF, STAFF.name),)
            )
            for n, h in enumerate(HOMES)
        ]
        async with running(configs[0], HOMES[0]) as h0, running(configs[1], HOMES[1]) as h1:
            for home in (h0, h1):
                home.roster.add(STAFF.card)
            message_id = await staff.submit(Kind.TEXT, BROADCAST, b"Vand afbrudt kl. 14")
            await eventually(lambda: staff.router.open_count() == 1)  # the third home is not running
            await staff.store.flush()
            states = {row.hop: row.state for row in await staff.store.deliveries(message_id)}
            assert states[HOMES[0].node_id] == states[HOMES[1].node_id] == "hop-acked"
            assert states[HOMES[2].node_id] != "hop-acked"
            assert staff.admission.refused["hop-ack-not-from-hop"] == 0

            # A trusted recipient's end-to-end ack for the broadcast settles its own copy only: the third
            # home, still down, keeps its open delivery.
            acked = asyncio.Event()

            async def watch() -> None:
                async for event in staff.subscribe():
                    if isinstance(event, EndToEndAcked) and event.id == message_id.hex():
                        acked.set()

            watcher = asyncio.create_task(watch())
            await asyncio.sleep(0)  # the watcher subscribes before the ack can arrive
            try:
                await h0.submit(Kind.ACK, STAFF.node_id, message_id)
                await asyncio.wait_for(acked.wait(), timeout=30)
            finally:
                watcher.cancel()
            await staff.store.flush()
            states = {row.hop: row.state for row in await staff.store.deliveries(message_id)}
            assert states[HOMES[2].node_id] != "hop-acked", "one recipient's ack settled the whole fan-out"
            assert staff.router.open_count() == 1
