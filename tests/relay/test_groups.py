"""Groups as addresses: the resolver merges the roster's, roster.toml's and [[peers]] groups, and a group
message is one sealed message per member now, each acknowledged by that member, tracked as one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.core.errors import RoutingError
from hub.core.frame import Kind, decode_frame
from hub.core.identity import Identity
from hub.core.kinds.roster import RosterNode, RosterVersion
from hub.core.seal import DIRECT
from hub.relay.group_sends import GroupSends, progress
from hub.relay.groups import group_address
from hub.relay.hub import Hub
from hub.relay.roster import Role, Roster
from hub.relay.settings import PeerConfig
from tests.inproc import eventually, hub_config, medium_name, peer, running

STAFF = Identity.generate("Krisestab", "staff")
HOMES = [Identity.generate(name, "care-home") for name in ("Bøgely", "Askely", "Egely")]


def _peers() -> tuple[PeerConfig, ...]:
    # Askely is in 'plejehjem' by the config; Egely is in 'distrikt-nord' by the config only
    extra = {HOMES[1].node_id: ("plejehjem",), HOMES[2].node_id: ("distrikt-nord",)}
    return tuple(PeerConfig(h.node_id, h.name, {"memory": h.name}, extra.get(h.node_id, ())) for h in HOMES)


def _staff_roster(directory: Path) -> None:
    roster = Roster(STAFF.card, directory / "roster.toml")
    roster.add(HOMES[0].card, groups=("Distrikt-Syd",))
    roster.add(HOMES[1].card, groups=("distrikt-syd", "plejehjem"))
    roster.add(HOMES[2].card)
    roster.save()


def test_group_addresses() -> None:
    assert group_address("group:distrikt-syd") == "distrikt-syd"
    assert group_address("GROUP: alle plejehjem ") == "alle plejehjem"
    assert group_address("0123456789abcdef") is None


async def test_members_merge_sources_and_follow_the_roster(tmp_path: Path) -> None:
    _staff_roster(tmp_path)
    config = hub_config(tmp_path, "staff", medium_name(), peers=_peers())
    async with running(config, STAFF) as hub:
        ids = [h.node_id for h in HOMES]
        # sorted by name: Askely before Bøgely; names match without regard to case or spaces
        assert hub.groups.members(" DISTRIKT-syd") == (ids[1], ids[0])
        assert hub.groups.members("distrikt-nord") == (ids[2],)
        assert hub.groups.members("plejehjem") == (ids[1],), "the roster's and the config's count once"
        assert hub.groups.members("ingen") == ()
        assert hub.groups.names() == {"distrikt-nord": 1, "Distrikt-Syd": 2, "plejehjem": 1}
        assert hub.groups.of(ids[1]) == ("distrikt-syd", "plejehjem")
        # a node the root revokes is no member any more, whichever source named its group
        hub.roster.apply(RosterVersion(2, 0, (), frozenset({ids[1]})))
        assert hub.groups.members("distrikt-syd") == (ids[0],)
        assert "plejehjem" not in hub.groups.names()
        # a node the root enrols later is a member from then on (its groups are the root's word)
        late = Identity.generate("Lindely", "care-home")
        hub.roster.apply(
            RosterVersion(3, 0, (RosterNode(late.card, "Lindely", ("distrikt-syd",)),), frozenset({ids[1]}))
        )
        assert hub.groups.members("distrikt-syd") == (ids[0], late.node_id)


async def test_group_message_is_one_sealed_message_per_member(tmp_path: Path) -> None:
    medium = medium_name()
    _staff_roster(tmp_path / "staff")
    staff_config = hub_config(tmp_path / "staff", "staff", medium, peers=_peers())
    homes = [
        hub_config(tmp_path / h.name, h.name, medium, role=Role.CARE_HOME, peers=(peer(STAFF, "staff"),),
                   default_route=(STAFF.node_id,))
        for h in HOMES[:2]
    ]  # fmt: skip
    async with running(staff_config, STAFF) as staff:
        with pytest.raises(RoutingError, match="ingen medlemmer"):
            await staff.submit_group(Kind.TEXT, "ingen", b"x")
        async with running(homes[0], HOMES[0]) as h0, running(homes[1], HOMES[1]) as h1:
            for home in (h0, h1):
                home.roster.add(STAFF.card)
            sent = await staff.submit_group(Kind.TEXT, "distrikt-syd", "Varmestue åben".encode())
            assert sent.group == "Distrikt-Syd" and len(sent.members) == 2
            for node_hex, message_hex in sent.members:
                stored = await staff.store.message(bytes.fromhex(message_hex))
                assert stored is not None
                frame = decode_frame(stored.wire)
                assert frame.recipient.hex() == node_hex, "each member gets its own message"
                assert frame.sealed and frame.payload[0] == DIRECT, "sealed to that member alone"
            for home in (h0, h1):
                await eventually(lambda home=home: home.inbound.accepted >= 1)
            await _received(staff, sent.id, 2, 2)
            for home in (h0, h1):
                assert await _opened(home, sent.members) == "Varmestue åben"
            # a member enrolled after the message gets nothing of it
            staff.roster.add(HOMES[2].card, groups=("distrikt-syd",))
            assert HOMES[2].node_id in staff.groups.members("distrikt-syd")
            again = staff.group_sends.get(sent.id)
            assert again is not None and HOMES[2].node_id.hex() not in dict(again.members)
        # with the homes gone, a second message waits; revoking one member drops it from the count
        waiting = await staff.submit_group(Kind.TEXT, "distrikt-syd", b"Meld status")
        assert len(waiting.members) == 3
        (state,) = await progress([waiting], staff.store, staff.roster)
        assert (state["received"], state["total"]) == (0, 3)
        staff.roster.apply(RosterVersion(2, 0, (), frozenset({HOMES[0].node_id})))
        (state,) = await progress([waiting], staff.store, staff.roster)
        assert (state["received"], state["total"]) == (0, 2)
        assert {m["node"]: m["state"] for m in state["members"]}[HOMES[0].node_id.hex()] == "revoked"
    # the ledger survives a restart
    ledger = GroupSends(staff_config.data_dir / "group-sends.json")
    ledger.load()
    assert [s.id for s in ledger.newest()] == [waiting.id, sent.id]
    assert ledger.of_message(sent.members[0][1]) == sent


async def _received(staff: Hub, send_id: str, received: int, total: int) -> None:
    sent = staff.group_sends.get(send_id)
    assert sent is not None
    for _ in range(500):
        (state,) = await progress([sent], staff.store, staff.roster)
        if (state["received"], state["total"]) == (received, total):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"group message {send_id}: {state}")


async def _opened(home: Hub, members: tuple[tuple[str, str], ...]) -> str:
    message_hex = dict(members)[home.node_id.hex()]
    stored = await home.store.message(bytes.fromhex(message_hex))
    assert stored is not None
    return home.open_payload(decode_frame(stored.wire)).decode()
