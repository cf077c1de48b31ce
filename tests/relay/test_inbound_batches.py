"""The inbound path works frames a batch at a time: each frame is still checked on its own (a bad one
refuses only itself), the batch's new messages are committed together, and only committed messages are
hop-acked or announced. Driven through a running hub's own engine over a real in-memory link."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hub.core.frame import Frame, Kind, decode_frame
from hub.core.identity import Identity
from hub.core.transport import Received
from hub.relay.acks import decode_ids
from hub.relay.events import FrameRefused, MessageReceived
from hub.relay.hub import Hub
from tests.inproc import eventually, hub_config, medium_name, running
from transports.memory import MemoryMedium, MemoryTransport

STAFF = Identity.generate("Aarhus", "staff")
CARE_HOME = Identity.generate("Solgaarden", "care-home")
STRANGER = Identity.generate("Ukendt", "staff")


def text(sender: Identity, body: str) -> Frame:
    return sender.sign(Kind.TEXT, STAFF.node_id, body.encode(), created=int(time.time()), ttl_minutes=60)


def received(data: bytes) -> Received:
    return Received(source="care-home", data=data)


def forged(frame: Frame) -> bytes:
    wire = bytearray(frame.encode())
    wire[-1] ^= 0x01
    return bytes(wire)


async def hop_acked(link: MemoryTransport, into: set[bytes]) -> None:
    async for event in link.events():
        if isinstance(event, Received):
            frame = decode_frame(event.data)
            if frame.kind is Kind.HOP_ACK:
                into.update(decode_ids(frame.payload))


async def watch(hub: Hub, received_ids: list[str], refused: list[str]) -> None:
    async for event in hub.subscribe():
        if isinstance(event, MessageReceived):
            received_ids.append(event.id)
        elif isinstance(event, FrameRefused):
            refused.append(event.reason)


async def test_a_bad_frame_in_a_batch_refuses_only_itself(tmp_path: Path) -> None:
    medium = medium_name()
    async with running(hub_config(tmp_path, "staff", medium), STAFF) as hub:
        hub.roster.add(CARE_HOME.card)
        care_home = MemoryMedium.named(medium).attach("care-home")
        acked: set[bytes] = set()
        shown: list[str] = []
        refused: list[str] = []
        tasks = [
            asyncio.create_task(hop_acked(care_home, acked)),
            asyncio.create_task(watch(hub, shown, refused)),
        ]
        await asyncio.sleep(0)  # the watcher subscribes before anything is worked
        good = [text(CARE_HOME, f"besked {i}") for i in range(5)]
        bad_signature = text(CARE_HOME, "forfalsket")
        batch = [
            good[0].encode(),
            forged(bad_signature),
            good[1].encode(),
            b"\x01\x00 not a frame",
            good[2].encode(),
            text(STRANGER, "ukendt afsender").encode(),
            good[3].encode(),
            good[0].encode(),  # the same frame twice in one batch: stored once
            good[4].encode(),
        ]
        commits = hub.store.commits
        await hub.inbound.handle_batch("memory", [received(data) for data in batch])
        assert all(hub.store.has(frame.id) for frame in good)
        assert not hub.store.has(bad_signature.id)
        assert hub.admission.refused["bad-signature"] == 1
        assert hub.admission.refused["malformed"] == 1
        assert hub.admission.refused["unknown-sender"] == 1
        assert hub.admission.refused["replayed"] == 1
        assert hub.inbound.accepted == len(good)
        assert hub.store.commits > commits
        await eventually(lambda: acked >= {frame.id for frame in good} and len(shown) == len(good))
        assert acked == {frame.id for frame in good}, "nothing refused is hop-acked"
        assert sorted(shown) == sorted(frame.id.hex() for frame in good)
        await eventually(lambda: len(refused) == 3)
        assert sorted(refused) == ["bad-signature", "malformed", "unknown-sender"]
        for task in tasks:
            task.cancel()
        await care_home.aclose()


async def test_concurrent_batches_store_each_frame_once(tmp_path: Path) -> None:
    medium = medium_name()
    async with running(hub_config(tmp_path, "staff", medium), STAFF) as hub:
        hub.roster.add(CARE_HOME.card)
        care_home = MemoryMedium.named(medium).attach("care-home")
        acked: set[bytes] = set()
        task = asyncio.create_task(hop_acked(care_home, acked))
        frames = [text(CARE_HOME, f"besked {i}") for i in range(120)]
        # Three batches at once that overlap: the same frame may arrive over several links together.
        batches = [frames[0:60], frames[40:100], frames[80:120] + frames[0:10]]
        await asyncio.gather(
            *(hub.inbound.handle_batch("memory", [received(f.encode()) for f in batch]) for batch in batches)
        )
        assert all(hub.store.has(frame.id) for frame in frames)
        assert hub.inbound.accepted == len(frames)
        copies = sum(len(batch) for batch in batches)
        assert hub.admission.refused["replayed"] == copies - len(frames)
        inbox = await hub.store.inbox(limit=500)
        assert sorted(m.id for m in inbox) == sorted(f.id for f in frames)
        await eventually(lambda: acked >= {frame.id for frame in frames})
        task.cancel()
        await care_home.aclose()
