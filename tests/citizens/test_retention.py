"""Retention and erasure of incident data, and the evacuation request, on a real in-process hub with a
manual clock: rows go when the outage's retention has passed (on a team's hub, which never learns the
end, that long after 30 days past the start), a person's erasure takes their visits and alarms with
them, and the evacuation centre gets a sealed RESOURCE_REQUEST naming ids, not people (the first centre
configured for the citizens' district; a request that cannot go as asked is refused whole)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.citizens.records import Citizen, to_csv
from hub.citizens.register import Reader
from hub.citizens.settings import CitizensConfig
from hub.core.clock import ManualClock
from hub.core.errors import UsageError
from hub.core.frame import Kind, decode_frame
from hub.core.identity import Identity
from hub.core.kinds import decode_payload, encode_payload
from hub.relay.roster import Role
from tests.citizens.conftest import follow_up
from tests.citizens.test_followup import _until
from tests.inproc import hub_config, medium_name, peer, running

STAFF = Identity.generate("Aarhus krisestab", "staff")
CENTRE = Identity.generate("Evakueringscenter Nord", "staff")
COORDINATOR = Reader("hansen", "coordinator")
DAY = 86400.0


def _people() -> list[Citizen]:
    return [
        Citizen("Karen Jensen", "000150-0001", "Skovvej 1", "Nord", ("ventilator",), 3.0, "", "", "00000001"),
        Citizen("Poul Hansen", "000250-0002", "Skovvej 2", "Nord", ("oxygen",), 6.0, "", "", "00000002"),
    ]


async def test_incident_rows_go_after_retention_and_with_an_erased_person(tmp_path: Path) -> None:
    clock = ManualClock()
    config = hub_config(tmp_path / "staff", STAFF.name, medium_name())
    async with follow_up(config, STAFF, CitizensConfig(alarm_hours=8.0, retention_days=30), clock,
                         run=False) as staff:  # fmt: skip
        await staff.register.import_csv(to_csv(_people()), COORDINATOR)
        outage = await staff.mark_outage(COORDINATOR, addresses=["Skovvej"])  # the whole street
        await staff.tick()  # both run out within the 8-hour margin: alarms for both
        await staff.record_visit("00000002", "seen_ok", by=COORDINATOR)
        assert len(await staff.incidents.alarms()) == 2 and len(await staff.incidents.visits()) == 1

        assert await staff.erase(COORDINATOR, "00000002")
        assert [r["id"] for r in await staff.followup_view(COORDINATOR)] == ["00000001"]
        assert len(await staff.incidents.visits()) == 0 and len(await staff.incidents.alarms()) == 1

        clock.advance(DAY)
        assert await staff.end_outage(COORDINATOR, outage)
        clock.advance(29 * DAY)
        await staff.tick()
        assert await staff.incidents.outages() != []  # 29 days after the end: kept
        clock.advance(1 * DAY + 1)
        await staff.tick()
        assert await staff.incidents.outages() == []
        assert await staff.incidents.entries(active_only=False) == []
        assert await staff.incidents.alarms() == {}
        assert await staff.register.count() == 1  # the register itself stays
        log = [(e["action"], e["subject"]) for e in await staff.register.access_log()]
        assert ("slettet efter opbevaringstid", outage) in log
        clock.advance(366 * DAY)
        await staff.tick()  # the access log is kept a year
        assert [e["action"] for e in await staff.register.access_log()] == []


async def test_evacuation_request_goes_to_the_districts_centre_without_names(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    medium = medium_name()
    settings = CitizensConfig(centres={"Nord": (CENTRE.node_id.hex(),)})
    staff_config = hub_config(tmp_path / "staff", STAFF.name, medium, peers=(peer(CENTRE, CENTRE.name),))
    centre_config = hub_config(tmp_path / "centre", CENTRE.name, medium, peers=(peer(STAFF, STAFF.name),))
    async with follow_up(staff_config, STAFF, settings) as staff, running(centre_config, CENTRE) as centre:
        staff.hub.roster.add(CENTRE.card)
        centre.roster.add(STAFF.card)
        await staff.register.import_csv(to_csv(_people()), COORDINATOR)
        outage = await staff.mark_outage(COORDINATOR, districts=["Nord"])
        request = await staff.request_evacuation(COORDINATOR, ["00000001", "00000002"])

        async def arrived() -> bool:
            return bool(await centre.store.inbox())

        await _until(arrived)
        (stored,) = await centre.store.inbox()
        frame = decode_frame(stored.wire)
        assert frame.kind is Kind.RESOURCE_REQUEST and frame.sealed
        body = decode_payload(frame.kind, centre.open_payload(frame))
        assert isinstance(body, dict)
        assert (body["request"], body["resource"], body["quantity"]) == (request, "transport", 2)
        assert "00000001" in body["text"] and "Karen" not in body["text"] and "Skovvej" not in body["text"]
        assert "(ilt, respirator)" in body["text"]  # the centre's staff read the equipment in Danish

        # another staff hub's list naming this hub's own outage changes nothing here
        before = await staff.incidents.entries()
        forged = {"outage": outage, "started": 0, "citizens": [{"id": "00000001", "minutes": 1}]}
        sent = await centre.submit(
            Kind.FOLLOWUP_LIST, STAFF.node_id, encode_payload(Kind.FOLLOWUP_LIST, forged)
        )

        async def refused() -> bool:
            return any(f"outage {outage} belongs to another hub" in r.getMessage() for r in caplog.records)

        await _until(refused)
        assert await staff.hub.store.message(sent) is not None
        assert await staff.incidents.entries() == before and await staff.incidents.source_of(outage) == ""


async def test_a_teams_hub_forgets_a_list_whose_end_it_never_learns(tmp_path: Path) -> None:
    """The team's hub is not told that the power came back: it deletes the outage's rows 30 days plus
    its retention period after the outage began, on its own (manual) clock."""
    team_identity = Identity.generate("Hjemmepleje Nord", "care-home")
    clock = ManualClock(time.time())  # the staff hub's frames carry the real time
    medium = medium_name()
    settings = CitizensConfig(teams={"Nord": (team_identity.node_id.hex(),)})
    staff_config = hub_config(tmp_path / "staff", STAFF.name, medium,
                              peers=(peer(team_identity, team_identity.name),))  # fmt: skip
    team_config = hub_config(tmp_path / "team", team_identity.name, medium, role=Role.CARE_HOME,
                             peers=(peer(STAFF, STAFF.name),))  # fmt: skip
    async with (
        follow_up(staff_config, STAFF, settings) as staff,
        follow_up(team_config, team_identity, CitizensConfig(retention_days=10), clock) as team,
    ):
        staff.hub.roster.add(team_identity.card)
        team.hub.roster.add(STAFF.card)
        await staff.register.import_csv(to_csv(_people()), COORDINATOR)
        await team.register.import_csv(to_csv(_people()), COORDINATOR)
        outage = await staff.mark_outage(COORDINATOR, districts=["Nord"], started=clock.time())

        async def listed() -> bool:
            return len(await team.incidents.entries()) == 2

        await _until(listed)
        await team.record_visit("00000001", "seen_ok", by=COORDINATOR)
        clock.advance(40 * DAY - 60)  # 30 days after the start, then 10 of retention: not yet
        await team.tick()
        assert [o.id for o in await team.incidents.outages()] == [outage]
        assert len(await team.incidents.visits()) == 1
        clock.advance(120)

        async def forgotten() -> bool:  # the hub's own tick deletes it (a test's tick could race it)
            return await team.incidents.outages() == []

        await _until(forgotten)
        assert await team.incidents.entries(active_only=False) == []
        assert len(await team.incidents.visits()) == 0
        assert await team.register.count() == 2  # the register stays
        assert await staff.incidents.outages() != []  # the staff hub keeps it until it is ended


async def test_an_evacuation_request_goes_whole_to_the_one_districts_first_centre_or_not_at_all(
    tmp_path: Path,
) -> None:
    """Citizens of one district go to the centre listed first for it (the nearest), whatever the case of
    the district's name; citizens of two districts, an id on no list, or more ids than the request's
    text can name are refused with a Danish reason, never sent in part or to another district's centre."""
    nord, syd, spare = "a" * 16, "b" * 16, "c" * 16
    settings = CitizensConfig(centres={"nord": (nord,), "Syd": (syd, spare)})
    syd_ids = [f"{0x100 + i:08x}" for i in range(20)]
    people = _people() + [
        Citizen(f"Borger {i}", f"0001{50 + i:02d}-{i:04d}", f"Åvej {i}", "Syd", ("suction",), 4.0, "", "", id)
        for i, id in enumerate(syd_ids)
    ]
    config = hub_config(tmp_path / "staff", STAFF.name, medium_name())
    async with follow_up(config, STAFF, settings, ManualClock(), run=False) as staff:
        await staff.register.import_csv(to_csv(people), COORDINATOR)
        await staff.mark_outage(COORDINATOR, districts=["Nord", "Syd"])
        centre, body = await staff.evacuation(COORDINATOR, ["00000001", "00000002"])
        assert (centre, body["quantity"]) == (nord, 2)
        assert body["text"].endswith(": 00000001 00000002")
        assert (await staff.evacuation(COORDINATOR, ["00000100"]))[0] == syd
        assert (await staff.evacuation(COORDINATOR, ["00000001", "00000100"], centre=spare))[0] == spare

        with pytest.raises(UsageError, match=r"flere distrikter \(Nord, Syd\)"):
            await staff.evacuation(COORDINATOR, ["00000001", "00000100"])
        with pytest.raises(UsageError, match="ikke på nogen aktuel opfølgningsliste: 0000dead; intet sendt"):
            await staff.evacuation(COORDINATOR, ["00000001", "0000dead"])
        with pytest.raises(UsageError, match="20 borgere fylder for meget i én anmodning"):
            await staff.evacuation(COORDINATOR, syd_ids)
        centre, body = await staff.evacuation(COORDINATOR, syd_ids[:12])
        assert centre == syd and all(i in body["text"] for i in syd_ids[:12])
