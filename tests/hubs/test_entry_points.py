"""Real hubs: a care home joins with no [[peers]] at all, and a relay that moves is found again.

A care home is installed with two commands: ``beredt enrol --root KEY --entry URL`` on it (which writes
the root key and the municipality's entry point into its config) and ``beredt enrol approve`` on the
staff hub. Its config then names no peer and no route: it announces itself to the entry point, the relay
there learns it from that signed announcement, and it learns the relay from the relay's own.

Topology: staff hub A (holds the root key) with relays R1 and R2 as configured peers; care home C knows
only the entry points.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.hubproc import HubProcess
from tests.hubs.test_municipal_roster import beredt, enrol, roster_version


def _municipality(
    tmp_path: Path, relays: int, *, announce_interval: float = 2.0
) -> tuple[HubProcess, list[HubProcess]]:
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    staff = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff")
    staff.config["trust"] = {
        "root": root[1],
        "root_key": str(tmp_path / "usb" / "root.key"),
        "announce_interval": announce_interval,
    }
    staff.write_config()
    relay_hubs = []
    for i in range(relays):
        relay = HubProcess.create(tmp_path / f"r{i + 1}", f"Relæ {i + 1}", "relay")
        staff.add_peer(relay, {"internet": relay.internet_url})
        relay.add_peer(staff, {"internet": staff.internet_url})
        enrol(relay, staff, f"Relæ {i + 1}")
        relay_hubs.append(relay)
    return staff, relay_hubs


def _install_care_home(tmp_path: Path, staff: HubProcess, entry: list[HubProcess]) -> HubProcess:
    """The two commands, and nothing else: no file is edited by hand. The Pi's config carries the name
    every Pi from one image has; the coordinator names it in the roster."""
    home = HubProcess.create(tmp_path / "c", "Beredt hub", "care-home")
    entries = [arg for relay in entry for arg in ("--entry", relay.internet_url)]
    shown = beredt(
        "enrol", "--config", str(home.config_path), f"--root={staff.config['trust']['root']}", *entries
    )
    code = re.search(r"tilmeldingskode: (\S+)", shown)
    card = re.search(r"^kort: +(.+)$", shown, re.MULTILINE)
    assert code and card, shown
    approved = beredt(
        "enrol", "approve", code[1], "--config", str(staff.config_path), "--card", card[1],
        "--role", "care-home", "--institution", "Plejecenter Solbakken", "--name", "Plejecenter Solbakken",
    )  # fmt: skip
    row = next(line for line in approved.splitlines() if line.startswith(home.node_id))
    assert "Plejecenter Solbakken" in row and "Beredt hub" not in row, approved
    written = tomllib.loads(home.config_path.read_text())
    assert written["trust"]["entry"] == [relay.internet_url for relay in entry]
    assert written["peers"] == [] and written["routes"] == {}
    home.config = written  # what the hub runs with: the file as the command left it
    return home


def _sent_when_routed(sender: HubProcess, to: HubProcess, body: str) -> str:
    """Send as soon as ``sender`` has a route (until then the API refuses: no route); the message id."""
    sent: list[str] = []

    def accepted() -> bool:
        status, answer = sender.request(
            "POST", "/v1/messages", {"to": to.node_id, "kind": "text", "body": body}
        )
        if status < 300:
            sent.append(answer["id"])
        return status < 300

    sender.wait_for(f"a learned route to {to.name}", accepted, timeout=120)
    return sent[0]


def _delivered(sender: HubProcess, to: HubProcess, body: str) -> None:
    message_id = _sent_when_routed(sender, to, body)
    to.wait_for(f"{body!r}", lambda: any(m["id"] == message_id for m in to.inbox()), timeout=60)


@pytest.mark.timeout(400)  # three real hubs on a loaded 2-core machine
def test_a_care_home_joins_through_its_entry_point_with_no_peers_configured(tmp_path: Path) -> None:
    staff, (relay,) = _municipality(tmp_path, 1)
    home = _install_care_home(tmp_path, staff, [relay])
    try:
        staff.start()
        relay.start()
        home.start()
        home.wait_for("the roster through the relay", lambda: roster_version(home) >= 2, timeout=120)
        _delivered(staff, home, "hej Solbakken")
        _delivered(home, staff, "Solbakken er med")
        learned = {p["node"]: p for p in home.get("/v1/peers")["peers"]}
        assert relay.node_id in learned
    finally:
        for hub in (home, relay, staff):
            hub.stop()


@pytest.mark.timeout(400)  # three real hubs on a loaded 2-core machine
def test_a_relay_hands_its_roster_to_a_care_home_it_just_learned(tmp_path: Path) -> None:
    """The staff hub re-broadcasts its roster only hourly here, and the relay passed the one broadcast on
    before the care home ran: only the relay's hand-off to its new neighbour can give the care home the
    roster it needs to take anyone's frames."""
    staff, (relay,) = _municipality(tmp_path, 1, announce_interval=3600.0)
    home = _install_care_home(tmp_path, staff, [relay])
    try:
        staff.start()
        relay.start()
        relay.wait_for("the roster with the care home", lambda: roster_version(relay) >= 2, timeout=120)
        home.start()
        home.wait_for("the roster from the relay", lambda: roster_version(home) >= 2, timeout=120)
        assert "handed to neighbour " + home.node_id in relay.log_tail(400)
        _delivered(home, staff, "Solbakken er med")
    finally:
        for hub in (home, relay, staff):
            hub.stop()


@pytest.mark.timeout(400)  # four real hubs, one stopped and one started, on a loaded machine
def test_a_care_home_whose_relay_stops_is_found_again_through_another_entry_point(tmp_path: Path) -> None:
    staff, (first, second) = _municipality(tmp_path, 2)
    home = _install_care_home(tmp_path, staff, [first, second])
    configs = {h: h.config_path.read_text() for h in (staff, first, second, home)}
    try:
        staff.start()
        first.start()  # the second relay is not running yet: the care home finds the first
        home.start()
        _delivered(staff, home, "før flytningen")
        first.stop()
        second.start()  # the care home's link now goes through the second relay
        _delivered(staff, home, "efter flytningen")
        _delivered(home, staff, "Solbakken er stadig med")
        assert {h: h.config_path.read_text() for h in configs} == configs  # no config edited
    finally:
        for hub in (home, second, first, staff):
            hub.stop()
