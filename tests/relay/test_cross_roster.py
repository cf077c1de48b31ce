"""Another municipality's roster, trusted through our root's cross-certificate: only within its scope and
validity, never over our own nodes, gone when our root stops vouching, and kept across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.core.clock import ManualClock
from hub.core.errors import RefusalReason, TrustError
from hub.core.frame import BROADCAST, Kind
from hub.core.identity import Identity, PublicCard
from hub.core.kinds.cross_cert import CrossCertificate
from hub.core.kinds.roster import RosterNode, RosterVersion, verify
from hub.relay.admission import Admission
from hub.relay.roster import Role, Roster
from hub.relay.roster_updates import RosterUpdates

OURS, THEIRS = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
THEIR_ROOT = THEIRS.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
ME = Identity.generate("Aarhus krisestab", "staff")
OUR_HOME = Identity.generate("Solbakken", "care-home")
THEIR_STAFF = Identity.generate("Randers krisestab", "staff")
THEIR_HOME = Identity.generate("Vestergården", "care-home")
NOW = 1_800_000_000


def _cert(*roles: str, groups: tuple[str, ...] = (), until: int = NOW + 3600) -> CrossCertificate:
    return CrossCertificate(THEIR_ROOT, "Randers Kommune", roles, groups, until)


def _offer(updates: RosterUpdates, version: RosterVersion, key: Ed25519PrivateKey) -> None:
    for payload in version.sign(key):
        collector, page = updates.check_any(payload)
        collector.apply(page, payload)


OUR_V1 = RosterVersion(1, NOW, (RosterNode(ME.card), RosterNode(OUR_HOME.card)), cross=(_cert("staff"),))
THEIR_V1 = RosterVersion(
    1, NOW, (RosterNode(THEIR_STAFF.card, groups=("stab",)), RosterNode(THEIR_HOME.card, groups=("stab",)))
)


def _hub(folder: Path, clock: ManualClock | None = None) -> tuple[Roster, RosterUpdates, Admission]:
    roster = Roster(ME.card)
    updates = RosterUpdates(roster, OURS.public_key(), folder)
    _offer(updates, OUR_V1, OURS)
    _offer(updates, THEIR_V1, THEIRS)
    return roster, updates, Admission(roster, clock or ManualClock(NOW), updates)


def test_cross_certificates_survive_signing_and_paging() -> None:
    many = RosterVersion(
        3,
        NOW,
        tuple(RosterNode(Identity.generate(f"n{i}", "relay").card) for i in range(80)),
        cross=OUR_V1.cross,
    )
    pages = [verify(p, OURS.public_key()) for p in many.sign(OURS)]
    assert len(pages) > 1 and all(p.version.cross == OUR_V1.cross for p in pages)


def test_their_staff_is_trusted_within_scope_and_their_care_home_is_out_of_scope(tmp_path: Path) -> None:
    roster, updates, admission = _hub(tmp_path)
    entry = roster.get(THEIR_STAFF.node_id)
    assert entry is not None and entry.role is Role.STAFF and entry.municipality == "Randers Kommune"
    assert entry.valid_until == NOW + 3600, "no longer than the cross-certificate"
    assert roster.get(THEIR_HOME.node_id) is None and roster.out_of_scope(THEIR_HOME.node_id)
    frame = THEIR_HOME.sign(Kind.TEXT, ME.node_id, b"hej", created=NOW, ttl_minutes=10)
    with pytest.raises(TrustError) as refused:
        admission.check(frame, "test")
    assert refused.value.reason is RefusalReason.OUT_OF_SCOPE
    assert THEIR_STAFF.node_id not in {e.node_id for e in roster}, "not addressed by groups or broadcasts"
    assert updates.foreign[THEIR_ROOT].version == 1


def test_groups_narrow_the_scope(tmp_path: Path) -> None:
    roster, updates, _ = _hub(tmp_path)
    _offer(updates, RosterVersion(2, NOW, OUR_V1.nodes, cross=(_cert("staff", groups=("beredskab",)),)), OURS)
    assert roster.get(THEIR_STAFF.node_id) is None, "their staff hub is in no group we named"


def test_their_root_cannot_revoke_change_or_add_to_our_nodes(tmp_path: Path) -> None:
    roster, updates, _ = _hub(tmp_path)
    promoted = Identity.generate("x", "staff")
    hostile = RosterVersion(
        2,
        NOW,
        (
            RosterNode(THEIR_STAFF.card),
            RosterNode(
                PublicCard(OUR_HOME.name, "staff", OUR_HOME.card.signing_key, OUR_HOME.card.sealing_key)
            ),
            RosterNode(promoted.card),
        ),
        revoked=frozenset({ME.node_id, OUR_HOME.node_id}),
        cross=(CrossCertificate(b"\x01" * 32, "Ingen", ("staff",), (), NOW + 99),),
    )
    _offer(updates, hostile, THEIRS)
    home = roster.get(OUR_HOME.node_id)
    assert home is not None and home.role is Role.CARE_HOME and not home.municipality, "our word wins"
    assert roster.get(ME.node_id) is not None and not roster.is_revoked(OUR_HOME.node_id)
    assert roster.get(promoted.node_id) is not None, "their own staff node is theirs to add"
    assert set(updates.foreign) == {THEIR_ROOT}, "their cross-certificates are not followed"


def test_a_forged_or_unknown_roots_roster_is_refused(tmp_path: Path) -> None:
    _, updates, _ = _hub(tmp_path)
    with pytest.raises(TrustError) as refused:
        updates.check_any(THEIR_V1.sign(Ed25519PrivateKey.generate())[0])
    assert refused.value.reason is RefusalReason.ROSTER_FORGED
    _offer(updates, RosterVersion(2, NOW, THEIR_V1.nodes), THEIRS)
    with pytest.raises(TrustError) as stale:
        updates.check_any(THEIR_V1.sign(THEIRS)[0])
    assert stale.value.reason is RefusalReason.ROSTER_STALE, "a replayed older version of theirs"


def test_an_expired_cross_certificate_refuses_their_nodes(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    _, _, admission = _hub(tmp_path, clock)
    frame = THEIR_STAFF.sign(Kind.TEXT, BROADCAST, b"hej", created=NOW + 3601, ttl_minutes=10)
    clock.advance(3601)
    with pytest.raises(TrustError) as refused:
        admission.check(frame, "test")
    assert refused.value.reason is RefusalReason.EXPIRED


def test_our_root_ending_it_drops_their_nodes_and_file_and_a_restart_keeps_it(tmp_path: Path) -> None:
    roster, updates, _ = _hub(tmp_path)
    kept = tmp_path / f"roster.{THEIR_ROOT.hex()[:16]}.signed"
    assert kept.exists()
    restarted = Roster(ME.card)
    again = RosterUpdates(restarted, OURS.public_key(), tmp_path)
    assert again.load() and restarted.get(THEIR_STAFF.node_id) is not None, "kept across a restart"
    _offer(updates, OUR_V1.without_cross(THEIR_ROOT, now=NOW), OURS)
    assert roster.get(THEIR_STAFF.node_id) is None and not updates.foreign and not kept.exists()
    with pytest.raises(TrustError):
        updates.check_any(THEIR_V1.sign(THEIRS)[0])
