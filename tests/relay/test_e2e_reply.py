"""The end-to-end ack of a received message is stored in the same transaction as the message, and sent as
soon as both are committed; messages from the same origin within the ack delay are batched as before
(in-process hubs over one memory medium, each with its real store)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from hub.core.frame import Kind, decode_frame
from hub.core.identity import Identity
from hub.core.kinds import encode_payload
from hub.relay.acks import decode_ids
from hub.relay.hub import Hub
from hub.relay.roster import Role
from tests.inproc import FAST, eventually, hub_config, medium_name, peer, running

STAFF = Identity.generate("Aarhus", "staff")
HOME = Identity.generate("Plejehjem Solbakken", "care-home")
STATUS = encode_payload(Kind.STATUS, {"facility": "Normal", "power": "generator", "fuel_hours": 40})


async def stored_acks(hub: Hub) -> list[tuple[bytes, list[bytes], float]]:
    """The end-to-end acks the hub made and stored: id, the ids each names, and when it was accepted."""
    return [
        (m.id, decode_ids(decode_frame(m.wire).payload), m.accepted_at)
        async for m in hub.store.every_message()
        if m.kind == Kind.ACK and m.local
    ]


async def acks_naming(hub: Hub, count: int) -> list[tuple[bytes, list[bytes], float]]:
    """The stored acks, once they name ``count`` ids between them (waited for)."""
    async with asyncio.timeout(30):
        while True:  # polled: the store has no event for a stored ack
            acks = await stored_acks(hub)
            if sum(len(ids) for _, ids, _ in acks) >= count:
                return acks
            await asyncio.sleep(0.05)


async def test_a_status_and_its_ack_share_one_fsync_and_the_ack_goes_at_once(tmp_path: Path) -> None:
    medium = medium_name()
    # an ack delay far longer than the test: an ack that waited for its batch would not arrive in time
    slow_batch = dataclasses.replace(FAST, e2e_ack_delay=600.0)
    staff_config = hub_config(tmp_path / "staff", STAFF.name, medium, peers=(peer(HOME, HOME.name),),
                              timing=slow_batch)  # fmt: skip
    home_config = hub_config(
        tmp_path / "home", HOME.name, medium, role=Role.CARE_HOME, peers=(peer(STAFF, STAFF.name),)
    )
    async with running(staff_config, STAFF) as staff, running(home_config, HOME) as home:
        staff.roster.add(HOME.card)
        home.roster.add(STAFF.card)
        syncs = staff.store.syncs
        sent = await home.submit(Kind.STATUS, STAFF.node_id, STATUS)
        ((ack_id, ids, ack_accepted),) = await acks_naming(staff, 1)
        assert ids == [sent]
        received = await staff.store.message(sent)
        assert received is not None and ack_accepted == received.accepted_at, "stored by the same accept"
        await eventually(lambda: home.store.has(ack_id), timeout=30)  # the home got it, long before 600 s
        await staff.store.flush()
        # the status with its ack: one fsync; the flush is the second (it takes the ack's delivery updates
        # along if they are still waiting for company)
        assert staff.store.syncs - syncs == 2


async def test_a_burst_from_one_origin_costs_two_acks_not_one_per_message(tmp_path: Path) -> None:
    medium = medium_name()
    batched = dataclasses.replace(FAST, e2e_ack_delay=2.0)
    staff_config = hub_config(tmp_path / "staff", STAFF.name, medium, peers=(peer(HOME, HOME.name),),
                              timing=batched)  # fmt: skip
    home_config = hub_config(
        tmp_path / "home", HOME.name, medium, role=Role.CARE_HOME, peers=(peer(STAFF, STAFF.name),)
    )
    async with running(staff_config, STAFF) as staff, running(home_config, HOME) as home:
        staff.roster.add(HOME.card)
        home.roster.add(STAFF.card)
        sent = await asyncio.gather(*(home.submit(Kind.TEXT, STAFF.node_id, b"%d" % n) for n in range(6)))
        acks = await acks_naming(staff, 6)
        assert sorted(i for _, ids, _ in acks for i in ids) == sorted(sent)
        assert len(acks) == 2, "the first alone, at once; the rest in one batch"
        await eventually(lambda: home.router.open_count() == 0, timeout=30)
