"""Real hubs: a relay that moves from the internet to the municipality's broker is learned again there.

Staff hub S holds the root key and has an internet link and an MQTT link on a real Mosquitto; relay R has
an internet link and a radio; care home H has only a radio. R and H are installed with the two commands
(R names S as its entry point) and nothing else: no ``[[peers]]`` line, no ``[routes]``, no ``roster
add`` anywhere. S learns H through R from R's announcements over the internet; a sitrep gets there and
its end-to-end ack comes back.

Then R moves: it is restarted with its internet link gone and an MQTT link to the same broker in its
place (as when a relay site loses its municipal line and gets a mobile modem), its config naming no
peer still. S learns R at its node id on the broker from R's signed announcement, learns H through R
again from what R tells it there, and the next sitrep reaches H over MQTT with its end-to-end ack back.
"""

from __future__ import annotations

import contextlib
import re
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hubproc import HubProcess
from tests.hubs.test_lora_learned_peers import SITREP, _arrives, _install, _radio, _sent_when_routed
from tests.hubs.test_municipal_roster import beredt, roster_version
from tests.mosquitto import running_mosquitto
from tests.transports.test_lora import MeshInBackground

R, H = 0xB2, 0xC3  # the radios' node numbers


def _address(hub: HubProcess, of: HubProcess, link: str) -> str | None:
    peer = next((p for p in hub.get("/v1/peers")["peers"] if p["node"] == of.node_id), None)
    return None if peer is None else peer["links"].get(link)


def _via(hub: HubProcess, to: HubProcess) -> list[dict[str, Any]]:
    """The routes ``hub`` holds to ``to``, best first (``GET /v1/routes``)."""
    rows = hub.get("/v1/routes")["routes"]
    return next((r["via"] for r in rows if r["destination"] == to.node_id), [])


def _told_through(hub: HubProcess, to: HubProcess, relay: HubProcess, link: str, since: float) -> bool:
    """Whether ``hub``'s best route to ``to`` is through ``relay``, reached over ``link``, and was told
    by ``relay`` after ``since`` (Unix time)."""
    via = _via(hub, to)
    return (
        bool(via)
        and (via[0]["path"], via[0]["link"]) == ([relay.node_id, to.node_id], link)
        and (via[0]["heard"] > since)
    )


def _acked(sender: HubProcess, message_id: str) -> None:
    sender.wait_for(
        "the end-to-end ack", lambda: bool(sender.message(message_id)["end_to_end_acked"]), timeout=120
    )


@contextlib.contextmanager
def _installed(
    tmp_path: Path, broker_url: str
) -> Iterator[tuple[HubProcess, HubProcess, HubProcess, dict[str, Any]]]:
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    mesh = MeshInBackground(R, H)
    mqtt = {"kind": "mqtt", "brokers": [broker_url], "keepalive": 5, "reconnect_max": 1.0}
    s = HubProcess.create(tmp_path / "s", "Aarhus krisestab", "staff")
    r = HubProcess.create(tmp_path / "r", "Relæ Nord", "relay")
    h = HubProcess.create(tmp_path / "h", "Plejecenter Solbakken", "care-home", internet=False)
    s.config["trust"] = {"root": root[1], "root_key": str(tmp_path / "usb" / "root.key")}
    s.add_link("mqtt", mqtt)
    r.add_link("lora", _radio(mesh, R))
    h.add_link("lora", _radio(mesh, H))
    _install(r, s, s)
    _install(h, s)
    hubs = (s, r, h)
    try:
        for hub in hubs:
            hub.start()
        yield s, r, h, mqtt
    except BaseException:
        for hub in hubs:
            print(f"--- {hub.name} ---\n{hub.log_tail(150)}")
        raise
    finally:
        for hub in hubs:
            hub.kill()
        mesh.close()


@pytest.mark.timeout(500)  # three real hubs, one restarted, a broker and the mesh on a loaded 2-core machine
def test_a_relay_moved_from_internet_to_mqtt_is_learned_again_with_its_care_home(tmp_path: Path) -> None:
    with running_mosquitto() as broker, _installed(tmp_path, broker.url) as (s, r, h, mqtt):
        started = time.monotonic()
        h.wait_for("the roster over the radio", lambda: roster_version(h) >= 2, timeout=180)
        before = _sent_when_routed(s, h, "sitrep", SITREP)
        _arrives(h, before, "the sitrep before the move")
        _acked(s, before)
        assert [(d["next_hop"], d["link"]) for d in s.message(before)["hops"]] == [(r.node_id, "internet")]
        assert _told_through(s, h, r, "internet", since=0)
        joined = time.monotonic()

        # R moves: its internet link is gone, the broker is its way to S; still no peer named
        r.kill()
        del r.config["links"]["internet"]
        r.add_link("mqtt", mqtt)
        restarted = time.time()
        r.start()
        moved = time.monotonic()
        s.wait_for("R learned on the broker", lambda: _address(s, r, "mqtt") == r.node_id, timeout=120)
        s.wait_for(
            "the route to H told again by R over the broker",
            lambda: _told_through(s, h, r, "mqtt", since=restarted),
            timeout=120,
        )
        shown = s.cli("routes")  # as the operator sees it
        line = next((row for row in shown.splitlines() if row.startswith(h.name)), "")
        assert "Relæ Nord" in line and " mqtt " in line, shown
        h.wait_for(  # H's way back, for the end-to-end ack: everything else through R, over the radio
            "R's default over the radio",
            lambda: (
                [(d["next_hop"], d["link"]) for d in h.get("/v1/routes")["defaults"]] == [(r.node_id, "lora")]
            ),
            timeout=120,
        )
        after = _sent_when_routed(s, h, "sitrep", {**SITREP, "number": 2})
        _arrives(h, after, "the sitrep after the move")
        _acked(s, after)
        assert [(d["next_hop"], d["link"]) for d in s.message(after)["hops"]] == [(r.node_id, "mqtt")]
        print(
            f"joined in {joined - started:.1f} s; after the move, the sitrep was acked end to end"
            f" {time.monotonic() - moved:.1f} s after R's restart"
        )
        for hub in (s, r, h):
            config = tomllib.loads(hub.config_path.read_text())
            assert config["peers"] == [] and not config.get("routes"), f"{hub.name} names a peer or route"
