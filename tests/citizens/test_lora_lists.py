"""Teams' hubs get their lists over LoRa: three in-process hubs on fake Meshtastic radios (the real
meshtastic library on a simulated mesh), an outage in two districts, each team's list on its hub within
the airtime budget, and visits back over the same mesh: recorded while the team's radio hears nobody,
they all reach the staff hub once when the mesh heals. Prints bytes per team list, the time from
marking the outage to the first list on a team's hub and the visits' sync time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from hub.citizens.records import to_csv
from hub.citizens.register import Reader
from hub.citizens.sample import sample_citizens
from hub.citizens.service import FollowUp
from hub.citizens.settings import CitizensConfig
from hub.core.identity import Identity
from hub.relay.roster import Role
from hub.relay.settings import LinkConfig, PeerConfig
from simulators.meshtastic_radio import FakeMeshtasticRadio
from simulators.rf_medium import RFMedium
from tests.citizens.conftest import follow_up
from tests.citizens.test_followup import _until
from tests.inproc import hub_config
from transports.lora import MTU as LORA_MTU
from transports.lora_airtime import EU868_HOURLY_LIMIT, ModemPreset, packet_airtime

STAFF = Identity.generate("Aarhus krisestab", "staff")
NORD = Identity.generate("Hjemmepleje Nord", "care-home")
SYD = Identity.generate("Hjemmepleje Syd", "care-home")
RADIO = {STAFF.name: 0xA1, NORD.name: 0xB2, SYD.name: 0xC3}
COORDINATOR = Reader("hansen", "coordinator")
NURSE = Reader("anna", "nurse")


def _peer(identity: Identity) -> PeerConfig:
    return PeerConfig(identity.node_id, identity.name, {"lora": f"!{RADIO[identity.name]:08x}"})


@contextlib.asynccontextmanager
async def _mesh_hub(
    tmp_path: Path,
    identity: Identity,
    medium: RFMedium,
    peers: list[Identity],
    settings: CitizensConfig,
    **options: float,
) -> AsyncIterator[FollowUp]:
    radio = FakeMeshtasticRadio(RADIO[identity.name], medium)
    port = await radio.start_tcp()
    link = {"kind": "lora", "host": f"127.0.0.1:{port}", "ack_timeout": 10, "connect_timeout": 15, **options}
    role = Role.STAFF if identity is STAFF else Role.CARE_HOME
    links = (LinkConfig("lora", "lora", link),)
    config = hub_config(
        tmp_path / identity.name,
        identity.name,
        "unused",
        role=role,
        links=links,
        peers=tuple(map(_peer, peers)),
    )
    try:
        async with follow_up(config, identity, settings) as service:
            for other in peers:
                service.hub.roster.add(other.card)
            yield service
    finally:
        await radio.aclose()


async def test_teams_get_their_lists_over_lora_within_the_airtime_budget(tmp_path: Path) -> None:
    medium = RFMedium(seed=1)
    people = sample_citizens(30, ["Nord", "Syd", "Øst"])  # ten per district
    teams = {"Nord": (NORD.node_id.hex(),), "Syd": (SYD.node_id.hex(),)}
    async with (
        _mesh_hub(tmp_path, STAFF, medium, [NORD, SYD], CitizensConfig(teams=teams)) as staff,
        # a peer that went silent is probed after 5 s rather than 60 s, so the healed mesh is noticed soon
        _mesh_hub(tmp_path, NORD, medium, [STAFF], CitizensConfig(), peer_check_interval=5) as nord,
        _mesh_hub(tmp_path, SYD, medium, [STAFF], CitizensConfig()) as syd,
    ):
        await staff.register.import_csv(to_csv(people), COORDINATOR)
        for team, district in ((nord, "Nord"), (syd, "Syd")):
            await team.register.import_csv(to_csv(p for p in people if p.district == district), NURSE)
        before = medium.airtime_used(RADIO[STAFF.name])

        began = time.monotonic()
        outage = await staff.mark_outage(COORDINATOR, districts=["Nord", "Syd"])
        first: float | None = None
        for team in (nord, syd):

            async def arrived(team: FollowUp = team) -> bool:
                return len(await team.followup_view(NURSE)) == 10

            await _until(arrived, timeout=120)
            first = first or time.monotonic() - began

        sent = await staff.incidents.lists_sent(outage)
        assert len(sent) == 2 and all(s["bytes"] <= 90 for s in sent)  # ten citizens: one LoRa packet
        airtime = medium.airtime_used(RADIO[STAFF.name]) - before
        status = staff.hub.links.transports["lora"].status()  # type: ignore[attr-defined]
        # the medium's own count of what the staff radio put on the air (lists, fragments, probes) is
        # what the transport spends from its hourly budget at most, and that stays inside the budget
        assert 0 < airtime <= status["airtime_used_s"] <= status["airtime_budget_s"] <= EU868_HOURLY_LIMIT
        # each list is one packet: two lists, each with one retry at most, plus the radios' small ACKs
        assert airtime <= 2 * 2 * packet_airtime(LORA_MTU, ModemPreset.LONG_FAST)
        rows = await nord.followup_view(NURSE)
        assert all(r["name"] for r in rows)  # the team's hub shows names from its own register
        print(f"\nLoRa: payload bytes per team list {[s['bytes'] for s in sent]}, staff radio airtime"
              f" {airtime:.2f} s (transport counted {status['airtime_used_s']:.2f} s), outage to first"
              f" list on a team's hub {first:.2f} s")  # fmt: skip

        # The team's radio hears nobody: visits recorded now wait on the team's hub, nothing is lost,
        # and a visit recorded twice (a nurse pressing again) is one visit.
        medium.partition([RADIO[NORD.name]], [RADIO[STAFF.name], RADIO[SYD.name]])
        outcomes = {rows[0]["id"]: "seen_ok", rows[1]["id"]: "needs_oxygen", rows[2]["id"]: "not_home"}
        for citizen, outcome in outcomes.items():
            assert await nord.record_visit(citizen, outcome, by=NURSE, at=1_900_000_000)
        assert not await nord.record_visit(rows[0]["id"], "seen_ok", by=NURSE, at=1_900_000_000)
        assert not any(r["seen"] or r["outcome"] for r in await staff.followup_view(COORDINATOR))

        healed = time.monotonic()
        medium.heal()

        async def synced() -> bool:
            got = {r["id"]: r["outcome"] for r in await staff.followup_view(COORDINATOR) if r["outcome"]}
            return got == outcomes

        await _until(synced, timeout=180)
        print(f"three visits recorded offline on the team's hub reached the staff hub"
              f" {time.monotonic() - healed:.1f} s after the mesh healed")  # fmt: skip
        visits = await staff.incidents.visits()
        assert len(visits) == 3  # once each, however often the team's hub tried
        assert {r["id"] for r in await staff.followup_view(COORDINATOR) if r["seen"]} == {
            rows[0]["id"],
            rows[1]["id"],
        }  # not at home is not seen
