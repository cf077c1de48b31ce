"""Failover between links, failback when the better link heals, and life-safety fan-out (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.core.errors import RoutingError
from hub.core.frame import Kind, Priority
from hub.core.identity import Identity
from hub.relay.hub import Hub
from hub.relay.policy import Policy
from hub.relay.settings import LinkConfig
from tests.inproc import eventually, hub_config, medium_name, peer, running
from transports.memory import MemoryMedium

A = Identity.generate("Aarhus", "staff")
B = Identity.generate("Solgaarden", "care-home")


def two_links(medium_fast: str, medium_slow: str, name: str) -> tuple[LinkConfig, ...]:
    return (
        LinkConfig("fast", "memory", {"kind": "memory", "medium": medium_fast, "address": name}),
        LinkConfig("slow", "memory", {"kind": "memory", "medium": medium_slow, "address": name}),
    )


def configs(tmp_path: Path) -> tuple[object, object, str, str]:
    fast, slow = medium_name(), medium_name()
    policy = Policy(order=("fast", "slow"))
    ca = hub_config(
        tmp_path / "a",
        "a",
        fast,
        links=two_links(fast, slow, "a"),
        policy=policy,
        peers=(peer(B, "b", ("fast", "slow")),),
        default_route=(B.node_id,),
    )
    cb = hub_config(
        tmp_path / "b",
        "b",
        fast,
        links=two_links(fast, slow, "b"),
        policy=policy,
        peers=(peer(A, "a", ("fast", "slow")),),
        default_route=(A.node_id,),
    )
    return ca, cb, fast, slow


async def delivered(hub: Hub, count: int) -> None:
    await eventually(lambda: hub.inbound.accepted >= count)


async def link_used(hub: Hub, message_id: bytes) -> str | None:
    """The link that carried a message's (single) delivery, once its hop is acknowledged."""
    await eventually(lambda: hub.router.open_count() == 0)
    await hub.store.flush()  # state updates are written behind the router's back
    return (await hub.store.deliveries(message_id))[0].link


async def test_failover_to_the_next_link_and_back(tmp_path: Path) -> None:
    ca, cb, fast, _ = configs(tmp_path)
    async with running(ca, A) as a, running(cb, B) as b:  # type: ignore[arg-type]
        a.roster.add(B.card)
        b.roster.add(A.card)

        first = await a.submit(Kind.TEXT, B.node_id, b"over fast")
        await delivered(b, 1)
        assert await link_used(a, first) == "fast"

        MemoryMedium.named(fast).unplug("b")  # the fast link to b dies
        second = await a.submit(Kind.TEXT, B.node_id, b"over slow")
        await delivered(b, 2)
        assert await link_used(a, second) == "slow"

        MemoryMedium.named(fast).plug("b")  # healed: probes bring it back after the hold-down
        await eventually(lambda: a.links.state("fast", B.node_id).label == "up", timeout=15)
        third = await a.submit(Kind.TEXT, B.node_id, b"back on fast")
        await delivered(b, 3)
        assert await link_used(a, third) == "fast"
        assert {m.id for m in await b.store.inbox()} == {first, second, third}


async def test_a_preferred_link_goes_first_when_usable(tmp_path: Path) -> None:
    ca, cb, _, _ = configs(tmp_path)
    async with running(ca, A) as a, running(cb, B) as b:  # type: ignore[arg-type]
        a.roster.add(B.card)
        b.roster.add(A.card)
        message_id = await a.submit(Kind.ROLLCALL, B.node_id, b"\xa0", via="slow")
        await delivered(b, 1)
        assert await link_used(a, message_id) == "slow"
        with pytest.raises(RoutingError, match="ingen forbindelse ved navn"):
            await a.submit(Kind.TEXT, B.node_id, b"x", via="pigeon")


async def test_messages_wait_while_every_link_is_down_then_flow(tmp_path: Path) -> None:
    ca, cb, fast, slow = configs(tmp_path)
    async with running(ca, A) as a, running(cb, B) as b:  # type: ignore[arg-type]
        a.roster.add(B.card)
        b.roster.add(A.card)
        MemoryMedium.named(fast).unplug("b")
        MemoryMedium.named(slow).unplug("b")
        ids = [await a.submit(Kind.TEXT, B.node_id, f"{i}".encode()) for i in range(20)]
        await eventually(lambda: a.links.state("slow", B.node_id).label == "down")
        assert b.inbound.accepted == 0
        MemoryMedium.named(slow).plug("b")
        await delivered(b, 20)
        await eventually(lambda: a.router.open_count() == 0, timeout=15)
        assert sorted(m.id for m in await b.store.inbox()) == sorted(ids)


async def test_life_safety_goes_out_on_every_link_and_is_deduplicated(tmp_path: Path) -> None:
    ca, cb, _, _ = configs(tmp_path)
    async with running(ca, A) as a, running(cb, B) as b:  # type: ignore[arg-type]
        a.roster.add(B.card)
        b.roster.add(A.card)
        message_id = await a.submit(Kind.TEXT, B.node_id, b"brand", priority=Priority.LIFE_SAFETY)
        # the copy that came second is counted as replayed as soon as it arrives, while the first may
        # still be committing: the inbox shows a message once it is committed
        await eventually(lambda: b.admission.refused["replayed"] >= 1)
        await delivered(b, 1)
        assert [m.id for m in await b.store.inbox()] == [message_id]
        assert a.links.sent_bytes["fast"] > 0 and a.links.sent_bytes["slow"] > 0


async def test_personal_data_is_sealed_by_default_and_readable_only_by_its_ends(tmp_path: Path) -> None:
    from hub.core.errors import SealError
    from hub.core.frame import decode_frame
    from hub.core.seal import Context, SealingKey

    ca, cb, _, _ = configs(tmp_path)
    async with running(ca, A) as a, running(cb, B) as b:  # type: ignore[arg-type]
        a.roster.add(B.card)
        b.roster.add(A.card)
        secret = b"Fru Jensen, Solvej 3, har brug for ilt"
        message_id = await a.submit(Kind.TEXT, B.node_id, secret)
        await delivered(b, 1)
        stored = await b.store.message(message_id)
        assert stored is not None and secret not in stored.wire
        frame = decode_frame(stored.wire)
        assert frame.sealed
        assert b.open_payload(frame) == secret
        assert a.open_payload(frame) == secret  # the sender's console shows what it sent
        third = Identity.generate("Tredje", "staff")
        keys = {A.node_id: A.sealing_public, B.node_id: B.sealing_public}
        with pytest.raises(SealError, match="another node"):
            SealingKey(third.sealing_private, third.node_id).open(frame.payload, Context.of(frame), keys)
