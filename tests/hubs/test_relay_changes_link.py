"""Real hubs: a relay whose internet path to the staff hub dies is followed onto MQTT, no config edited.

Topology: staff hub S, relay R and care home C, three ``beredt run`` processes with no [routes] anywhere;
S has no [[peers]] line for C. C reaches R over the internet. S and R reach each other over the internet,
through a TCP forwarder each way that the test cuts (the municipal network failing between the staff
building and the relay's site), and over a real Mosquitto both share. S learns C through R from R's
announcements; a message gets there. Then the forwarders are cut, both ways, live connections included:
S's only remaining way to R is MQTT, so the message sent after the cut reaching C, and its end-to-end
ack reaching S, proves the learned route followed R onto the other link: told again over MQTT, and
nothing in any file changed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.topology import free_port
from tests.hubproc import HubProcess
from tests.mosquitto import running_mosquitto


class Forwarder:
    """Listens on a local port and forwards every connection to ``target``, until ``cut``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # cut
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._cut:
                    client.close()
                    upstream.close()
                    return
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            self._listener.close()
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


def _sent_when_routed(sender: HubProcess, to: HubProcess, body: str) -> str:
    """Send ``body`` as soon as ``sender`` has a route to ``to`` (refused with "no route" until then)."""
    sent: list[str] = []

    def routed() -> bool:
        status, answer = sender.request(
            "POST", "/v1/messages", {"to": to.node_id, "kind": "text", "body": body}
        )
        if status < 300:
            sent.append(answer["id"])
        return status < 300

    sender.wait_for(f"a route to {to.name}", routed, timeout=120)
    return sent[0]


def _link_state(hub: HubProcess, link: str, peer: HubProcess) -> str:
    rows = hub.get("/v1/links")["links"]
    return next((r["state"] for r in rows if r["link"] == link and r["peer"] == peer.node_id), "none")


@contextlib.contextmanager
def _hubs(
    folder: Path, broker_url: str
) -> Iterator[tuple[HubProcess, HubProcess, HubProcess, list[Forwarder]]]:
    staff = HubProcess.create(folder / "s", "Aarhus krisestab", "staff")
    relay = HubProcess.create(folder / "r", "Relæ Nord", "relay")
    home = HubProcess.create(folder / "c", "Plejecenter Solbakken", "care-home")
    to_relay, to_staff = Forwarder(relay.link_port), Forwarder(staff.link_port)
    mqtt = {"kind": "mqtt", "brokers": [broker_url], "keepalive": 5, "reconnect_max": 1.0}
    for hub in (staff, relay):
        hub.add_link("mqtt", mqtt)
    staff.add_peer(relay, {"internet": to_relay.url, "mqtt": relay.node_id})
    relay.add_peer(staff, {"internet": to_staff.url, "mqtt": staff.node_id})
    relay.add_peer(home, {"internet": home.internet_url})
    home.add_peer(relay, {"internet": relay.internet_url})
    for hub in (staff, relay, home):
        hub.trust(*(other for other in (staff, relay, home) if other is not hub))
    try:
        for hub in (staff, relay, home):
            hub.start()
        yield staff, relay, home, [to_relay, to_staff]
    except BaseException:
        for hub in (staff, relay, home):
            print(f"--- {hub.name} ---\n{hub.log_tail(120)}")
        raise
    finally:
        for forwarder in (to_relay, to_staff):
            forwarder.cut()
        for hub in (home, relay, staff):
            hub.stop()


@pytest.mark.timeout(500)  # three real hubs and a broker on a loaded 2-core machine
def test_the_route_through_a_relay_follows_it_from_internet_to_mqtt(tmp_path: Path) -> None:
    with running_mosquitto() as broker, _hubs(tmp_path, broker.url) as (staff, relay, home, forwarders):
        configs = {hub: hub.config_path.read_text() for hub in (staff, relay, home)}
        before = _sent_when_routed(staff, home, "før")
        home.wait_for("the message before the cut", lambda: any(m["id"] == before for m in home.inbox()), 60)
        staff.wait_for(
            "the internet link to the relay up", lambda: _link_state(staff, "internet", relay) == "up", 60
        )

        for forwarder in forwarders:
            forwarder.cut()
        staff.wait_for(
            "the internet link to the relay down",
            lambda: _link_state(staff, "internet", relay) == "down",
            120,
        )
        after = _sent_when_routed(staff, home, "efter")
        home.wait_for("the message after the cut", lambda: any(m["id"] == after for m in home.inbox()), 120)
        staff.wait_for("its end-to-end ack", lambda: staff.message(after)["end_to_end_acked"], 120)
        assert [hop["link"] for hop in staff.message(after)["hops"]] == ["mqtt"]
        assert {hub: hub.config_path.read_text() for hub in (staff, relay, home)} == configs
