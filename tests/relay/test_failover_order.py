"""Failing over without losing time in queues (in-process, real memory links).

The telecom-collapse drill's stage 6 in small. A frame that fails over keeps its place in line on the
next link: the first sitrep went out on the preferred link and got no hop ack; meanwhile notes that
came after it went straight to the slow next link, which sends one frame at a time. When the sitrep's
hop-ack deadline passes it takes the slow link too, and it must go next, not behind every note that
arrived after it. And frames waiting in the queue of a link that goes down to their hop are planned
again at once, instead of each waiting its turn to fail there.
"""

from __future__ import annotations

from pathlib import Path

from hub.core.frame import Frame
from hub.core.transport import Cost
from hub.relay.delivery import DeliveryState
from hub.relay.link_reasons import Reason, Why
from tests.inproc import eventually
from tests.relay.engine_kit import PEER, engine, message, next_frame
from transports.memory import MemoryMedium

AIR_BYTES_PER_SECOND = 1000.0
"""The slow link's rate: a note holds the air for a fraction of a second, so the queue behind it builds."""


async def test_a_frame_failing_over_goes_ahead_of_later_frames(tmp_path: Path) -> None:
    media = {
        "fast": MemoryMedium(),
        "slow": MemoryMedium(rate=AIR_BYTES_PER_SECOND, cost=Cost.METERED),
    }
    async with engine(tmp_path, media) as e:
        media["fast"].silence(PEER.name)  # the sitrep vanishes on the preferred link, no error
        sitrep = message(b"sitrep", created=1_800_000_000)
        first = await e.submit(sitrep)
        await eventually(lambda: first.state is DeliveryState.SENT and first.link == "fast")

        media["fast"].unplug(PEER.name)  # now the preferred link fails loudly: the notes take the slow one
        notes: list[Frame] = [message(f"note {n}".encode(), created=1_800_000_001 + n) for n in range(4)]
        for note in notes:
            await e.submit(note)
        # One note holds the slow link's air, three wait for it in the router's queue.
        await eventually(lambda: e.router.queue_depth("slow") == 3)

        # Just past the sitrep's hop-ack deadline (the note on the air has a later one): it fails over.
        deadline = e.router.progress(sitrep.id)[0].next_try
        assert deadline is not None
        e.clock.advance(deadline - e.clock.time() + 0.01)
        e.router.dispatch_due()
        assert e.router.queue_depth("slow") == 4

        arrived = [(await next_frame(e.wiring.far["slow"])).id for _ in range(5)]
        assert arrived[1] == sitrep.id, "the sitrep waited behind notes that came after it"
        later = [n.id for n in notes]
        later.remove(arrived[0])
        assert arrived[2:] == later


async def test_frames_queued_for_a_link_that_goes_down_take_the_next_at_once(tmp_path: Path) -> None:
    media = {
        "mesh": MemoryMedium(rate=AIR_BYTES_PER_SECOND, cost=Cost.METERED),
        "sds": MemoryMedium(cost=Cost.METERED),
    }
    async with engine(tmp_path, media) as e:
        frames = [message(f"note {n}".encode(), created=1_800_000_000 + n) for n in range(4)]
        for frame in frames:
            await e.submit(frame)
        await eventually(lambda: e.router.queue_depth("mesh") == 3)  # one on the air, three behind it

        # The radio reports the peer gone (as the link reader passes on a transport's LinkChanged).
        e.wiring.links.health.failure(
            "mesh", PEER.node_id.hex(), e.clock.monotonic(), Reason(Why.LINK_DOWN, "gone"), hard=True
        )
        assert e.router.queue_depth("mesh") == 0
        on_sds = {(await next_frame(e.wiring.far["sds"])).id for _ in range(3)}
        assert on_sds == {f.id for f in frames[1:]}
        for frame in frames[1:]:
            (delivery,) = e.router.deliveries(frame.id)
            assert delivery.tried == set() and delivery.attempts == 1, "it never waited to fail on the mesh"


async def test_an_ack_that_overtakes_its_send_leaves_the_link_on_record(tmp_path: Path) -> None:
    """The recipient's end-to-end ack may arrive before the send that carried the frame has returned (on a
    loaded machine the POST's answer comes after the ack): the record must still say which link it took."""
    media = {"radio": MemoryMedium(rate=AIR_BYTES_PER_SECOND / 10)}
    async with engine(tmp_path, media) as e:
        frame = message(b"rollcall")
        delivery = await e.submit(frame)
        await eventually(lambda: e.wiring.ours["radio"].on_air == 1)  # the send holds the air

        e.router.e2e_acked([frame.id], PEER.node_id)
        assert delivery.state is DeliveryState.HOP_ACKED

        await next_frame(e.wiring.far["radio"])  # the send returns
        await eventually(lambda: delivery.link == "radio")
        await e.store.flush()
        (record,) = await e.store.deliveries(frame.id)
        assert (record.link, record.next_hop) == ("radio", PEER.node_id)
