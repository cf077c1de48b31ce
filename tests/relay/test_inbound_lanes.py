"""A flooded hub works acks before the data queued ahead of them, so a sender's hop-ack deadline does
not pass while its acks wait behind the flood (which would make it resend the flood)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hub.core.frame import Kind, Priority
from hub.core.identity import Identity
from hub.core.ranked import URGENT_RANK
from hub.relay.events import FrameRefused
from hub.relay.lanes import frame_rank
from tests.inproc import hub_config, medium_name, running
from transports.memory import MemoryMedium

STAFF = Identity.generate("Aarhus", "staff")
CARE_HOME = Identity.generate("Solgaarden", "care-home")
STRANGER = Identity.generate("Ukendt", "staff")
FLOOD = 600  # below the hub's inbound bound and its event buffer: the whole flood is queued at once
ACKS = 20


def _signed(sender: Identity, kind: Kind, priority: Priority = Priority.ROUTINE) -> bytes:
    frame = sender.sign(
        kind, STAFF.node_id, b"x", created=int(time.time()), ttl_minutes=60, priority=priority
    )
    return frame.encode()


def test_acks_rank_above_all_data_and_fragments_rank_as_normal_data() -> None:
    assert frame_rank(_signed(STAFF, Kind.HOP_ACK)) == URGENT_RANK
    assert frame_rank(_signed(STAFF, Kind.ACK)) == URGENT_RANK
    assert frame_rank(_signed(STAFF, Kind.ALERT, Priority.LIFE_SAFETY)) == Priority.LIFE_SAFETY
    assert frame_rank(_signed(STAFF, Kind.TEXT, Priority.ROUTINE)) == Priority.ROUTINE
    assert frame_rank(b"\x02" + bytes(10)) == Priority.NORMAL  # a fragment
    assert frame_rank(b"\x01") == Priority.NORMAL  # too short to be a frame: admission refuses it


async def test_a_flooded_hub_works_the_acks_before_the_data_queued_ahead_of_them(tmp_path: Path) -> None:
    medium = medium_name()
    async with running(hub_config(tmp_path, "staff", medium), STAFF) as hub:
        hub.roster.add(CARE_HOME.card)
        # Data: signed by a known sender but with a broken signature, so each costs a full verify and is
        # refused as "bad-signature". Acks: from a stranger, refused as "unknown-sender". The refusals are
        # published in the order the hub works the frames.
        flood = []
        for _ in range(FLOOD):
            wire = bytearray(_signed(CARE_HOME, Kind.TEXT))
            wire[-1] ^= 0x01
            flood.append(bytes(wire))
        acks = [_signed(STRANGER, Kind.HOP_ACK) for _ in range(ACKS)]
        stream = hub.subscribe()
        first = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)  # let the subscription register before anything is sent
        sender = MemoryMedium.named(medium).attach("flooder")
        for data in [*flood, *acks]:  # the acks arrive last, behind the whole flood
            await sender.send("staff", data)
        await sender.aclose()

        reasons: list[str] = []
        event = await asyncio.wait_for(first, 60)
        while reasons.count("unknown-sender") < ACKS:
            if isinstance(event, FrameRefused):
                reasons.append(event.reason)
            if reasons.count("unknown-sender") < ACKS:
                event = await asyncio.wait_for(anext(stream), 60)
    # In arrival order every data frame would have been worked first; acks go first, so most of the
    # flood is still queued when the last ack has been worked.
    data_worked_before_acks = reasons.count("bad-signature")
    assert data_worked_before_acks < FLOOD // 2, data_worked_before_acks
