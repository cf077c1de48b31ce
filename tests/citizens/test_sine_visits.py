"""A team's hub and the staff hub with only SINE between them (the TETRA simulator on ptys, the real SINE
transport): the list arrives in SDS fragments, and the team's visit report comes back as one SDS."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from hub.citizens.records import to_csv
from hub.citizens.register import Reader
from hub.citizens.sample import sample_citizens
from hub.citizens.service import FollowUp
from hub.citizens.settings import CitizensConfig
from hub.core.frame import Kind, decode_frame
from hub.core.identity import Identity
from hub.relay.roster import Role
from hub.relay.settings import LinkConfig, PeerConfig
from simulators.pty_device import PtyDevice
from simulators.tetra import TetraNetwork
from tests.citizens.conftest import follow_up
from tests.citizens.test_followup import _until
from tests.inproc import hub_config
from transports.sine import pei_mtu

STAFF = Identity.generate("Aarhus krisestab", "staff")
TEAM = Identity.generate("Hjemmepleje Nord", "care-home")
ISSI = {STAFF.name: "1001", TEAM.name: "1002"}
COORDINATOR = Reader("hansen", "coordinator")
NURSE = Reader("anna", "nurse")


@contextlib.asynccontextmanager
async def _sine_hub(
    tmp_path: Path,
    network: TetraNetwork,
    identity: Identity,
    other: Identity,
    settings: CitizensConfig,
    **options: object,
) -> AsyncIterator[FollowUp]:
    issi = ISSI[identity.name]
    pty = PtyDevice(network.add_radio(issi, max_bits=1120), tmp_path / f"tty{issi}", baud=38400)
    pty.start()
    link = {
        "kind": "sine",
        "device": str(pty.link_path),
        "baud": 38400,
        "max_per_minute": 6000,
        "timeout": 10,
        **options,
    }
    peers = (PeerConfig(other.node_id, other.name, {"sine": ISSI[other.name]}),)
    role = Role.STAFF if identity is STAFF else Role.CARE_HOME
    config = hub_config(tmp_path / identity.name, identity.name, "unused", role=role,
                        links=(LinkConfig("sine", "sine", link),), peers=peers)  # fmt: skip
    try:
        async with follow_up(config, identity, settings) as service:
            service.hub.roster.add(other.card)
            yield service
    finally:
        await pty.aclose()


async def test_list_over_sine_and_the_visit_back_in_one_sds(tmp_path: Path) -> None:
    network = TetraNetwork(max_per_window=10_000, window=60.0)
    people = [p for p in sample_citizens(20, ["Nord", "Syd"]) if p.district == "Nord"]
    teams = {"Nord": (TEAM.node_id.hex(),)}
    async with (
        _sine_hub(tmp_path, network, STAFF, TEAM, CitizensConfig(teams=teams)) as staff,
        _sine_hub(tmp_path, network, TEAM, STAFF, CitizensConfig()) as team,
    ):
        await staff.register.import_csv(to_csv(people), COORDINATOR)
        await team.register.import_csv(to_csv(people), NURSE)
        await staff.mark_outage(COORDINATOR, districts=["Nord"])

        async def listed() -> bool:
            return len(await team.followup_view(NURSE)) == len(people)

        await _until(listed, timeout=120)
        citizen = (await team.followup_view(NURSE))[0]["id"]
        assert await team.record_visit(citizen, "moved_hospital", by=NURSE)

        async def reported() -> bool:
            rows = await staff.followup_view(COORDINATOR)
            return any(r["id"] == citizen and r["outcome"] == "moved_hospital" for r in rows)

        await _until(reported, timeout=120)
        visits = [m for m in await staff.hub.store.inbox() if m.kind == Kind.VISIT]
        assert len(visits) == 1 and visits[0].via == "sine"
        assert decode_frame(visits[0].wire).sealed and len(visits[0].wire) <= pei_mtu(1120)  # one SDS
