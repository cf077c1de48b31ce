"""A region of MQTT brokers: two municipalities' site brokers bridged to a regional broker with the bridge
section shipped in ``deploy/mqtt/bridge.conf.example`` (only its address, name and TLS lines adapted to
loopback), and real hubs whose only link is their own site's broker.

The staff hub (holding the root key) sits at site one, a care home that trusts nothing but the root at
site two: the roster versions, a revocation and messages both ways cross two bridges.
"""

from __future__ import annotations

import re
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hubproc import REPO, HubProcess
from tests.hubs.test_entry_points import _sent_when_routed
from tests.hubs.test_municipal_roster import beredt, enrol, roster_version
from tests.mosquitto import Mosquitto, wait_for_bridge

EXAMPLE = REPO / "deploy" / "mqtt" / "bridge.conf.example"
TLS_LINES = ("bridge_cafile", "bridge_certfile", "bridge_keyfile")


def site_bridge(name: str, region: Mosquitto) -> str:
    """The shipped example, pointed at the regional broker on loopback (no TLS certificates here)."""
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        if line.startswith(TLS_LINES):
            continue
        line = line.replace("aarhus", name)
        if line.startswith("address "):
            line = f"address 127.0.0.1:{region.port}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def region() -> Iterator[tuple[Mosquitto, Mosquitto]]:
    """A regional broker and two site brokers bridged to it (a star: no loops)."""
    with tempfile.TemporaryDirectory(prefix="beredt-region-") as folder:
        for name in ("region", "one", "two"):
            (Path(folder) / name).mkdir()
        hub_of_region = Mosquitto(Path(folder) / "region")
        one = Mosquitto(Path(folder) / "one", extra=site_bridge("aarhus", hub_of_region))
        two = Mosquitto(Path(folder) / "two", extra=site_bridge("randers", hub_of_region))
        brokers = (hub_of_region, one, two)
        try:
            for broker in brokers:
                broker.start()
            wait_for_bridge(one, two)
            wait_for_bridge(two, one)
            yield one, two
        finally:
            for broker in brokers:
                broker.kill()


def test_messages_and_roster_updates_cross_a_region_of_bridged_brokers(
    tmp_path: Path, region: tuple[Mosquitto, Mosquitto]
) -> None:
    one, two = region
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff", internet=False)
    b = HubProcess.create(tmp_path / "b", "Plejecenter Solbakken", "care-home", internet=False)
    c = HubProcess.create(tmp_path / "c", "Bofælleskabet Lyngen", "care-home", internet=False)
    a.config["trust"] = {"root": root[1], "root_key": str(tmp_path / "usb" / "root.key")}
    for hub, other, site in ((a, b, one), (b, a, two)):
        hub.add_link("mqtt", {"kind": "mqtt", "brokers": [site.url], "keepalive": 5, "reconnect_max": 1.0})
        hub.add_peer(other, {"mqtt": other.node_id})
        hub.set_default_route([other])
    enrol(b, a, "Plejecenter Solbakken")
    enrol(c, a, "Bofælleskabet Lyngen")  # C never runs: it is enrolled and then revoked
    try:
        b.start()  # a persistent session at its site broker first: nothing the staff hub sends is lost
        a.start()
        b.wait_for("roster version 2 across the region", lambda: roster_version(b) == 2, timeout=60)
        to_b = a.send(b.node_id, "text", "Krisestaben i Aarhus til Solbakken", priority="urgent")
        b.wait_for("the staff's message", lambda: any(m["id"] == to_b for m in b.inbox()), timeout=60)
        to_a = b.send(a.node_id, "text", "Solbakken melder klar", priority="urgent")
        a.wait_for("the care home's message", lambda: any(m["id"] == to_a for m in a.inbox()), timeout=60)
        b.wait_for("its end-to-end ack", lambda: b.message(to_a)["end_to_end_acked"], timeout=60)

        beredt("revoke", c.node_id, "--config", str(a.config_path))
        b.wait_for("the revocation across the region", lambda: roster_version(b) == 3, timeout=60)
        assert c.node_id not in beredt("roster", "list", "--config", str(b.config_path))
    finally:
        a.kill()
        b.kill()


@pytest.mark.timeout(400)  # two real hubs and three brokers on a loaded machine
def test_a_care_home_at_another_site_is_learned_across_the_bridges_with_no_peers(
    tmp_path: Path, region: tuple[Mosquitto, Mosquitto]
) -> None:
    """Route announcements cross the federation too: neither hub names the other, each has only its own
    site's broker, and the care home holds nothing but the root key until the staff hub hands it the
    roster across two bridges."""
    one, two = region
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff", internet=False)
    b = HubProcess.create(tmp_path / "b", "Plejecenter Solbakken", "care-home", internet=False)
    a.config["trust"] = {"root": root[1], "root_key": str(tmp_path / "usb" / "root.key")}
    for hub, site in ((a, one), (b, two)):
        hub.add_link("mqtt", {"kind": "mqtt", "brokers": [site.url], "keepalive": 5, "reconnect_max": 1.0})
    enrol(b, a, "Plejecenter Solbakken")
    try:
        a.start()
        b.start()
        b.wait_for("the roster across the region", lambda: roster_version(b) >= 1, timeout=120)
        to_b = _sent_when_routed(a, b, "Krisestaben til Solbakken")
        b.wait_for("the staff's message", lambda: any(m["id"] == to_b for m in b.inbox()), timeout=60)
        to_a = _sent_when_routed(b, a, "Solbakken melder klar")
        a.wait_for("the care home's message", lambda: any(m["id"] == to_a for m in a.inbox()), timeout=60)
        for hub in (a, b):
            config = tomllib.loads(hub.config_path.read_text())
            assert config["peers"] == [] and not config.get("routes"), f"{hub.name} names a peer or route"
    finally:
        a.kill()
        b.kill()
