"""Real hubs: a care home whose only link is MQTT joins with the two enrolment commands, no ``[[peers]]``.

Staff hub A holds the root key; care home C is installed with ``beredt enrol`` on it and ``beredt enrol
approve`` on A. Both have one link, MQTT on a shared Mosquitto, as the installer sets it up (broker,
nothing else): no config names a peer or a route. C starts with no roster. Each announces itself on the
broadcast topic; A learns C at its node id from C's signed announcement, hands it the roster over the
broker, and C learns A the same way. A sitrep from A reaches C and C's status reaches A, each
end-to-end acked. Then a client on the broker publishes a frame of C's on the topic of another node id:
the topic's sender level is a claim, the signature decides, and A keeps C at C's own node id.
"""

from __future__ import annotations

import re
import time
import tomllib
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.core.frame import Kind
from tests.attacker import sign_as
from tests.hubproc import HubProcess
from tests.hubs.test_lora_learned_peers import (
    SITREP,
    STATUS,
    _arrives,
    _install,
    _learning,
    _sent_when_routed,
)
from tests.hubs.test_municipal_roster import beredt, roster_version
from tests.mosquitto import running_mosquitto

IMPOSTOR = "00000000deadbeef"  # a node id no hub has


def _mqtt_address(hub: HubProcess, of: HubProcess) -> str | None:
    peer = next((p for p in hub.get("/v1/peers")["peers"] if p["node"] == of.node_id), None)
    return None if peer is None else peer["links"].get("mqtt")


def _publish(url: str, topic: str, payloads: list[bytes]) -> None:
    """Publish ``payloads`` on ``topic`` as a plain client on the broker, each acknowledged."""
    host, port = url.removeprefix("mqtt://").split(":")
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"replayer-{time.monotonic_ns()}")
    client.connect(host, int(port))
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1).wait_for_publish(30)
    finally:
        client.loop_stop()
        client.disconnect()


def _captured(url: str, topic: str) -> tuple[paho.Client, list[tuple[str, bytes]]]:
    """A plain MQTT client that records every publication on ``topic`` (a filter)."""
    seen: list[tuple[str, bytes]] = []
    host, port = url.removeprefix("mqtt://").split(":")
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{time.monotonic_ns()}")
    client.on_message = lambda _c, _u, message: seen.append((message.topic, bytes(message.payload)))
    client.connect(host, int(port))
    client.subscribe(topic, qos=1)
    client.loop_start()
    return client, seen


@pytest.mark.timeout(300)  # two real hubs and a broker on a loaded 2-core machine
def test_an_mqtt_only_care_home_joins_with_two_commands_and_no_peers_line(tmp_path: Path) -> None:
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    with running_mosquitto() as broker:
        spy, seen = _captured(broker.url, "beredt/#")
        a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff", internet=False)
        c = HubProcess.create(tmp_path / "c", "Plejecenter Solbakken", "care-home", internet=False)
        a.config["trust"] = {"root": root[1], "root_key": str(tmp_path / "usb" / "root.key")}
        for hub in (a, c):  # the link as the installer sets it up: the municipality's broker, no peers
            hub.add_link(
                "mqtt", {"kind": "mqtt", "brokers": [broker.url], "keepalive": 5, "reconnect_max": 1.0}
            )
        a.write_config()
        _install(c, a)
        hubs = (a, c)
        try:
            a.start()
            started = time.monotonic()
            c.start()
            c.wait_for("the roster over the broker", lambda: roster_version(c) >= 1, timeout=120)
            holds = time.monotonic() - started
            sitrep = _sent_when_routed(a, c, "sitrep", SITREP)
            routed = time.monotonic() - started
            _arrives(c, sitrep, "the staff's sitrep")
            status = _sent_when_routed(c, a, "status", STATUS)
            _arrives(a, status, "the care home's status")
            broadcast = [topic for topic, _ in list(seen) if topic.startswith("beredt/all/")]
            print(
                f"from the care home's start (its process start-up included): it held the roster in"
                f" {holds:.1f} s, the staff hub had a route to it in {routed:.1f} s;"
                f" {len(broadcast)} frames on the broadcast topic"
                f" ({len(broadcast) - broadcast.count(f'beredt/all/{c.node_id}')} from the staff hub)"
            )
            a.wait_for(
                "the status end-to-end acked", lambda: c.message(status)["end_to_end_acked"], timeout=120
            )
            c.wait_for(
                "the sitrep end-to-end acked", lambda: a.message(sitrep)["end_to_end_acked"], timeout=120
            )
            for hub in hubs:
                config = tomllib.loads(hub.config_path.read_text())
                assert config["peers"] == [] and not config.get("routes"), f"{hub.name} names a peer or route"
            assert _mqtt_address(a, c) == c.node_id and _mqtt_address(c, a) == a.node_id

            # A broker client publishes C's frames under another sender level: everything C sent A (all
            # taken before), then a frame C signed that A never had. The topic is a claim; the signature
            # decides: the new frame is taken as C's, and A keeps C at C's own node id.
            learned = _learning(a)
            own = [payload for topic, payload in seen if topic == f"beredt/node/{a.node_id}/in/{c.node_id}"]
            assert own, "C published to A's inbox"
            fresh = sign_as(c, Kind.TEXT, a.node_id, b"Besked fra Solbakken")
            _publish(broker.url, f"beredt/node/{a.node_id}/in/{IMPOSTOR}", [*own, fresh.encode()])
            a.wait_for("C's new frame taken", lambda: any(m["id"] == fresh.id.hex() for m in a.inbox()))
            sitrep2 = a.send(c.node_id, "sitrep", {**SITREP, "number": 2})
            _arrives(c, sitrep2, "the staff's next sitrep")
            assert _mqtt_address(a, c) == c.node_id
            steered = ("new", "moved", "held", "stale")
            assert {k: _learning(a)[k] for k in steered} == {k: learned[k] for k in steered}
            assert a.message(sitrep2)["hops"][0]["hop"] == c.node_id
        except BaseException:
            for hub in hubs:
                print(f"--- {hub.name} ---\n{hub.log_tail(120)}")
            raise
        finally:
            for hub in hubs:
                hub.kill()
            spy.loop_stop()
            spy.disconnect()
