"""The follow-up on real in-process hubs: an outage in two districts gives each team its list, sorted by
urgency; visits come back once however often they are sent; the escalation fires for the right citizen
at the right time on the hub's (manual) clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from hub.citizens.followup import CRITICALITY
from hub.citizens.records import Citizen, to_csv
from hub.citizens.register import Reader
from hub.citizens.sample import sample_citizens
from hub.citizens.service import Alarm, FollowUp
from hub.citizens.settings import CitizensConfig
from hub.core.clock import ManualClock
from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.core.kinds import encode_payload
from hub.relay.roster import Role
from tests.citizens.conftest import follow_up
from tests.inproc import hub_config, medium_name, peer

STAFF = Identity.generate("Aarhus krisestab", "staff")
NORD = Identity.generate("Hjemmepleje Nord", "care-home")
SYD = Identity.generate("Hjemmepleje Syd", "care-home")
COORDINATOR = Reader("hansen", "coordinator")
NURSE = Reader("anna", "nurse")
HOUR = 3600.0


def _person(n: int, district: str, equipment: tuple[str, ...], hours: float) -> Citizen:
    return Citizen(f"Borger {n}", f"00{n % 12 + 1:02d}50-{n:04d}", f"Vej {n}, {district}", district,
                   equipment, hours, "", "", f"{n:08x}")  # fmt: skip


async def test_outage_in_two_districts_gives_each_team_its_sorted_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "beredt.citizens")
    medium = medium_name()
    teams = {"Nord": (NORD.node_id.hex(),), "Syd": (SYD.node_id.hex(),)}
    people = sample_citizens(60, ["Nord", "Syd", "Øst"])
    staff_config = hub_config(tmp_path / "staff", STAFF.name, medium,
                              peers=(peer(NORD, NORD.name), peer(SYD, SYD.name)))  # fmt: skip

    def team_config(identity: Identity) -> object:
        return hub_config(tmp_path / identity.name, identity.name, medium, role=Role.CARE_HOME,
                          peers=(peer(STAFF, STAFF.name),))  # fmt: skip

    async with (
        follow_up(staff_config, STAFF, CitizensConfig(teams=teams)) as staff,  # type: ignore[arg-type]
        follow_up(team_config(NORD), NORD, CitizensConfig()) as nord,  # type: ignore[arg-type]
        follow_up(team_config(SYD), SYD, CitizensConfig()) as syd,  # type: ignore[arg-type]
    ):
        for team in (nord, syd):
            staff.hub.roster.add(team.hub.identity.card)
            team.hub.roster.add(STAFF.card)
        await staff.register.import_csv(to_csv(people), COORDINATOR)
        for team, district in ((nord, "Nord"), (syd, "Syd")):  # each team's device holds its district
            await team.register.import_csv(to_csv(p for p in people if p.district == district), NURSE)

        outage = await staff.mark_outage(COORDINATOR, districts=["Nord", "Syd"])
        view = await staff.followup_view(COORDINATOR)
        assert {r["district"] for r in view} == {"Nord", "Syd"}  # Øst still has power
        assert len(view) == sum(p.district != "Øst" for p in people)
        # soonest run-out first; at the same moment the ventilator before oxygen, dialysis and suction
        urgency = [(r["runs_out"], min(CRITICALITY.index(e) for e in r["equipment"])) for r in view]
        assert urgency == sorted(urgency)
        tied = {u[0] for u in urgency if any(v[0] == u[0] and v[1] != u[1] for v in urgency)}
        assert tied  # the sample has citizens who run out together with different equipment
        sent = await staff.incidents.lists_sent(outage)
        assert {s["team"] for s in sent} == {NORD.node_id.hex(), SYD.node_id.hex()}

        for team, district in ((nord, "Nord"), (syd, "Syd")):
            expected = [r["id"] for r in view if r["district"] == district]

            async def arrived(team: FollowUp = team, expected: list[str] = expected) -> bool:
                return [r["id"] for r in await team.followup_view(NURSE)] == expected

            await _until(arrived)
            rows = await team.followup_view(NURSE)
            assert rows[0]["name"] and rows[0]["district"] == district  # details from the team's own register

        # someone imported while the power is out joins the outage, and only they go to the team
        late = _person(99, "Nord", ("ventilator",), 0.5)
        for desk in (staff, nord):
            await desk.register.import_csv(to_csv([late]), COORDINATOR)
        await staff.tick()

        async def joined() -> bool:
            return late.id in [r["id"] for r in await nord.followup_view(NURSE)]

        await _until(joined)
        sent = await staff.incidents.lists_sent(outage)
        assert len(sent) == 3 and sent[-1]["team"] == NORD.node_id.hex() and sent[-1]["bytes"] < 30
        await staff.tick()
        assert len(await staff.incidents.lists_sent(outage)) == 3  # nothing sent twice

        first = (await nord.followup_view(NURSE))[0]["id"]
        assert await nord.record_visit(first, "needs_oxygen", by=NURSE, at=1_900_000_000)
        assert not await nord.record_visit(first, "needs_oxygen", by=NURSE, at=1_900_000_000)

        async def seen() -> bool:
            return any(r["id"] == first and r["seen"] for r in await staff.followup_view(COORDINATOR))

        await _until(seen)
        # the same visit again as a new message (a device that sent it twice), and a visit about a Nord
        # citizen from the Syd team, whose list it is not on: neither changes anything
        body = {"citizen": first, "outcome": "needs_oxygen", "at": 1_900_000_000, "outage": outage}
        again = await nord.hub.submit(Kind.VISIT, STAFF.node_id, encode_payload(Kind.VISIT, body))
        forged = {**body, "outcome": "seen_ok", "at": 1_900_000_100}
        stranger = await syd.hub.submit(Kind.VISIT, STAFF.node_id, encode_payload(Kind.VISIT, forged))

        async def taken() -> bool:
            said = [r.getMessage() for r in caplog.records]
            return any(f"from {SYD.node_id.hex()} ignored" in m for m in said) and any(
                f"{first} at 1900000000 from {NORD.node_id.hex()} already recorded" in m for m in said
            )

        await _until(taken)
        assert await staff.hub.store.message(again) and await staff.hub.store.message(stranger)
        visits = await staff.incidents.visits()
        assert len(visits) == 1 and visits.latest(first, outage).outcome == "needs_oxygen"  # type: ignore[union-attr]
        summary = {s["district"]: s for s in await staff.district_summary(COORDINATOR)}
        assert summary["Nord"]["seen"] == 1 and summary["Nord"]["needs_help"] == 1
        assert summary["Nord"]["affected"] == sum(p.district == "Nord" for p in people) + 1
        assert summary["Syd"]["seen"] == 0


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_team_that_cannot_be_reached_does_not_hold_up_the_others(tmp_path: Path) -> None:
    stranger = Identity.generate("Hjemmepleje Syd, ikke i rosteren", "care-home")
    teams = {"Nord": (NORD.node_id.hex(),), "Syd": (stranger.node_id.hex(),)}
    medium = medium_name()
    staff_config = hub_config(tmp_path / "staff", STAFF.name, medium, peers=(peer(NORD, NORD.name),))
    team_config = hub_config(tmp_path / "nord", NORD.name, medium, role=Role.CARE_HOME,
                             peers=(peer(STAFF, STAFF.name),))  # fmt: skip
    people = [_person(1, "Nord", ("oxygen",), 4.0), _person(2, "Syd", ("oxygen",), 2.0)]
    async with (
        follow_up(staff_config, STAFF, CitizensConfig(teams=teams), run=False) as staff,
        follow_up(team_config, NORD, CitizensConfig()) as nord,
    ):
        staff.hub.roster.add(NORD.card)
        nord.hub.roster.add(STAFF.card)
        await staff.register.import_csv(to_csv(people), COORDINATOR)
        outage = await staff.mark_outage(COORDINATOR, districts=["Nord", "Syd"])  # Syd's hub is unknown
        await staff.tick()
        await staff.tick()
        sent = await staff.incidents.lists_sent(outage)
        assert [s["team"] for s in sent] == [NORD.node_id.hex()]  # once, however often Syd is tried

        async def arrived() -> bool:
            return [r["id"] for r in await nord.followup_view(NURSE)] == ["00000001"]

        await _until(arrived)


async def test_escalation_fires_for_the_right_citizen_at_the_right_time(tmp_path: Path) -> None:
    clock = ManualClock()
    people = [
        _person(1, "Nord", ("ventilator",), 3.0),
        _person(2, "Nord", ("oxygen",), 5.0),
        _person(3, "Nord", ("dialysis",), 10.0),
        _person(4, "Syd", ("oxygen",), 0.5),  # not in the outage
    ]
    config = hub_config(tmp_path / "staff", STAFF.name, medium_name())
    alarms: list[str] = []
    settings = CitizensConfig(alarm_hours=2.0)
    async with follow_up(config, STAFF, settings, clock, run=False) as staff:

        async def sink(alarm: Alarm) -> None:
            alarms.append(alarm.citizen)

        staff.on_alarm(sink)
        await staff.register.import_csv(to_csv(people), COORDINATOR)
        start = clock.time()
        await staff.mark_outage(COORDINATOR, districts=["Nord"], started=start)
        await staff.tick()
        assert alarms == []
        clock.advance(0.99 * HOUR)  # 2.01 h left for the ventilator
        await staff.tick()
        assert alarms == []
        clock.advance(0.02 * HOUR)  # 1.99 h left
        await staff.tick()
        assert alarms == ["00000001"]
        await staff.record_visit("00000002", "not_home", by=NURSE)  # not at home is not seen
        await staff.record_visit("00000003", "seen_ok", by=NURSE)
        await staff.tick()
        assert alarms == ["00000001"]  # once each
        clock.advance(2.0 * HOUR)  # 3.01 h after the outage began: 1.99 h left for the oxygen
        await staff.tick()
        assert alarms == ["00000001", "00000002"]
        clock.advance(10 * HOUR)
        await staff.tick()
        assert alarms == ["00000001", "00000002"]  # dialysis was seen: no alarm however late
        rows = {r["id"]: r for r in await staff.followup_view(COORDINATOR)}
        assert rows["00000001"]["alarm"] and rows["00000002"]["alarm"] and not rows["00000003"]["alarm"]

        # the power comes back, then fails again: being seen last time does not count this time
        assert await staff.end_outage(COORDINATOR, rows["00000003"]["outage"])
        await staff.mark_outage(COORDINATOR, districts=["Nord"])
        clock.advance(8.5 * HOUR)  # 1.5 h left for the dialysis
        await staff.tick()
        assert alarms[2:] == ["00000001", "00000002", "00000003"]
