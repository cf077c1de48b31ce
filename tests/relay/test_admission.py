"""Bad input from a link is refused with a counted reason and never stored."""

from __future__ import annotations

import time
from pathlib import Path

from hub.core.frame import Kind, decode_frame
from hub.core.identity import Identity
from hub.relay.hub import Hub
from hub.relay.roster import Role
from hub.service.assembly import open_hub
from tests.inproc import eventually, hub_config, medium_name, running
from transports.memory import MemoryMedium

STAFF = Identity.generate("Aarhus", "staff")
CARE_HOME = Identity.generate("Solgaarden", "care-home")
OTHER_HOME = Identity.generate("Skovbo", "care-home")
STRANGER = Identity.generate("Ukendt", "staff")


async def _inject(medium: str, *pieces: bytes) -> None:
    attacker = MemoryMedium.named(medium).attach(f"attacker-{time.monotonic_ns()}")
    for data in pieces:
        await attacker.send("staff", data)
    await attacker.aclose()


async def _refused(hub: Hub, reason: str, count: int = 1) -> None:
    await eventually(lambda: hub.admission.refused[reason] >= count)


def _frame(sender: Identity = CARE_HOME, **fields: object) -> bytes:
    values: dict[str, object] = {"created": int(time.time()), "ttl_minutes": 60}
    values.update(fields)
    return sender.sign(Kind.TEXT, STAFF.node_id, b"hjaelp", **values).encode()  # type: ignore[arg-type]


async def _assert_nothing_stored(hub: Hub, wire: bytes) -> None:
    assert await hub.store.message(decode_frame(wire).id) is None
    assert await hub.store.inbox() == []


async def test_each_bad_frame_is_refused_counted_and_not_stored(tmp_path: Path) -> None:
    medium = medium_name()
    config = hub_config(tmp_path, "staff", medium)
    async with running(config, STAFF) as hub:
        hub.roster.add(CARE_HOME.card)

        forged = bytearray(_frame())
        forged[-40] ^= 0x01  # flip a signature bit
        await _inject(medium, bytes(forged))
        await _refused(hub, "bad-signature")

        tampered = bytearray(_frame())
        tampered[40] ^= 0x01  # flip a payload bit under the signature
        await _inject(medium, bytes(tampered))
        await _refused(hub, "bad-signature", 2)

        unknown = _frame(STRANGER)
        await _inject(medium, unknown)
        await _refused(hub, "unknown-sender")
        await _assert_nothing_stored(hub, unknown)

        expired = _frame(created=int(time.time()) - 7200, ttl_minutes=60)
        await _inject(medium, expired)
        await _refused(hub, "expired")
        await _assert_nothing_stored(hub, expired)

        await _inject(medium, _frame()[:50])
        await _refused(hub, "malformed")
        await _inject(medium, _frame() + b"\x00\x00")
        await _refused(hub, "malformed", 2)
        await _inject(medium, b"\x01" + b"\x00" * 29 + b"\xff\xff\x03" + b"\x00" * 100)
        await _refused(hub, "malformed", 3)

        from hub.core.fragment import split

        await _inject(medium, *split(b"\x01" + b"\x00" * 6000, 1000))  # fragments of a giant frame
        await _refused(
            hub, "reassembly-limit", 6
        )  # each full-size fragment: no set outgrows the largest frame

        not_allowed = CARE_HOME.sign(
            Kind.ROSTER, STAFF.node_id, b"x", created=int(time.time()), ttl_minutes=5
        )
        await _inject(medium, not_allowed.encode())
        await _refused(hub, "not-allowed")
        assert await hub.store.inbox() == []

        good = _frame()
        await _inject(medium, good)
        await eventually(lambda: hub.inbound.accepted == 1)
        await _inject(medium, good)
        await _refused(hub, "replayed")
        inbox = await hub.store.inbox()
        assert [m.id for m in inbox] == [decode_frame(good).id]


async def test_a_node_with_its_clock_at_1970_takes_no_time_from_frames(tmp_path: Path) -> None:
    """Frames from two signers that agree, fresh or recorded, do not set the clock: only live answers to
    a time challenge do (tests/hubs/test_clock_from_peers.py)."""
    from hub.core.clock import ManualClock

    medium = medium_name()
    config = hub_config(tmp_path, "staff", medium, role=Role.STAFF)
    async with open_hub(config, STAFF, ManualClock(start=100.0)) as hub:
        assert not hub.clock.trusted
        import asyncio

        task = asyncio.create_task(hub.run())
        await hub.ready.wait()
        try:
            hub.roster.add(CARE_HOME.card)
            hub.roster.add(OTHER_HOME.card)
            sent_at = int(time.time())
            recorded = _frame(created=sent_at - 3 * 24 * 3600, ttl_minutes=0xFFFF)  # replayed, 3 days old
            await _inject(medium, recorded, recorded)
            await eventually(lambda: hub.inbound.accepted == 1 and hub.admission.refused["replayed"] == 1)
            await _inject(medium, _frame(created=sent_at), _frame(OTHER_HOME, created=sent_at + 1))
            await eventually(lambda: hub.inbound.accepted == 3)
            assert not hub.clock.trusted and hub.clock.time() == 100.0, "frames set the clock"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
