"""Two real hubs that share nothing but MQTT (no internet link at all).

They exchange signed messages with end-to-end acks over one Mosquitto and over two bridged ones,
survive the broker dying mid-flight (every accepted message delivered exactly once after it returns),
and refuse frames that an outside MQTT client drops into a hub's inbox topic.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.hubproc import HubProcess
from tests.mosquitto import Mosquitto, bridged_mosquittos, running_mosquitto


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with running_mosquitto() as broker:
        yield broker


@contextlib.contextmanager
def two_hubs(folder: Path, url_a: str, url_b: str) -> Iterator[tuple[HubProcess, HubProcess]]:
    """A staff hub on ``url_a`` and a care-home hub on ``url_b``, with MQTT as their only link."""
    a = HubProcess.create(folder / "a", "Aarhus krisestab", "staff", internet=False)
    b = HubProcess.create(folder / "b", "Plejecenter Solbakken", "care-home", internet=False)
    for hub, other, url in ((a, b, url_a), (b, a, url_b)):
        hub.add_link("mqtt", {"kind": "mqtt", "brokers": [url], "keepalive": 5, "reconnect_max": 1.0})
        hub.add_peer(other, {"mqtt": other.node_id})
        hub.set_default_route([other])
        hub.trust(other)
    a.start()
    b.start()
    try:
        yield a, b
    except BaseException:
        for hub in (a, b):  # shown by pytest with the failure
            exit_code = hub.process.poll() if hub.process else None
            print(f"--- {hub.name} (exit code {exit_code}) ---\n{hub.log_tail(200)}")
        raise
    finally:
        a.kill()
        b.kill()


@pytest.fixture
def hubs(tmp_path: Path, broker: Mosquitto) -> Iterator[tuple[HubProcess, HubProcess]]:
    with two_hubs(tmp_path, broker.url, broker.url) as pair:
        yield pair


def delivered(hub: HubProcess, ids: list[str]) -> list[str]:
    return [m["id"] for m in hub.inbox() if m["id"] in set(ids)]


def test_signed_messages_cross_mqtt_with_end_to_end_acks(hubs: tuple[HubProcess, HubProcess]) -> None:
    a, b = hubs
    message_id = a.send(b.node_id, "text", "Generatoren kører; brændstof til 30 timer", priority="urgent")
    b.wait_for("the message", lambda: message_id in delivered(b, [message_id]))
    received = next(m for m in b.inbox() if m["id"] == message_id)
    assert received["from"] == a.node_id
    assert received["body"] == "Generatoren kører; brændstof til 30 timer"
    a.wait_for("the end-to-end ack", lambda: a.message(message_id)["end_to_end_acked"])
    hop = a.message(message_id)["hops"][0]
    assert hop["hop"] == b.node_id
    assert hop["state"] == "hop-acked"

    reply = b.send(a.node_id, "text", "Modtaget")
    a.wait_for("the reply", lambda: reply in delivered(a, [reply]))


@pytest.mark.parametrize(
    "outage", [pytest.param(0.0, id="broker-back-at-once"), pytest.param(3.0, id="broker-down-3s")]
)
def test_broker_death_mid_flight_loses_and_duplicates_nothing(
    hubs: tuple[HubProcess, HubProcess], broker: Mosquitto, outage: float
) -> None:
    a, b = hubs
    sent = [a.send(b.node_id, "text", f"besked {i}") for i in range(20)]
    broker.kill()
    sent += [
        a.send(b.node_id, "text", f"besked {i}") for i in range(20, 40)
    ]  # accepted while the link is down
    time.sleep(outage)
    broker.start()
    sent += [a.send(b.node_id, "text", f"besked {i}") for i in range(40, 50)]

    b.wait_for("all 50 messages", lambda: len(set(delivered(b, sent))) == 50, timeout=15)
    assert sorted(delivered(b, sent)) == sorted(sent), "every accepted message exactly once"
    a.wait_for(
        "every end-to-end ack", lambda: all(a.message(i)["end_to_end_acked"] for i in sent), timeout=20
    )


def test_frames_forged_by_an_outside_client_are_refused(
    hubs: tuple[HubProcess, HubProcess], broker: Mosquitto
) -> None:
    a, b = hubs
    outsider = paho.Client(CallbackAPIVersion.VERSION2)
    outsider.connect("127.0.0.1", broker.port)
    outsider.loop_start()
    try:
        # claims to come from a; one garbage payload and one truncated copy of nothing in particular
        for payload in (b"\x01not a frame at all", bytes(range(200))):
            outsider.publish(f"beredt/node/{b.node_id}/in/{a.node_id}", payload, qos=1).wait_for_publish(10)
    finally:
        outsider.disconnect()
        outsider.loop_stop()
    b.wait_for("both refusals counted", lambda: sum(b.get("/healthz")["refused"].values()) >= 2)
    assert b.get("/healthz")["accepted_inbound"] == 0
    message_id = a.send(b.node_id, "text", "stadig her")  # the link still carries genuine frames
    b.wait_for("the genuine message", lambda: message_id in delivered(b, [message_id]))
    assert [m["id"] for m in b.inbox()] == [message_id]


def test_hubs_on_two_bridged_brokers_talk_end_to_end(tmp_path: Path) -> None:
    with (
        bridged_mosquittos() as (site_one, site_two),
        two_hubs(tmp_path, site_one.url, site_two.url) as (a, b),
    ):
        message_id = a.send(b.node_id, "text", "Over broen", priority="urgent")
        b.wait_for("the message", lambda: message_id in delivered(b, [message_id]))
        a.wait_for("the end-to-end ack", lambda: a.message(message_id)["end_to_end_acked"])
