"""The sending hub refuses a kind by the rule its receivers apply to it: the roster's ``kinds`` for it
when the roster names them (widening or narrowing its role's defaults), else its role's defaults; the
protocol kinds (acks, routes, log book heads, exercise summaries) always go, whatever a list names. Two
real hubs on one in-memory medium, each with the same roster file."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest
import tomli_w

from hub.core.errors import ConfigError, RoutingError
from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.core.kinds import encode_payload
from hub.relay.hub import Hub
from hub.relay.own_messages import may_send
from hub.relay.roster import PROTOCOL_KINDS, Role, Roster
from tests.inproc import hub_config, medium_name, peer, running

SITREP = encode_payload(Kind.SITREP, {"number": 1, "phase": "Initial", "summary": "Strømsvigt"})


def write_roster(directory: Path, staff: Identity, care: Identity, care_kinds: list[str]) -> None:
    """The roster both hubs hold: the care home's entry names the kinds it may send."""
    nodes = [{"card": staff.card.encode()}, {"card": care.card.encode(), "kinds": care_kinds}]
    directory.mkdir()
    (directory / "roster.toml").write_text(tomli_w.dumps({"node": nodes}))


def identities(tmp_path: Path, care_kinds: list[str]) -> tuple[Identity, Identity]:
    staff, care = Identity.generate("Aarhus krisestab", "staff"), Identity.generate("Lindely", "care-home")
    for name in ("staff", "care"):
        write_roster(tmp_path / name, staff, care, care_kinds)
    return staff, care


async def stored(hub: Hub, message_id: bytes, timeout: float = 20.0) -> None:
    """Wait until ``hub`` holds the message (admitted, not refused)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await hub.store.message(message_id) is None:
        assert loop.time() < deadline, f"{hub.identity.name} never stored {message_id.hex()}"
        await asyncio.sleep(0.05)


async def acknowledged(hub: Hub, message_id: bytes, timeout: float = 20.0) -> None:
    """Wait until ``hub`` holds the end-to-end ack of its own message."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (message := await hub.store.message(message_id)) is None or message.e2e_acked_at is None:
        assert loop.time() < deadline, f"{hub.identity.name} never had {message_id.hex()} acknowledged"
        await asyncio.sleep(0.05)


async def test_kinds_in_the_roster_widen_what_the_hub_sends_and_receivers_take_it(tmp_path: Path) -> None:
    # the list names no protocol kind: the care home's acks are taken all the same
    staff_id, care_id = identities(tmp_path, ["text", "status", "sitrep"])
    medium = medium_name()
    staff_config = hub_config(tmp_path / "staff", "staff", medium, peers=(peer(care_id, "care"),),
                              default_route=(care_id.node_id,))  # fmt: skip
    care_config = hub_config(tmp_path / "care", "care", medium, role=Role.CARE_HOME,
                             peers=(peer(staff_id, "staff"),), default_route=(staff_id.node_id,))  # fmt: skip
    async with running(staff_config, staff_id) as staff, running(care_config, care_id) as care:
        # a care home's role may not send a sitrep; its roster entry says it may, and so do the receivers'
        message_id = await care.submit(Kind.SITREP, staff.node_id, SITREP)
        await stored(staff, message_id)
        await acknowledged(care, message_id)
        # the staff hub's own message is acknowledged end to end by the care home (an ACK frame its list
        # does not name), and the hop acks on the way were taken too
        instruction = await staff.submit(Kind.TEXT, care.node_id, "Brændstof kommer kl. 14".encode())
        await acknowledged(staff, instruction)
        assert staff.admission.refused["not-allowed"] == 0
        assert care.admission.refused["not-allowed"] == 0
        # what the entry leaves out is refused at once, though the role's defaults would allow it
        with pytest.raises(RoutingError) as refused:
            await care.submit(Kind.RESOURCE_REQUEST, staff.node_id, b"x")
        assert "en institutions hub må ikke sende resource_request-beskeder" in str(refused.value)
        assert "rosterens kinds for Lindely tillader" in str(refused.value)


async def test_kinds_in_the_roster_narrow_what_the_hub_sends(tmp_path: Path) -> None:
    staff_id, care_id = identities(tmp_path, ["status"])
    medium = medium_name()
    care_config = hub_config(tmp_path / "care", "care", medium, role=Role.CARE_HOME,
                             peers=(peer(staff_id, "staff"),), default_route=(staff_id.node_id,))  # fmt: skip
    async with running(care_config, care_id) as care:
        before = care.store.live_messages
        # TEXT is among a care home's defaults, but not among the kinds its roster entry names
        with pytest.raises(RoutingError) as refused:
            await care.submit(Kind.TEXT, staff_id.node_id, "Brændstof mangler".encode())
        assert str(refused.value) == (
            "en institutions hub må ikke sende text-beskeder (rosterens kinds for Lindely tillader"
            " status); de modtagende hubber ville afvise dem"
        )
        assert care.store.live_messages == before
        # an ack, a route announcement, a log book head and an exercise summary are never refused
        for kind in PROTOCOL_KINDS:
            assert may_send(care_id, care.roster, kind)
        # the roster keeps the entry when it is saved again ('beredt roster add' saves it), as written
        care.roster.save()
        saved = tomllib.loads((tmp_path / "care" / "roster.toml").read_text())
        assert [node.get("kinds") for node in saved["node"]] == [["status"], None]
        assert care.reload_roster() and care.roster.own_kinds == PROTOCOL_KINDS | {Kind.STATUS}


async def test_without_kinds_in_the_roster_the_role_decides(tmp_path: Path) -> None:
    staff_id, care_id = Identity.generate("Aarhus", "staff"), Identity.generate("Lindely", "care-home")
    (tmp_path / "care").mkdir()
    care_config = hub_config(tmp_path / "care", "care", medium_name(), role=Role.CARE_HOME,
                             peers=(peer(staff_id, "staff"),), default_route=(staff_id.node_id,))  # fmt: skip
    async with running(care_config, care_id) as care:
        with pytest.raises(RoutingError, match=r"\(rollen care-home i rosteren tillader .*text"):
            await care.submit(Kind.SITREP, staff_id.node_id, SITREP)


@pytest.mark.parametrize(
    ("kinds", "says"),
    [
        (
            '["status", "Resource-Request", "vejr"]',
            "node[0].kinds: ukendt slags 'vejr'; kendte: text, sitrep",
        ),
        ('"status"', 'node[0].kinds: forventede en liste af slags, som ["status", "text"]'),
    ],
)
def test_a_kinds_list_the_hub_cannot_read_is_named_as_written(tmp_path: Path, kinds: str, says: str) -> None:
    care = Identity.generate("Lindely", "care-home")
    path = tmp_path / "roster.toml"
    path.write_text(f'[[node]]\ncard = "{care.card.encode()}"\nkinds = {kinds}\n')
    with pytest.raises(ConfigError) as refused:
        Roster.load(Identity.generate("Aarhus", "staff").card, path)
    assert str(refused.value).startswith(f"{path}: {says}")
    path.write_text(f'[[node]]\ncard = "{care.card.encode()}"\nkinds = ["status", "Resource-Request"]\n')
    entry = Roster.load(Identity.generate("Aarhus", "staff").card, path).get(care.node_id)
    assert entry is not None and entry.kinds == PROTOCOL_KINDS | {Kind.STATUS, Kind.RESOURCE_REQUEST}
