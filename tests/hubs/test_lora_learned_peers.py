"""Real hubs: a LoRa-only care home joins with no ``[[peers]]`` line anywhere, and a radio that replays
its frames steers nothing.

Staff hub A holds the root key; relay R has an internet link and a radio; care home C has only a radio.
Each of R and C is installed with the two commands (``beredt enrol`` on it, ``beredt enrol approve`` on
A; R names A as its entry point), and no config names a peer: R finds A through the entry point, C
announces itself on the radio channel, and R learns C at the radio node that signed announcement came
from. A sitrep from A reaches C and C's status reaches A.

Then radio D, no hub behind it, plays C's frames back to R from its own node number: first everything
C ever sent (all already taken, so nothing is learned), one of them with a bit changed (refused as a bad
signature, nothing learned), then a status of C's that R never heard from C
(C's transmissions are lost on the way): that one is new and later than any before, yet R keeps C's
confirmed radio node and says it held the other. Staff's next sitrep still goes to C's radio, and R
puts nothing addressed to D on the air.

Last, C's radio hangs and C is restarted on a new radio E (its link's one line changed, as after a
hardware swap): R holds E while the old radio seems fine, and moves to it once a sitrep to the old one
gets no ACK.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.core.fragment import is_fragment
from simulators.meshtastic_pki import forged_dm
from tests.hubproc import HubProcess
from tests.hubs.test_lora_join import airtime_by_kind
from tests.hubs.test_municipal_roster import beredt, refused, roster_version
from tests.transports.test_lora import MeshInBackground

R, C, D, E = 0xB2, 0xC3, 0xD4, 0xE5
ADDR = {n: f"!{n:08x}" for n in (R, C, D, E)}
PORT = 256  # the private port Beredt frames travel on
SITREP = {"number": 1, "phase": "Initial", "summary": "Strømsvigt i Nord; generatorer kører"}
STATUS = {"facility": "Normal", "text": "Alt vel"}
_packet_ids = itertools.count(0x0BAD0001)


def _install(hub: HubProcess, staff: HubProcess, *entry: HubProcess) -> None:
    """The two commands, and nothing else: no file is edited by hand."""
    shown = beredt(
        "enrol", "--config", str(hub.config_path), f"--root={staff.config['trust']['root']}",
        *(arg for e in entry for arg in ("--entry", e.internet_url)),
    )  # fmt: skip
    code = re.search(r"tilmeldingskode: (\S+)", shown)
    card = re.search(r"^kort: +(.+)$", shown, re.MULTILINE)
    assert code and card, shown
    beredt(
        "enrol", "approve", code[1], "--config", str(staff.config_path), "--card", card[1],
        "--role", hub.role, "--institution", hub.name,
    )  # fmt: skip
    hub.config = tomllib.loads(hub.config_path.read_text())  # what the hub runs with


def _payloads(mesh: MeshInBackground, num: int) -> list[bytes]:
    return mesh.frames_from(num)


def _replay(mesh: MeshInBackground, payloads: list[bytes]) -> None:
    """Radio D puts each payload on the air as its own direct message to R."""

    async def send() -> None:
        for payload in payloads:
            packet = forged_dm(D, R, PORT, payload, mesh.radios[D].public_key or b"")
            packet.id = next(_packet_ids)
            await mesh.medium.flood(D, packet)

    mesh.run(send())


def _lose_from_c(mesh: MeshInBackground, count: int) -> None:
    async def lose() -> None:
        mesh.medium.lose_next(C, count, port=PORT)

    mesh.run(lose())


def _lora_address(hub: HubProcess, of: HubProcess) -> str | None:
    peer = next((p for p in hub.get("/v1/peers")["peers"] if p["node"] == of.node_id), None)
    return None if peer is None else peer["links"].get("lora")


def _learning(hub: HubProcess) -> dict[str, int]:
    counts: dict[str, int] = hub.get("/healthz")["addresses_learned"]
    return counts


def _sent_when_routed(sender: HubProcess, to: HubProcess, kind: str, body: Any) -> str:
    """Send as soon as ``sender`` has a route (until then the API refuses: no route); the message id."""
    sent: list[str] = []

    def accepted() -> bool:
        status, answer = sender.request(
            "POST", "/v1/messages", {"to": to.node_id, "kind": kind, "body": body}
        )
        if status < 300:
            sent.append(answer["id"])
        return status < 300

    sender.wait_for(f"a learned route to {to.name}", accepted, timeout=180)
    return sent[0]


def _arrives(hub: HubProcess, message_id: str, what: str) -> None:
    hub.wait_for(what, lambda: any(m["id"] == message_id for m in hub.inbox()), timeout=120)


@contextlib.contextmanager
def _joined(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, HubProcess, MeshInBackground]]:
    """Staff A, relay R and care home C installed with the two commands each, started, and a sitrep and a
    status exchanged; radios D and E are on the air with no hub behind them."""
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    mesh = MeshInBackground(R, C, D, E)
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff")
    r = HubProcess.create(tmp_path / "r", "Relæ Nord", "relay")
    c = HubProcess.create(tmp_path / "c", "Plejecenter Solbakken", "care-home", internet=False)
    a.config["trust"] = {"root": root[1], "root_key": str(tmp_path / "usb" / "root.key")}
    a.write_config()
    for hub, num in ((r, R), (c, C)):  # the radio itself, as the installer sets it up
        hub.add_link("lora", _radio(mesh, num))
    _install(r, a, a)
    _install(c, a)
    hubs = (a, r, c)
    try:
        for hub in hubs:
            hub.start()
        c.wait_for("the roster over the radio", lambda: roster_version(c) >= 2, timeout=180)
        sitrep = _sent_when_routed(a, c, "sitrep", SITREP)
        _arrives(c, sitrep, "the staff's sitrep")
        status = _sent_when_routed(c, a, "status", STATUS)
        _arrives(a, status, "the care home's status")
        for hub in hubs:
            assert tomllib.loads(hub.config_path.read_text())["peers"] == [], f"{hub.name} names a peer"
        assert _lora_address(r, c) == ADDR[C] and _lora_address(c, r) == ADDR[R]
        r.wait_for("C's radio confirmed", lambda: _learning(r)["confirmed"] >= 1, timeout=120)
        print(
            "on air for the join: care home", airtime_by_kind(mesh, C), "relay", airtime_by_kind(mesh, R)
        )  # frame kind: (frames, seconds of airtime)
        yield a, r, c, mesh
    finally:
        for hub in hubs:
            hub.kill()
        mesh.close()


def _radio(mesh: MeshInBackground, num: int) -> dict[str, Any]:
    return {"kind": "lora", "host": f"127.0.0.1:{mesh.ports[num]}", "connect_timeout": 15, "ack_timeout": 8}


@pytest.mark.timeout(480)  # three real hubs and the mesh on a loaded 2-core machine
def test_a_lora_only_care_home_joins_unconfigured_and_a_replaying_radio_steers_nothing(
    tmp_path: Path,
) -> None:
    with _joined(tmp_path) as (a, r, c, mesh):
        # everything C ever sent, from D: all of it taken before, so it teaches nothing
        _replay(mesh, _payloads(mesh, C))
        # a frame of C's with one bit changed, from D: it fails verification and teaches nothing
        whole = next(p for p in reversed(_payloads(mesh, C)) if not is_fragment(p))
        learned, forged = _learning(r), refused(r, "bad-signature")
        _replay(mesh, [whole[:-1] + bytes([whole[-1] ^ 1])])
        r.wait_for("the altered frame refused", lambda: refused(r, "bad-signature") > forged, timeout=60)
        steered = ("new", "moved", "held", "stale")  # C's own frames meanwhile may count as "same"
        assert [_learning(r)[k] for k in steered] == [learned[k] for k in steered]
        # a status R never heard from C itself: new to R, and later than all C said before (frames are
        # stamped in whole seconds: one made in the same second as C's last is no later than it)
        said = time.time()
        c.wait_for("a later second", lambda: time.time() >= said + 1.0)
        sent_before = len(_payloads(mesh, C))
        _lose_from_c(mesh, 8)  # the first attempt and its retransmissions, and the next attempt's
        unheard = c.send(a.node_id, "status", {"facility": "Normal", "text": "Stadig alt vel"})
        c.wait_for("the status on C's radio", lambda: len(_payloads(mesh, C)) > sent_before, timeout=60)
        judged = _learning(r)
        _replay(mesh, _payloads(mesh, C)[sent_before:])
        _arrives(a, unheard, "the status R took from D")
        # held when R never heard the status from C (the usual case); stale when one of C's own
        # retransmissions still got through first on a loaded machine: either way nothing moves
        r.wait_for(
            "the other radio held (or its frame found stale)",
            lambda: sum(_learning(r)[k] - judged[k] for k in ("held", "stale")) >= 1,
            timeout=60,
        )
        assert _lora_address(r, c) == ADDR[C], "a replaying radio took the care home's address"
        assert _learning(r)["moved"] == 0

        again = a.send(c.node_id, "sitrep", {**SITREP, "number": 2})
        _arrives(c, again, "the next sitrep, at C's own radio")
        to_d = [p for p in list(mesh.radios[R].from_host) if p.to == D]
        assert not to_d, f"R addressed {len(to_d)} packets to the replaying radio"


@pytest.mark.timeout(480)  # three real hubs, one restarted, and the mesh on a loaded 2-core machine
def test_a_care_home_whose_radio_is_replaced_is_found_at_the_new_one(tmp_path: Path) -> None:
    """C's radio hangs and the technician plugs in radio E: R holds E while C's old radio seemed to
    work, and moves to it once a sitrep to the old one gets no ACK (or at once, if R already found the
    old one down)."""
    with _joined(tmp_path) as (a, r, c, mesh):
        c.kill()

        async def hang() -> None:
            mesh.radios[C].mute = True

        mesh.run(hang())
        c.config["links"]["lora"] = _radio(mesh, E)
        c.write_config()
        c.start()
        # held while C's old radio still seems to work; taken at once if R found the old one down first
        # (its check of the hung radio may come before the new radio speaks on a loaded machine)
        r.wait_for(
            "the new radio held or taken",
            lambda: _learning(r)["held"] + _learning(r)["moved"] >= 1,
            timeout=120,
        )
        sitrep = a.send(c.node_id, "sitrep", {**SITREP, "number": 2})
        _arrives(c, sitrep, "the sitrep at the new radio")
        assert _lora_address(r, c) == ADDR[E] and _learning(r)["moved"] >= 1
        status = _sent_when_routed(c, a, "status", {"facility": "Normal", "text": "Ny radio"})
        _arrives(a, status, "the status from the new radio")
