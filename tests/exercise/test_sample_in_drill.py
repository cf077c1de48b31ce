"""The drill's sample scenario fits the drill's world as ``beredt simulate`` writes it: every participant
and the outage's hub are in the staff hub's roster by name, the outage's link is one that hub has, and
that hub has another link to the staff hub to fail over to; the plan is valid from any morning start."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from drill.topology import SITES, SimAddresses, create_hubs, write_configs
from hub.exercise.scenario import InjectKind, load
from hub.relay.roster import Roster
from hub.service import config as config_module
from hub.service.node_identity import load_identity

SAMPLE = Path(__file__).parents[2] / "config" / "exercises" / "drill.toml"


def test_the_drill_sample_resolves_in_the_drills_world(tmp_path: Path) -> None:
    plans = create_hubs(tmp_path)
    for plan in plans.values():  # as the drill sets it once its proxies listen
        plan.public_url = f"http://127.0.0.1:{plan.internet_port}"
    sims = SimAddresses(
        "mqtt://127.0.0.1:1883",
        {site.key: 4403 for site in SITES},
        {site.key: tmp_path / f"{site.key}-sine" for site in SITES},
        {site.key: tmp_path / f"{site.key}-modem" for site in SITES},
        "http://127.0.0.1:8080",
    )
    write_configs(plans, sims)
    (staff,) = [plan for plan in plans.values() if plan.site.role == "staff"]
    config = config_module.load(staff.config_path)
    roster = Roster.load(load_identity(config, create=False).card, config.roster_path)
    names = {entry.name for entry in roster}

    scenario, _ = load(str(SAMPLE))
    assert scenario.participants.nodes and set(scenario.participants.nodes) <= names
    outages = [i for i in scenario.injects if i.kind == InjectKind.OUTAGE]
    assert outages
    for outage in outages:
        (plan,) = [p for p in plans.values() if p.site.name == outage.hub]
        links = config_module.load(plan.config_path).links
        staff_peer = next(p for p in config_module.load(plan.config_path).peers if p.name == staff.site.name)
        assert outage.link in {link.name for link in links}
        assert set(staff_peer.links) - {outage.link}, f"{outage.hub} has no other link to fail over to"
    start = datetime(2026, 12, 7, 8, 0, tzinfo=ZoneInfo("Europe/Copenhagen")).timestamp()
    assert len(scenario.timeline(start, ZoneInfo("Europe/Copenhagen"))) == len(scenario.injects)
