"""Real hubs that trust the municipality's root key, not each other's cards: enrolment with one command on
each side, revocation, and forged or replayed roster versions refused, deltas too (a delta signed by
another key, or the root's signature over a body that was changed).

Topology: staff hub A (holds the root key) with care homes B and C as its peers; B and C route through A.
Nothing is added with ``beredt roster add``: every hub trusts only what the root signed.
"""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.frame import BROADCAST, Kind
from hub.core.identity import PublicCard
from hub.core.kinds.roster import SIGNATURE_SIZE, RosterNode, RosterVersion
from hub.core.kinds.roster_delta import make_delta
from hub.relay.roster_issue import load_root_key
from hub.relay.roster_updates import read_signed
from hub.relay.settings import TrustSettings
from tests.attacker import post_frames, sign_as
from tests.hubproc import BEREDT, REPO, HubProcess

ANNOUNCE = 2.0  # seconds between the staff hub's re-broadcasts
# The revocation must reach every hub within one announcement interval over the internet: with one this
# long the bound holds on a loaded machine, and it is the staff hub's push at once that meets it.
REVOCATION_ANNOUNCE = 60.0


def beredt(*args: str) -> str:
    result = subprocess.run([*BEREDT, *args], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 0, f"beredt {' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def enrol(new: HubProcess, staff: HubProcess, institution: str) -> None:
    """``beredt enrol --root KEY`` on the new node, ``beredt enrol approve`` with what it printed on the
    staff hub: no config edited by hand on either."""
    shown = beredt("enrol", "--config", str(new.config_path), f"--root={staff.config['trust']['root']}")
    code = re.search(r"tilmeldingskode: (\S+)", shown)
    card = re.search(r"^kort: +(.+)$", shown, re.MULTILINE)
    assert code and card, shown
    beredt(
        "enrol", "approve", code[1], "--config", str(staff.config_path), "--card", card[1],
        "--role", new.role, "--institution", institution, "--group", "district-nord",
    )  # fmt: skip


def roster_version(hub: HubProcess) -> int:
    version: int = hub.get("/healthz")["roster_version"]
    return version


def refused(hub: HubProcess, reason: str) -> int:
    count: int = hub.get("/healthz")["refused"].get(reason, 0)
    return count


@pytest.fixture
def network(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[HubProcess, HubProcess, HubProcess]]:
    announce = float(getattr(request, "param", ANNOUNCE))  # a test may ask for another interval
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    assert (tmp_path / "usb" / "root.key").stat().st_mode & 0o777 == 0o600
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff")
    b = HubProcess.create(tmp_path / "b", "Plejecenter Solbakken", "care-home")
    c = HubProcess.create(tmp_path / "c", "Bofælleskabet Lyngen", "care-home")
    a.config["trust"] = {
        "root": root[1],
        "root_key": str(tmp_path / "usb" / "root.key"),
        "announce_interval": announce,
    }
    for home in (b, c):  # links and routes are configured; trust is not
        a.add_peer(home, {"internet": home.internet_url})
        home.add_peer(a, {"internet": a.internet_url})
        home.set_default_route([a])
    enrol(b, a, "Plejecenter Solbakken")  # before anything runs: the staff hub announces it at start
    hubs = (a, b, c)
    try:
        a.start()
        b.start()
        yield hubs  # C is enrolled, then started, by the test
    finally:
        for hub in hubs:
            hub.kill()


@pytest.mark.timeout(400)  # several hubs and a dozen CLI runs: minutes on a loaded machine
@pytest.mark.parametrize("network", [REVOCATION_ANNOUNCE], indirect=True)
def test_enrol_trust_and_revoke_without_editing_a_file(
    network: tuple[HubProcess, HubProcess, HubProcess],
) -> None:
    a, b, c = network
    b.wait_for("roster version 1 from the staff hub", lambda: roster_version(b) == 1)
    to_b = a.send(b.node_id, "text", "Prøvebesked fra krisestaben")
    b.wait_for("the staff's message", lambda: any(m["id"] == to_b for m in b.inbox()))

    enrol(c, a, "Bofælleskabet Lyngen")
    c.start()
    for hub in (a, b, c):
        hub.wait_for("roster version 2", lambda hub=hub: roster_version(hub) == 2, 120)  # type: ignore[misc]
    from_c = c.send(b.node_id, "text", "Lyngen er med i nettet")
    b.wait_for("the new node's message", lambda: any(m["id"] == from_c for m in b.inbox()))
    c.wait_for("its end-to-end ack", lambda: c.message(from_c)["end_to_end_acked"])
    assert all(m["kind"] != "roster" for m in b.inbox()), "roster versions are the hub's, not staff's"
    listed = beredt("roster", "list", "--config", str(b.config_path))
    assert c.node_id in listed and "Bofælleskabet Lyngen" in listed

    beredt("revoke", c.node_id, "--config", str(a.config_path))
    b.wait_for("the revocation within one announcement interval", lambda: roster_version(b) == 3,
               timeout=REVOCATION_ANNOUNCE)  # fmt: skip
    before = refused(a, "revoked")
    stolen = c.send(b.node_id, "text", "Falsk besked fra en stjålet Pi")
    a.wait_for("the revoked node's frame refused", lambda: refused(a, "revoked") > before)
    # B does not hear it directly either: handed straight to B, its next frame is refused there too.
    frame = sign_as(c, Kind.TEXT, b.node_id, b"direkte")
    post_frames(b, [frame.encode()], c.internet_url)
    b.wait_for("the revoked node refused at B", lambda: refused(b, "revoked") >= 1)
    assert all(m["id"] != stolen for m in b.inbox())
    status, answer = a.request("POST", "/v1/messages", {"to": c.node_id, "kind": "text", "body": "hej"})
    assert status == 422 and answer["code"] == "unknown_recipient", (status, answer)
    assert f"node {c.node_id} revoked by roster version 3" in a.log_tail(200)
    assert c.node_id not in beredt("roster", "list", "--config", str(b.config_path))


@pytest.mark.timeout(400)  # several hubs and a dozen CLI runs: minutes on a loaded machine
def test_forged_and_replayed_rosters_are_refused(
    network: tuple[HubProcess, HubProcess, HubProcess], tmp_path: Path
) -> None:
    a, b, c = network
    b.wait_for("roster version 1", lambda: roster_version(b) == 1)
    [old] = [base64.b64decode(line) for line in (a.dir / "data" / "roster.signed").read_text().split()]
    enrol(c, a, "Bofælleskabet Lyngen")
    c.start()
    for hub in (b, c):
        hub.wait_for("roster version 2", lambda hub=hub: roster_version(hub) == 2)  # type: ignore[misc]

    # A care home may not send rosters at all; a thief of the staff hub's own key (not the root key)
    # signs a version with a key that is not the root's, vouching for an intruder and revoking C.
    intruder = PublicCard("Indtrænger", "staff", b"\x01" * 32, b"\x02" * 32)
    forged = RosterVersion(99, 0, (RosterNode(intruder),), frozenset({bytes.fromhex(c.node_id)}))
    [payload] = forged.sign(Ed25519PrivateKey.generate())
    post_frames(b, [sign_as(c, Kind.ROSTER, BROADCAST.hex(), payload).encode()], c.internet_url)
    b.wait_for("a roster from a care home refused", lambda: refused(b, "not-allowed") == 1)
    post_frames(b, [sign_as(a, Kind.ROSTER, BROADCAST.hex(), payload).encode()], a.internet_url)
    b.wait_for("the forged roster refused", lambda: refused(b, "roster-forged") == 1)

    # An old genuine version, replayed in a fresh frame by a trusted node, would drop C again.
    post_frames(b, [sign_as(a, Kind.ROSTER, BROADCAST.hex(), old).encode()], a.internet_url)
    b.wait_for("the old version refused", lambda: refused(b, "roster-stale") == 1)
    assert roster_version(b) == 2
    from_c = c.send(b.node_id, "text", "stadig betroet")
    b.wait_for("C still trusted", lambda: any(m["id"] == from_c for m in b.inbox()))


@pytest.mark.timeout(400)  # several hubs and a dozen CLI runs: minutes on a loaded machine
def test_forged_and_tampered_roster_deltas_are_refused(
    network: tuple[HubProcess, HubProcess, HubProcess], tmp_path: Path
) -> None:
    a, b, c = network
    enrol(c, a, "Bofælleskabet Lyngen")
    c.start()
    # C too: it sends to B below, and B is in C's roster only once C holds version 2
    for hub in (b, c):
        hub.wait_for("roster version 2", lambda hub=hub: roster_version(hub) == 2)  # type: ignore[misc]
    root = load_root_key(TrustSettings(a.config["trust"]["root"], tmp_path / "usb" / "root.key"))
    held, _ = read_signed(b.dir / "data" / "roster.signed", root.public_key())
    # The next version as a thief of the staff hub's key (not the root key) would have it: an intruder
    # trusted as staff, C revoked. A delta from the version B holds, as the root's hub sends them.
    intruder = PublicCard("Indtrænger", "staff", b"\x01" * 32, b"\x02" * 32)
    wanted = held.with_node(RosterNode(intruder), now=int(time.time())).with_revoked(
        bytes.fromhex(c.node_id), now=int(time.time())
    )
    delta = make_delta(held, wanted)
    assert delta is not None
    genuine = delta.sign(root)  # never sent: its signature is what the tampered one borrows
    forged = delta.sign(Ed25519PrivateKey.generate())
    # The root's signature on a delta that only adds the intruder, over a body that also revokes C.
    harmless = make_delta(held, held.with_node(RosterNode(intruder), now=int(time.time())))
    assert harmless is not None
    tampered = harmless.sign(root)[:SIGNATURE_SIZE] + genuine[SIGNATURE_SIZE:]

    for n, payload in enumerate((forged, tampered), start=1):
        frame = sign_as(a, Kind.ROSTER, BROADCAST.hex(), payload)
        assert post_frames(b, [frame.encode()], a.internet_url) == 204
        b.wait_for(f"refused delta {n}", lambda n=n: refused(b, "roster-forged") == n)  # type: ignore[misc]
    assert "roster delta not signed by this municipality's root key" in b.log_tail(200)
    assert roster_version(b) == 2 and refused(b, "revoked") == 0
    listed = beredt("roster", "list", "--config", str(b.config_path))
    assert intruder.node_id.hex() not in listed and c.node_id in listed
    # B keeps working: C is still trusted there, and A still reaches it.
    from_c = c.send(b.node_id, "text", "stadig betroet")
    b.wait_for("C's message", lambda: any(m["id"] == from_c for m in b.inbox()))
    from_a = a.send(b.node_id, "text", "krisestaben her")
    b.wait_for("A's message", lambda: any(m["id"] == from_a for m in b.inbox()))
    assert refused(b, "revoked") == 0 and roster_version(b) == 2


@pytest.mark.timeout(400)  # several hubs and a dozen CLI runs: minutes on a loaded machine
def test_a_hub_offline_during_a_revocation_catches_up_and_keeps_its_version(
    network: tuple[HubProcess, HubProcess, HubProcess],
) -> None:
    a, b, c = network
    enrol(c, a, "Bofælleskabet Lyngen")
    c.start()
    b.wait_for("roster version 2", lambda: roster_version(b) == 2)
    b.kill()
    beredt("revoke", c.node_id, "--config", str(a.config_path))
    c.wait_for("roster version 3 at the others", lambda: roster_version(c) == 3)

    b.start()  # the version it saved is back at once; the newer one comes from A
    assert roster_version(b) >= 2
    b.wait_for("the revocation after being offline", lambda: roster_version(b) == 3, timeout=ANNOUNCE * 10)
    post_frames(b, [sign_as(c, Kind.TEXT, b.node_id, b"efter genstart").encode()], c.internet_url)
    b.wait_for("the revoked node refused", lambda: refused(b, "revoked") >= 1)


@pytest.mark.timeout(300)  # one real hub and a few CLI runs on a loaded machine
def test_messages_queued_to_a_revoked_node_are_reported_undeliverable(tmp_path: Path) -> None:
    """The sender's API, CLI, console and log say the message will never arrive, and why, at once: not
    after it expires."""
    from tests.console.test_hub_process import Browser, add_user

    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff")
    c = HubProcess.create(tmp_path / "c", "Bofælleskabet Lyngen", "care-home")  # never runs
    a.config["trust"] = {
        "root": root[1],
        "root_key": str(tmp_path / "usb" / "root.key"),
        "announce_interval": 600.0,
    }
    a.add_peer(c, {"internet": c.internet_url})
    enrol(c, a, "Bofælleskabet Lyngen")
    add_user(a, "hansen", "coordinator")
    try:
        a.start()
        queued = a.send(c.node_id, "text", "Husk medicinlisten")
        assert a.message(queued)["state"] == "active"

        beredt("revoke", c.node_id, "--config", str(a.config_path))
        a.wait_for("the message withdrawn", lambda: a.message(queued)["state"] == "revoked")
        message = a.message(queued)
        assert "tilbagekaldt" in message["reason"] and message["end_to_end_acked"] is False
        assert [h["state"] for h in message["hops"]] == ["revoked"], "it left every queue"
        shown = a.cli("message", queued)
        assert message["reason"] in shown and "ikke leveret: modtageren er tilbagekaldt" in shown, shown
        console = Browser(a)
        console.login("hansen")
        status, body = console.call("GET", "sent")
        assert status == 200, body
        row = next(r for r in body["sent"] if r["id"] == queued)
        assert (row["state"], row["why"]) == ("failed", "revoked")
        log = a.log_tail(200)
        assert f"message {queued} to {c.node_id} not delivered: its recipient was revoked" in log
        assert "1 messages from this hub to it reported undeliverable" in log
    finally:
        a.kill()
