"""The shipped Pi configuration on two machines of a LAN (network namespaces, tests/netns.py).

Each hub runs ``deploy/raspberry-pi/beredt.toml`` as an owner would leave it: the links untouched (the
internet link on ``0.0.0.0:8471`` with no ``public_url``, the MQTT broker and the LoRa radio that this
LAN does not have), only the name, the data folder, the peer and the route edited. Both hubs use the same
ports, as two Pis do. Hop acks must travel back over the LAN: a reply address that only works on one
machine's loopback fails here.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import netns
from tests.deploy.installer import DEPLOY
from tests.hubproc import HubProcess

pytestmark = pytest.mark.skipif(netns.unavailable() is not None, reason=str(netns.unavailable()))

SHIPPED = tomllib.loads((DEPLOY / "beredt.toml").read_text())
API_PORT = int(SHIPPED["api"]["listen"].rpartition(":")[2])
LINK_PORT = int(SHIPPED["links"]["internet"]["listen"].rpartition(":")[2])


def as_the_owner_edits_it(hub: HubProcess, peer: HubProcess, peer_host: netns.Host) -> dict[str, Any]:
    """The shipped file with name, data folder, peer and route set; everything else as shipped."""
    config = tomllib.loads((DEPLOY / "beredt.toml").read_text())
    config["node"]["name"] = hub.name
    config["node"]["data_dir"] = str(hub.dir / "data")
    config["peers"] = [
        {
            "node": peer.node_id,
            "name": peer.name,
            "links": {"internet": f"http://{peer_host.address}:{LINK_PORT}"},
        }
    ]
    config["routes"] = {"default": [peer.node_id]}
    return config


def settled(hub: HubProcess) -> bool:
    return bool(hub.get("/healthz")["open_deliveries"] == 0)


@pytest.fixture
def lan() -> Iterator[list[netns.Host]]:
    with netns.Lan(2) as hosts:
        yield hosts


@pytest.mark.timeout(400)  # generous deadlines for a loaded 2-core machine
def sent_hop_acks(hub: HubProcess) -> bool:
    return int(hub.get("/healthz")["hop_acks_sent"]) > 0


def test_hop_acks_cross_the_lan_with_the_shipped_pi_config(tmp_path: Path, lan: list[netns.Host]) -> None:
    hosts = dict(zip(("staff", "home"), lan, strict=True))
    hubs = {
        "staff": HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff"),
        "home": HubProcess.create(tmp_path / "home", "Plejecenter Solbakken", "care-home"),
    }
    for role, other in (("staff", "home"), ("home", "staff")):
        hub = hubs[role]
        hub.config = as_the_owner_edits_it(hub, hubs[other], hosts[other])
        hub.write_config()
        hub.trust(hubs[other])
        hub.launcher = hosts[role].command()
        hub.opener = hosts[role].opener
        hub.api_port = API_PORT
    try:
        for hub in hubs.values():
            hub.start(timeout=60)
        staff, home = hubs["staff"], hubs["home"]
        message_id = staff.send(home.node_id, "text", "Strømmen er gået; generatoren kører")
        home.wait_for("the message", lambda: any(m["id"] == message_id for m in home.inbox()), timeout=60)
        reply_id = home.send(staff.node_id, "text", "Modtaget, alle beboere er ok")
        staff.wait_for("the reply", lambda: any(m["id"] == reply_id for m in staff.inbox()), timeout=60)
        # An end-to-end ack also settles the message it acknowledges, so a delivered message proves
        # nothing about hop acks; the end-to-end acks themselves are settled only by hop acks. Every
        # delivery on both hubs closed means every hop ack found its way back across the LAN.
        for hub in hubs.values():
            hub.wait_for("every delivery hop-acked", functools.partial(settled, hub), timeout=60)
        # A hub's deliveries settle on the *other* hub's hop acks, and a sender counts a hop ack once its
        # POST has returned, which may be just after the peer acted on it: wait for each count.
        for hub in hubs.values():
            hub.wait_for("a hop ack sent", functools.partial(sent_hop_acks, hub), timeout=30)
    finally:
        for hub in hubs.values():
            hub.stop()
    for hub in hubs.values():
        log = (hub.dir / "hub.log").read_text(errors="replace")
        assert re.search(r"hop ack to \S+ on \S+ failed", log) is None, hub.log_tail()
