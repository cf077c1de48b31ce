"""Real ``beredt run`` processes over a real Mosquitto, driven by the ``beredt citizens`` CLI: the staff
hub imports a fictitious register, marks an outage, the team's hub shows its list with names from its
own register, an evacuation request reaches the district's centre, and neither a spy subscribed to
``#`` on the broker nor a copy of either ``citizens.db`` holds a name, CPR number or address."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.citizens.desk import Desk
from hub.citizens.records import to_csv
from hub.citizens.register import CITIZENS_DB, Reader
from hub.citizens.sample import sample_citizens
from hub.cli.main import main
from hub.core.clock import SystemClock
from tests.hubproc import HubProcess
from tests.hubs.test_sealed_on_air import Spy
from tests.mosquitto import running_mosquitto


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, Spy]]:
    with running_mosquitto() as broker:
        spy = Spy(broker)
        staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff", internet=False)
        team = HubProcess.create(tmp_path / "team", "Hjemmepleje Nord", "care-home", internet=False)
        for hub, other in ((staff, team), (team, staff)):
            hub.add_link("mqtt", {"kind": "mqtt", "brokers": [broker.url], "keepalive": 5})
            hub.add_peer(other, {"mqtt": other.node_id})
            hub.set_default_route([other])
            hub.trust(other)
        # a margin of 48 h, beyond any sample battery: everyone not yet seen raises an alarm at once
        staff.config["citizens"] = {
            "teams": {"Nord": [team.node_id]},
            "tick_interval": 0.5,
            "alarm_hours": 48,
            "centres": {"Nord": [team.node_id]},  # the team's hub stands in for the evacuation centre
        }
        staff.write_config()
        try:
            yield staff, team, spy
        finally:
            spy.close()
            staff.kill()
            team.kill()


def _rows(hub: HubProcess) -> list[dict[str, Any]]:
    """The hub's follow-up list read from its own files (as the CLI does, without starting one)."""

    async def read() -> list[dict[str, Any]]:
        desk = await Desk.open(hub.dir / "data", SystemClock())
        try:
            return await desk.followup_view(Reader("test", "coordinator"))
        finally:
            await desk.aclose()

    return asyncio.run(read())


def _db_bytes(hub: HubProcess) -> bytes:
    return b"".join(p.read_bytes() for p in (hub.dir / "data").iterdir() if p.name.startswith(CITIZENS_DB))


@pytest.mark.timeout(300)  # two hubs, a broker and about twenty CLI processes on a loaded 2-core machine
def test_outage_from_the_cli_reaches_the_team_and_nothing_personal_leaks(
    network: tuple[HubProcess, HubProcess, Spy], tmp_path: Path
) -> None:
    staff, team, spy = network
    # the register goes in with the CLI's own code in this process (no hub runs yet): quicker than a
    # process per command, and the commands that need a running hub below are real processes
    people = sample_citizens(12, ["Nord", "Syd"])
    register = tmp_path / "borgere.csv"
    register.write_text(to_csv(people))
    assert main(["citizens", "import", str(register), "-c", str(staff.config_path)]) == 0
    nord = tmp_path / "nord.csv"
    with contextlib.redirect_stdout(io.StringIO()) as exported:
        assert main(["citizens", "export", "--district", "Nord", "-c", str(staff.config_path)]) == 0
    nord.write_text(exported.getvalue())
    assert main(["citizens", "import", str(nord), "-c", str(team.config_path)]) == 0

    staff.start()
    team.start()
    out = staff.cli("citizens", "outage", "--district", "Nord")
    outage = out.split()[1]
    assert "6 borgere på opfølgningslisten" in out  # built by the CLI itself; the hub sends it

    team.wait_for("the Nord list on the team's hub", lambda: len(_rows(team)) == 6, timeout=60)
    rows = json.loads(team.cli("citizens", "list", "--json"))
    assert {r["district"] for r in rows} == {"Nord"} and all(r["name"] for r in rows)
    assert [r["hours_left"] for r in rows] == sorted(r["hours_left"] for r in rows)
    staff_rows = _rows(staff)
    assert [r["id"] for r in staff_rows] == [r["id"] for r in rows] and staff_rows[0]["outage"] == outage

    # a nurse on the team's hub records a visit from the shell; the running team hub sends it on
    first = str(rows[0]["id"])
    assert "registreret: mangler strøm" in team.cli("citizens", "visit", first, "needs_power")
    at = datetime.fromtimestamp(float(str(_rows(team)[0]["visited_at"])), UTC).isoformat()
    assert "allerede registreret" in team.cli("citizens", "visit", first, "needs_power", "--at", at)

    # the coordinator asks the district's evacuation centre for transport from the shell
    second = str(rows[1]["id"])
    out = staff.cli("citizens", "evacuate", first, second)
    assert f"Evakuering anmodet hos {team.node_id}: 2 borgere" in out

    def outcome() -> object:
        return next(r["outcome"] for r in _rows(staff) if r["id"] == first)

    staff.wait_for("the visit on the staff hub", lambda: outcome() == "needs_power", timeout=60)
    table = staff.cli("citizens", "list")
    assert "timer tilbage" in table and "mangler strøm" in table and "ALARM" in table

    # the alarms reached the coordinator's log book, and the register's access log names who read it
    staff.wait_for(
        "six alarms in the log book", lambda: staff.cli("log", "export").count("ALARM: Borger") == 6
    )
    assert all(r["alarm"] for r in _rows(staff))
    access = staff.cli("citizens", "log")
    assert "import" in access and "strømsvigt markeret" in access and "opfølgningsliste læst" in access
    assert "evakuering anmodet" in access

    requests: list[dict[str, Any]] = []

    def evacuation_arrived() -> bool:
        inbox = json.loads(team.cli("inbox", "--json"))
        requests[:] = [m for m in inbox if m["kind"] == "resource_request"]
        return bool(requests)

    team.wait_for("the evacuation request at the centre", evacuation_arrived, timeout=60)
    (request,) = requests
    assert request["priority"] == "life-safety" and request["sealed"] and request["body"]["quantity"] == 2
    assert first in request["body"]["text"] and second in request["body"]["text"]

    assert spy.seen, "the spy heard nothing: it is not listening"
    for person in people:
        cpr_digits = person.cpr.replace("-", "")
        for value in filter(None, (person.name, person.cpr, cpr_digits, person.address, person.contact,
                                   person.backup)):  # fmt: skip
            assert not spy.saw(value), f"the broker carried {value!r}"
            for hub in (staff, team):
                assert value.encode() not in _db_bytes(hub), f"{hub.name}'s citizens.db holds {value!r}"
