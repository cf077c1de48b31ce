"""Real hubs: a care home that only LoRa reaches joins the municipality and learns its route in minutes.

Staff hub A (holds the root key) and relay R talk over the internet; R and care home C share the fake mesh
(the real ``meshtastic`` library against fake radios), and C has no other link. C is enrolled with one
command on each side and configured with nothing but its radio neighbour R: no [routes], no peer for A.
It starts with no roster, so it refuses R's first announcement; its own announcement says so, R hands it
the roster over the radio, C tells R it has caught up and R tells it its routes again at once. A status
from C then reaches A, and A's end-to-end ack comes back, all well before the 12 h radio announcement.
What R put on the air for the join is measured on the fake medium: one announcement out of pace, within
the announcement budget of 1.8 s an hour, and the one-off hand-off, within the link's airtime budget.
"""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path

import pytest

from hub.core.fragment import decode_fragment, is_fragment
from hub.core.frame import decode_frame
from tests.hubproc import HubProcess
from tests.hubs.test_municipal_roster import beredt, enrol, roster_version
from tests.transports.test_lora import ADDR, MeshInBackground

R, C = 0xB2, 0xC3
ANNOUNCEMENT_BUDGET = 0.05 * 36.0  # seconds an hour: 5 % of the EU868 1 % duty cycle, as bench_routes
PORT = 256  # the private port Beredt frames travel on


def airtime_by_kind(mesh: MeshInBackground, num: int) -> dict[str, tuple[int, float]]:
    """Per frame kind: how many frames the hub behind radio ``num`` put on the air and their airtime, a
    fragmented frame's fragments put together (its retransmissions counted as often as they went out)."""
    spent: dict[str, tuple[int, float]] = {}
    sets: dict[bytes, dict[int, bytes]] = {}
    air: dict[bytes, float] = {}
    counts: dict[bytes, int] = {}
    for packet in list(mesh.radios[num].from_host):
        if packet.decoded.portnum != PORT:
            continue
        data = packet.decoded.payload
        if not is_fragment(data):
            kind = decode_frame(data).kind.name
            count, seconds = spent.get(kind, (0, 0.0))
            spent[kind] = (count + 1, seconds + mesh.medium.airtime_of(packet))
            continue
        fragment = decode_fragment(data)
        sets.setdefault(fragment.set_id, {})[fragment.index] = fragment.chunk
        counts[fragment.set_id] = fragment.count
        air[fragment.set_id] = air.get(fragment.set_id, 0.0) + mesh.medium.airtime_of(packet)
    for set_id, chunks in sets.items():
        if len(chunks) < counts[set_id]:  # still being sent: counted once it is all on the air
            continue
        kind = decode_frame(b"".join(chunks[i] for i in sorted(chunks))).kind.name
        count, seconds = spent.get(kind, (0, 0.0))
        spent[kind] = (count + 1, seconds + air[set_id])
    return spent


def _routes_on_air(mesh: MeshInBackground) -> int:
    return airtime_by_kind(mesh, R).get("ROUTE", (0, 0.0))[0]


def _less(now: tuple[int, float] | None, before: tuple[int, float] | None) -> tuple[int, float]:
    (count, seconds), (count0, seconds0) = now or (0, 0.0), before or (0, 0.0)
    return count - count0, seconds - seconds0


@pytest.mark.timeout(300)  # three real hubs and the mesh; generous for a loaded 2-core machine
def test_a_lora_only_care_home_gets_the_roster_and_its_route_over_the_radio(tmp_path: Path) -> None:
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    mesh = MeshInBackground(R, C)
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff")
    r = HubProcess.create(tmp_path / "r", "Relæ Nord", "relay")
    c = HubProcess.create(tmp_path / "c", "Plejecenter Solbakken", "care-home", internet=False)
    a.config["trust"] = {
        "root": root[1],
        "root_key": str(tmp_path / "usb" / "root.key"),
        "announce_interval": 600,  # its routine repeats never take the radio: not what brings C in
    }
    for hub, num in ((r, R), (c, C)):
        hub.add_link(
            "lora",
            {"kind": "lora", "host": f"127.0.0.1:{mesh.ports[num]}", "connect_timeout": 15, "ack_timeout": 8},
        )
    a.add_peer(r, {"internet": r.internet_url})
    r.add_peer(a, {"internet": a.internet_url})
    r.add_peer(c, {"lora": ADDR[C]})
    c.add_peer(r, {"lora": ADDR[R]})
    enrol(r, a, "Relæ Nord")
    enrol(c, a, "Plejecenter Solbakken")
    hubs = (a, r, c)
    try:
        a.start()
        r.start()
        # the care home is switched on after the new version's broadcast: it missed it, as one installed
        # later does, and has nothing but the root key
        r.wait_for("the relay's roster", lambda: roster_version(r) >= 2, timeout=60)
        # its first announcement on the channel, and the one saying it now holds a roster
        r.wait_for("the relay's own announcements", lambda: _routes_on_air(mesh) >= 2, timeout=60)
        before = airtime_by_kind(mesh, R)
        started = time.monotonic()
        c.start()
        c.wait_for("the roster handed over the radio", lambda: roster_version(c) >= 2, timeout=90)
        print(f"the care home held the roster {time.monotonic() - started:.1f} s after start")

        sent: list[str] = []

        def c_routes_to_a() -> bool:  # refused with "no route" until C has learned R's default
            status, answer = c.request(
                "POST",
                "/v1/messages",
                {"to": a.node_id, "kind": "status", "body": {"facility": "Normal", "text": "Alt vel"}},
            )
            if status < 300:
                sent.append(answer["id"])
            return status < 300

        c.wait_for("a learned route to the staff hub", c_routes_to_a, timeout=90)
        learned = time.monotonic() - started
        print(f"the care home learned its route {learned:.1f} s after start")
        a.wait_for("the care home's status", lambda: any(m["id"] == sent[0] for m in a.inbox()), timeout=90)
        c.wait_for("the end-to-end ack", lambda: c.message(sent[0])["end_to_end_acked"], timeout=90)

        spent = airtime_by_kind(mesh, R)
        routes, route_air = _less(spent.get("ROUTE"), before.get("ROUTE"))
        pages, roster_air = _less(spent.get("ROSTER"), before.get("ROSTER"))
        print(
            f"relay on air for the join: {routes} route announcements {route_air:.2f} s, {pages} roster pages"
            f" {roster_air:.2f} s; all it sent {mesh.medium.airtime_used(R):.2f} s ({spent})"
        )
        assert pages >= 1, "the roster reached the care home over the radio"
        assert routes == 1, "one announcement out of pace: the answer to the care home's catching up"
        assert route_air <= ANNOUNCEMENT_BUDGET
        link = next(x for x in r.get("/v1/links")["links"] if x["link"] == "lora")
        assert (
            roster_air + route_air <= link["details"]["airtime_used_s"] <= link["details"]["airtime_budget_s"]
        )
        config = tomllib.loads(c.config_path.read_text())
        assert not config["routes"] and [p["node"] for p in config["peers"]] == [r.node_id]
    finally:
        for hub in hubs:
            hub.kill()
        mesh.close()
