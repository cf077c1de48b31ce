"""Two municipalities' staff hubs in a joint incident, with real processes: each root cross-certifies the
other's staff hubs (``beredt root cross-certify``), then messages go both ways with end-to-end acks. A forged
cross-certificate, a care home outside the scope, the other root "revoking" or "promoting" one of our nodes,
our root's revocation of the cross-certificate and one that expired are all refused across the process
boundary.

Topology: staff hub A (Aarhus, root A) and staff hub B (Randers, root B), peers over the internet link.
Care homes a_home (enrolled by root A) and b_home (enrolled by root B) do not run: their keys sign frames
posted straight to A, as a stolen or misbehaving Pi would.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.frame import BROADCAST, Kind
from hub.core.kinds.cross_cert import CrossCertificate
from hub.core.kinds.roster import RosterNode, RosterVersion, enrolment_code, parse_root_public
from tests.attacker import identity_of, post_frames, sign_as
from tests.hubproc import HubProcess
from tests.hubs.test_municipal_roster import ANNOUNCE, beredt, enrol, refused, roster_version

WAIT = 120.0  # a loaded two-core machine: hub starts and CLI runs take seconds each


def _root(tmp_path: Path, name: str) -> tuple[str, Path]:
    key = tmp_path / name / "root.key"
    out = beredt("root", "init", "--out", str(key))
    found = re.search(r'root = "([^"]+)"', out)
    assert found, out
    return found[1], key


def _raw_root(text: str) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return parse_root_public(text).public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture
def municipalities(tmp_path: Path) -> Iterator[dict[str, HubProcess]]:
    hubs: dict[str, HubProcess] = {}
    for label, name in (("a", "Aarhus krisestab"), ("b", "Randers krisestab")):
        root, key = _root(tmp_path, f"usb-{label}")
        hub = hubs[label] = HubProcess.create(tmp_path / label, name, "staff")
        hub.config["trust"] = {"root": root, "root_key": str(key), "announce_interval": ANNOUNCE}
    a, b = hubs["a"], hubs["b"]
    a.add_peer(b, {"internet": b.internet_url})
    b.add_peer(a, {"internet": a.internet_url})
    hubs["a_home"] = HubProcess.create(tmp_path / "a_home", "Plejecenter Solbakken", "care-home")
    hubs["b_home"] = HubProcess.create(tmp_path / "b_home", "Plejecenter Vestergården", "care-home")
    for staff in (a, b):
        staff.write_config()
    enrol(hubs["a_home"], a, "Plejecenter Solbakken")
    enrol(hubs["b_home"], b, "Plejecenter Vestergården")
    try:
        a.start()
        b.start()
        yield hubs
    finally:
        a.kill()
        b.kill()


def cross_certify(staff: HubProcess, other: HubProcess, *extra: str) -> str:
    return beredt(
        "root", "cross-certify", "--config", str(staff.config_path),
        "--name", other.name.split()[0] + " Kommune", *extra,
        "--", other.config["trust"]["root"],  # after "--": a key may start with "-"
    )  # fmt: skip


def holds(hub: HubProcess, other: str, version: int) -> bool:
    return int(hub.get("/healthz")["cross_certified"].get(other, -1)) >= version


def posted_refused(
    victim: HubProcess, signer: HubProcess, kind: Kind, reason: str, payload: bytes = b"fra en anden kommune"
) -> bool:
    """Post one frame signed by ``signer`` to ``victim``; True if it was refused for ``reason``."""
    seen = refused(victim, reason)
    frame = sign_as(signer, kind, victim.node_id, payload)
    post_frames(victim, [frame.encode()], signer.internet_url)
    return refused(victim, reason) > seen


@pytest.mark.timeout(600)
def test_two_municipalities_talk_after_cross_certifying_and_only_within_the_scope(
    municipalities: dict[str, HubProcess],
) -> None:
    a, b, a_home, b_home = (municipalities[k] for k in ("a", "b", "a_home", "b_home"))
    for hub in (a, b):
        hub.wait_for("its own roster", lambda hub=hub: roster_version(hub) >= 1, timeout=WAIT)

    # A forged cross-certificate: a version "of root A" vouching for B, signed by a key that is not A's.
    forged_version = RosterVersion(
        roster_version(a) + 5, int(time.time()), (RosterNode(identity_of(b).card),),
        cross=(CrossCertificate(_raw_root(b.config["trust"]["root"]), "Randers", ("staff",),
                                valid_until=int(time.time()) + 3600),),
    )  # fmt: skip
    forged = forged_version.sign(Ed25519PrivateKey.generate())[0]
    before = refused(a, "roster-forged")
    post_frames(a, [sign_as(b, Kind.ROSTER, BROADCAST.hex(), forged).encode()], b.internet_url)
    a.wait_for("the forged cross-certificate refused", lambda: refused(a, "roster-forged") > before)
    status, _ = a.request("POST", "/v1/messages", {"to": b.node_id, "kind": "text", "body": "hej"})
    assert status >= 400, "a forged cross-certificate made B's staff hub trusted"

    # Both roots cross-certify the other's staff hubs only.
    shown = cross_certify(a, b, "--role", "staff")
    assert "krydscertificeret" in shown, shown
    cross_certify(b, a, "--role", "staff")
    a.wait_for("B's roster at A", lambda: holds(a, "Randers Kommune", 1), timeout=WAIT)
    b.wait_for("A's roster at B", lambda: holds(b, "Aarhus Kommune", 1), timeout=WAIT)

    to_b = a.send(b.node_id, "text", "Aarhus til Randers: vi sender to busser")
    b.wait_for("A's message at B", lambda: any(m["id"] == to_b for m in b.inbox()), timeout=WAIT)
    a.wait_for("B's end-to-end ack", lambda: a.message(to_b)["end_to_end_acked"], timeout=WAIT)
    to_a = b.send(a.node_id, "text", "Randers til Aarhus: modtaget")
    a.wait_for("B's message at A", lambda: any(m["id"] == to_a for m in a.inbox()), timeout=WAIT)
    b.wait_for("A's end-to-end ack", lambda: b.message(to_a)["end_to_end_acked"], timeout=WAIT)

    # B's care home is in B's roster, but outside the scope A's root signed.
    a.wait_for("B's care home refused", lambda: posted_refused(a, b_home, Kind.TEXT, "out-of-scope"))

    # B's root "revokes" A's care home and "promotes" it to staff: A's hubs keep A's word.
    b_version = roster_version(b)
    beredt("revoke", a_home.node_id, "--config", str(b.config_path))
    a.wait_for("B's revoking version at A", lambda: holds(a, "Randers Kommune", b_version + 1), timeout=WAIT)
    from_home = sign_as(a_home, Kind.TEXT, a.node_id, b"Solbakken stadig her")
    post_frames(a, [from_home.encode()], a_home.internet_url)
    a.wait_for("A's care home still heard", lambda: any(m["id"] == from_home.id.hex() for m in a.inbox()))
    card = identity_of(a_home).card
    beredt(
        "enrol", "approve", enrolment_code(card), "--card", card.encode(), "--role", "staff",
        "--config", str(b.config_path),
    )  # fmt: skip
    a.wait_for("B's promoting version at A", lambda: holds(a, "Randers Kommune", b_version + 2), timeout=WAIT)
    a.wait_for(
        "A's care home still a care home", lambda: posted_refused(a, a_home, Kind.ROLLCALL, "not-allowed")
    )

    # A's root ends the cross-certificate: B's staff hub is a stranger again.
    cross_certify(a, b, "--revoke")
    a.wait_for(
        "B's staff hub refused", lambda: posted_refused(a, b, Kind.TEXT, "unknown-sender"), timeout=WAIT
    )
    assert "Randers Kommune" not in a.get("/healthz")["cross_certified"]

    # A cross-certificate that has run out: B's staff hub is refused as expired, even carrying B's roster
    # (which vouches for it as it did before).
    cross_certify(a, b, "--role", "staff", "--valid-days", str(20 / 86400))
    b_roster = base64.b64decode((b.dir / "data" / "roster.signed").read_text().split()[0])
    a.wait_for(
        "B refused once its certificate ran out",
        lambda: posted_refused(a, b, Kind.ROSTER, "expired", b_roster),
        timeout=WAIT,
    )
