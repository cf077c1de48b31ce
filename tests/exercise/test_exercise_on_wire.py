"""Every frame an exercise makes is marked Exercise on the wire: a spy on the broker two real hubs share
decodes every frame that crosses it during an exercise. The exercise's messages and roll-call, the care
home's answer and read receipt, and every acknowledgement of them (hop acks and end-to-end acks) carry
CAP status Exercise in the signed flags; a real message sent meanwhile, and its acks, stay Actual."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hub.core.errors import ProtocolError
from hub.core.frame import Frame, Kind, Status, decode_frame
from hub.relay.acks import decode_ids
from tests.console.test_hub_process import Browser, add_user
from tests.hubproc import HubProcess
from tests.mosquitto import Mosquitto, running_mosquitto

SCENARIO = """
name = "Oversvømmelse ved åen"
duration = "1h"

[participants]
groups = ["plejehjem"]

[[injects]]
at = "0s"
kind = "message"
text = "Åen går over sine bredder"

[[injects]]
at = "1s"
kind = "rollcall"
text = "Står der vand i kælderen?"
"""

ACKS = (Kind.ACK, Kind.HOP_ACK)


class FrameSpy:
    """Every frame published on the broker, decoded, from the moment it subscribes."""

    def __init__(self, broker: Mosquitto) -> None:
        self._frames: list[Frame] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="wire-spy")
        self.client.on_connect = lambda client, *_: client.subscribe("#", qos=0)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._record
        host, _, port = broker.url.removeprefix("mqtt://").partition(":")
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert self._subscribed.wait(15), "the spy could not subscribe to '#'"

    def _record(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if message.topic.endswith("/presence"):
            return
        try:
            frame = decode_frame(bytes(message.payload))
        except ProtocolError:
            return  # not a whole frame (none is cut up on MQTT): nothing a status could be read from
        with self._lock:
            self._frames.append(frame)

    def frames(self) -> list[Frame]:
        with self._lock:
            return list(self._frames)

    def acked(self, kind: Kind) -> dict[bytes, list[Frame]]:
        """Message id -> the ``kind`` acks that named it."""
        out: dict[bytes, list[Frame]] = {}
        for frame in self.frames():
            if frame.kind is kind:
                for message_id in decode_ids(frame.payload):
                    out.setdefault(message_id, []).append(frame)
        return out

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, FrameSpy]]:
    """A staff hub and a care home with MQTT as their only link, console users on both, and a spy."""
    with running_mosquitto() as broker:
        spy = FrameSpy(broker)
        staff = HubProcess.create(tmp_path / "staff", "Kommune", "staff", internet=False)
        home = HubProcess.create(tmp_path / "home", "Solbakken", "care-home", internet=False)
        staff.add_link("mqtt", {"kind": "mqtt", "brokers": [broker.url], "keepalive": 5})
        home.add_link("mqtt", {"kind": "mqtt", "brokers": [broker.url], "keepalive": 5})
        staff.config["peers"].append(
            {
                "node": home.node_id,
                "name": home.name,
                "groups": ["plejehjem"],
                "links": {"mqtt": home.node_id},
            }
        )
        home.add_peer(staff, {"mqtt": staff.node_id})
        staff.set_default_route([home])
        home.set_default_route([staff])
        staff.trust(home)
        home.trust(staff)
        add_user(home, "solbakken", "institution", "--institution", home.node_id)
        staff.start()
        home.start()
        try:
            yield staff, home, spy
        finally:
            spy.close()
            staff.kill()
            home.kill()


@pytest.mark.timeout(400)  # real processes on a loaded 2-core machine
def test_every_frame_of_an_exercise_is_marked_exercise_on_the_wire(
    network: tuple[HubProcess, HubProcess, FrameSpy], tmp_path: Path
) -> None:
    staff, home, spy = network
    scenario = tmp_path / "aa.toml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    staff.cli("exercise", "start", str(scenario), "--by", "hansen")
    home.wait_for("the inject and the roll-call", lambda: len(home.inbox()) >= 2, timeout=60)
    inject = next(m for m in home.inbox() if m["kind"] == "text")

    # the care home answers as it would for real: a status from the console, and "læst og forstået"
    console = Browser(home)
    console.login("solbakken")
    status, answer = console.call("POST", "status", {"preset": "help", "text": "Vand i kælderen"})
    assert status == 202, answer
    answered = answer["id"]
    status, answer = console.call("POST", f"read/{inject['id']}", None)
    assert status == 202, answer
    receipt = answer["id"]
    # and a real message goes the other way meanwhile, chosen as real
    real = staff.cli("send", "text", home.node_id, "Vandværket melder driftsstop", "--actual").split()[0]

    ours = {bytes.fromhex(i) for i in (inject["id"], answered, receipt, real)}
    ours |= {bytes.fromhex(m["id"]) for m in home.inbox() if m["kind"] == "rollcall"}

    def every_one_acked_both_ways() -> bool:
        hop, e2e = spy.acked(Kind.HOP_ACK), spy.acked(Kind.ACK)
        return all(message_id in hop and message_id in e2e for message_id in ours)

    staff.wait_for("hop and end-to-end acks of every message", every_one_acked_both_ways, timeout=60)
    staff.cli("exercise", "end", "--by", "hansen")

    frames = spy.frames()
    by_id = {f.id: f for f in frames if f.kind not in ACKS}
    assert ours <= set(by_id), "the spy missed a message: it is not listening"
    statuses = {message_id: by_id[message_id].status for message_id in ours}
    assert statuses.pop(bytes.fromhex(real)) is Status.ACTUAL
    assert set(statuses.values()) == {Status.EXERCISE}, statuses
    assert by_id[bytes.fromhex(receipt)].kind is Kind.READ_RECEIPT
    controls = [f for f in frames if f.kind is Kind.EXERCISE_CONTROL]
    assert controls and {f.status for f in controls} == {Status.EXERCISE}

    # every ack on the wire has the status of what it acknowledges: an exercise's acks are the exercise's
    checked = {Kind.ACK: 0, Kind.HOP_ACK: 0}
    for ack in (f for f in frames if f.kind in ACKS):
        named = [by_id[i].status for i in decode_ids(ack.payload) if i in by_id]
        assert set(named) <= {ack.status}, f"{ack.kind.name} marked {ack.status.name} acks {named}"
        if ack.status is Status.EXERCISE and named:
            checked[ack.kind] += 1
    assert checked[Kind.ACK] >= 1 and checked[Kind.HOP_ACK] >= 1, checked
