"""A spy on the broker sees no personal data: every kind sent by the console, the API or the CLI, to one
hub, to a group or to all, crosses a real Mosquitto sealed, and the receiving hub still reads it.

The spy is an ordinary MQTT client subscribed to ``#`` on the broker both hubs use, as the broker's
operator or anyone with its credentials could be. A message marked public is the control: the spy must
see that one, or it is not listening.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.console.test_hub_process import Browser, add_user
from tests.hubproc import HubProcess
from tests.mosquitto import Mosquitto, running_mosquitto

NAME = "Karen Jensen"
CPR = "010203-1234"
PERSONAL = f"{NAME} {CPR}"  # 24 bytes: fits every free-text field, even a status's
CARE_HOMES = "group:plejehjem"  # the care home's group, as the staff hub's config names it


class Spy:
    """Every topic and payload the broker carries, from the moment it connects."""

    def __init__(self, broker: Mosquitto) -> None:
        self.seen: list[bytes] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="spy")
        self.client.on_connect = lambda client, *_: client.subscribe("#", qos=0)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._record
        host, _, port = broker.url.removeprefix("mqtt://").partition(":")
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self._subscribed.wait(15), "the spy could not subscribe to '#'"

    def _record(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.seen.append(message.topic.encode() + b"\x00" + bytes(message.payload))

    def saw(self, text: str) -> bool:
        with self._lock:
            return any(text.encode() in item for item in self.seen)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, Spy]]:
    """A staff hub and a care home with MQTT as their only link, console users on both, and a spy."""
    with running_mosquitto() as broker:
        spy = Spy(broker)
        staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff", internet=False)
        home = HubProcess.create(tmp_path / "home", "Plejecenter Lindely", "care-home", internet=False)
        for hub, other in ((staff, home), (home, staff)):
            hub.add_link("mqtt", {"kind": "mqtt", "brokers": [broker.url], "keepalive": 5})
            hub.add_peer(other, {"mqtt": other.node_id})
            hub.set_default_route([other])
            hub.trust(other)
        for hub, group in ((staff, "plejehjem"), (home, "krisestab")):  # each names the other's group
            hub.config["peers"][0]["groups"] = [group]
            hub.write_config()
        add_user(staff, "hansen", "coordinator")
        add_user(home, "lindely", "institution", "--institution", home.node_id)
        staff.start()
        home.start()
        try:
            yield staff, home, spy
        finally:
            spy.close()
            staff.kill()
            home.kill()


def test_a_broker_spy_sees_no_name_or_cpr_number_from_any_kind_or_sender(
    network: tuple[HubProcess, HubProcess, Spy],
) -> None:
    staff, home, spy = network
    everyone = "*"
    sent: dict[str, HubProcess] = {}  # message id -> the hub that must read it

    # the API: every kind a client may post, to the care home, to its group and to everyone
    bodies: dict[str, Any] = {
        "text": PERSONAL,
        "sitrep": {"number": 1, "phase": "Initial", "summary": f"{PERSONAL} evakueret til Hallen"},
        "alert": {"event": "Evakuering", "urgency": "Immediate", "severity": "Severe",
                  "certainty": "Observed", "description": f"Hent {PERSONAL}"},
        "resource-request": {"request": "0000beef", "resource": "oxygen", "quantity": 2,
                             "text": f"Ilt til {PERSONAL}"},
        "commitment": {"request": "0000beef", "resource": "oxygen", "quantity": 2, "text": PERSONAL},
        "rollcall": {"request": "00ff10ab", "deadline": 4_000_000_000, "question": f"Er {PERSONAL} hentet?"},
        "read-receipt": {"message": "00112233445566778899aabbccddeeff", "by": PERSONAL},
    }  # fmt: skip
    for kind, body in bodies.items():
        for to in (home.node_id, everyone):
            sent[staff.send(to, kind, body)] = home
        status, answer = staff.request("POST", "/v1/messages", {"to": CARE_HOMES, "kind": kind, "body": body})
        assert status == 202, answer
        sent.update(dict.fromkeys((m["id"] for m in answer["messages"]), home))
    sent[home.send(staff.node_id, "status", {"facility": "Compromised", "text": PERSONAL})] = staff
    sent[home.send(everyone, "status", {"facility": "Compromised", "text": PERSONAL})] = staff
    status, answer = home.request(
        "POST",
        "/v1/messages",
        {"to": "group:krisestab", "kind": "status", "body": {"facility": "Compromised", "text": PERSONAL}},
    )
    assert status == 202, answer
    sent.update(dict.fromkeys((m["id"] for m in answer["messages"]), staff))

    # the CLI, to one, to a group and to all
    def cli_send(hub: HubProcess, *args: str) -> str:
        printed = re.search(r"\b[0-9a-f]{32}\b", hub.cli("send", *args))
        assert printed, "beredt send printed no message id"
        return printed.group()

    for to in (home.node_id, everyone):
        sent[cli_send(staff, "text", to, PERSONAL)] = home
    group_answer = json.loads(staff.cli("send", "sitrep", CARE_HOMES, "--json", "--body", json.dumps(
        {"number": 2, "phase": "Update", "summary": f"{PERSONAL} er hentet"})))  # fmt: skip
    sent.update(dict.fromkeys((m["id"] for m in group_answer["messages"]), home))
    sent[cli_send(home, "status", staff.node_id, "facility=Compromised", f"text={PERSONAL}")] = staff

    # the console: the composer, every kind it writes, to one, to a group and to all; a roll-call; and
    # the care home's status button
    coordinator, institution = Browser(staff), Browser(home)
    coordinator.login("hansen")
    institution.login("lindely")
    numbers = iter(range(10, 20))  # the console refuses a sitrep number it has sent before
    for kind in ("text", "sitrep", "alert", "resource-request", "commitment"):
        for to in (home.node_id, CARE_HOMES, everyone):  # to everyone: one message per institution
            body = {**bodies[kind], "number": next(numbers)} if kind == "sitrep" else bodies[kind]
            request = {"kind": kind, "to": to, "body": body}
            status, answer = coordinator.call("POST", "messages", request)
            assert status == 202, answer
            sent.update(dict.fromkeys(answer["ids"], home))
    question = f"Er {PERSONAL} flyttet til Hallen?"
    status, answer = coordinator.call("POST", "rollcalls", {"question": question})
    assert status == 202, answer
    status, answer = institution.call("POST", "status", {"preset": "help", "text": PERSONAL})
    assert status == 202, answer
    sent[answer["id"]] = staff

    # the control: marked public, it crosses in clear
    sent[staff.send(home.node_id, "text", "Offentlig advarsel: vandet stiger", public=True)] = home

    def read_by_recipient(hub: HubProcess) -> bool:
        expected = {m for m, reader in sent.items() if reader is hub}
        bodies = {m["id"]: m["body"] for m in hub.inbox() if m["id"] in expected}
        return len(bodies) == len(expected) and all(
            "Offentlig" in str(body) or NAME in str(body) for body in bodies.values()
        )

    home.wait_for("every message opened at the care home", lambda: read_by_recipient(home), timeout=60)
    home.wait_for(
        "the console's roll-call opened at the care home",
        lambda: any(question in str(m["body"]) for m in home.inbox()),
        timeout=60,
    )
    staff.wait_for("every message opened at the staff hub", lambda: read_by_recipient(staff), timeout=60)
    staff.wait_for("the spy to see the public control", lambda: spy.saw("Offentlig advarsel"))
    assert len(spy.seen) > len(sent)
    assert not spy.saw(NAME) and not spy.saw(CPR), "personal data crossed the broker in clear"
