"""What a hub with a commit window never holds back (``Inbound._may_wait``), between in-process hubs:
a message that arrived over a link whose own ack already told its sender it arrived (the sender has let it
go), and end-to-end acks (on a paid link the ack to a direct neighbour is its hop ack, and the sender has
room for only one window). A neighbour that resends what waits is not held back again."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.relay.hub import Hub
from hub.relay.roster import Role
from hub.relay.settings import Timing
from hub.relay.store_writer import COMPANY
from tests.inproc import FAST, eventually, eventually_async, hub_config, medium_name, peer, running
from transports.memory import MemoryMedium

STAFF = Identity.generate("Aarhus krisestab", "staff")
HOME = Identity.generate("Plejecenter Solbakken", "care-home")
LONG = 60.0
"""A window no check below could wait out (they give up after 10 s)."""


@contextlib.asynccontextmanager
async def two_hubs(
    tmp_path: Path, medium: str, staff_timing: Timing, home_timing: Timing
) -> AsyncIterator[tuple[Hub, Hub]]:
    staff_config = hub_config(tmp_path / "staff", STAFF.name, medium, peers=(peer(HOME, HOME.name),),
                              timing=staff_timing, default_route=(HOME.node_id,))  # fmt: skip
    home_config = hub_config(tmp_path / "home", HOME.name, medium, role=Role.CARE_HOME,
                             peers=(peer(STAFF, STAFF.name),), timing=home_timing,
                             default_route=(STAFF.node_id,))  # fmt: skip
    async with running(staff_config, STAFF) as staff, running(home_config, HOME) as home:
        staff.roster.add(HOME.card)
        home.roster.add(STAFF.card)
        yield staff, home


def windowed(seconds: float) -> Timing:
    return dataclasses.replace(FAST, commit_window=seconds)


async def test_a_message_its_link_acked_is_committed_at_once(tmp_path: Path) -> None:
    medium = medium_name()
    MemoryMedium.named(medium, link_ack=True)  # as a LoRa routing ack: the sender is done at the send
    async with two_hubs(tmp_path, medium, windowed(LONG), windowed(LONG)) as (staff, home):
        message_id = await home.submit(Kind.TEXT, STAFF.node_id, b"Alt vel")
        await eventually(lambda: staff.store.has(message_id))
        assert home.router.deliveries(message_id) == [] or all(
            not d.open for d in home.router.deliveries(message_id)
        ), "the link ack settled the sender's delivery"


async def test_end_to_end_acks_are_committed_at_once(tmp_path: Path) -> None:
    medium = medium_name()
    async with two_hubs(tmp_path, medium, windowed(LONG), windowed(LONG)) as (staff, home):
        # COMPANY messages end the staff hub's window at once; its end-to-end acks (fewer frames: the
        # later ones are batched) must not wait in the care home's window
        sent = [await home.submit(Kind.TEXT, STAFF.node_id, f"Runde {n}".encode()) for n in range(COMPANY)]
        await eventually(lambda: all(staff.store.has(m) for m in sent))

        async def acked() -> bool:
            rows = [await home.store.message(m) for m in sent]
            return all(row is not None and row.e2e_acked_at is not None for row in rows)

        await eventually_async(acked)


async def test_a_neighbour_that_resends_is_not_held_back_again(tmp_path: Path) -> None:
    medium = medium_name()
    # the care home keeps no window: it waits only its hop_ack_timeout, and resends
    async with two_hubs(tmp_path, medium, windowed(LONG), FAST) as (staff, home):
        first = await home.submit(Kind.TEXT, STAFF.node_id, b"Alt vel")
        await eventually(lambda: staff.store.has(first))  # the resend ended the window
        assert staff.inbound.impatient == {HOME.node_id}
        resends = staff.admission.refused["replayed"]
        second = await home.submit(Kind.TEXT, STAFF.node_id, b"Stadig alt vel")
        await eventually(lambda: staff.store.has(second))
        await eventually(lambda: all(not d.open for d in home.router.deliveries(second)))
        assert staff.admission.refused["replayed"] == resends, "the second was committed before a resend"
