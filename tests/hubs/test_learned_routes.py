"""Real hubs that learn their routes: a new care home, enrolled with one command on each side and told
only its own relay, is reached from the staff hub two hops away, with no [routes] anywhere and no other
hub's config touched.

Topology: staff hub A (holds the root key) - relay R - care home C. A and R know each other's address;
C knows R's (its own config, written at installation); R learns C's from C's signed announcements.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from tests.hubproc import HubProcess
from tests.hubs.test_municipal_roster import beredt, enrol, roster_version


def test_an_enrolled_care_home_is_reached_through_its_relay_without_routes(tmp_path: Path) -> None:
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff")
    r = HubProcess.create(tmp_path / "r", "Relæ Nord", "relay")
    c = HubProcess.create(tmp_path / "c", "Plejecenter Solbakken", "care-home")
    a.config["trust"] = {
        "root": root[1],
        "root_key": str(tmp_path / "usb" / "root.key"),
        "announce_interval": 2.0,
    }
    a.add_peer(r, {"internet": r.internet_url})
    r.add_peer(a, {"internet": a.internet_url})
    c.add_peer(r, {"internet": r.internet_url})
    enrol(r, a, "Relæ Nord")
    try:
        a.start()
        r.start()
        config_before = {h: h.config_path.read_text() for h in (a, r)}
        enrol(c, a, "Plejecenter Solbakken")
        c.start()
        c.wait_for("roster version 2 through the relay", lambda: roster_version(c) == 2, timeout=120)

        sent: list[str] = []

        def a_routes_to_c() -> bool:  # refused with "no route" until A has learned one
            status, answer = a.request(
                "POST", "/v1/messages", {"to": c.node_id, "kind": "text", "body": "hej"}
            )
            if status < 300:
                sent.append(answer["id"])
            return status < 300

        a.wait_for("a learned route to the new care home", a_routes_to_c, timeout=120)
        c.wait_for("the staff hub's message", lambda: any(m["id"] == sent[0] for m in c.inbox()), timeout=60)
        replies: list[str] = []

        def c_routes_to_a() -> bool:  # the care home learns its route back on its own announcement round
            status, answer = c.request(
                "POST", "/v1/messages", {"to": a.node_id, "kind": "text", "body": "Solbakken er med"}
            )
            if status < 300:
                replies.append(answer["id"])
            return status < 300

        c.wait_for("a learned route back to the staff hub", c_routes_to_a, timeout=120)
        a.wait_for(
            "the care home's answer", lambda: any(m["id"] == replies[0] for m in a.inbox()), timeout=60
        )
        assert {h: h.config_path.read_text() for h in (a, r)} == config_before
        assert all(not tomllib.loads(h.config_path.read_text())["routes"] for h in (a, r, c))  # none at all
    finally:
        for hub in (c, r, a):
            hub.stop()
