"""Root-signed roster versions: what a hub trusts from them, what it refuses, what survives a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.clock import ManualClock
from hub.core.errors import ConfigError, RefusalReason, TrustError
from hub.core.frame import BROADCAST, MAX_PAYLOAD, Frame, Kind
from hub.core.identity import Identity
from hub.core.kinds.roster import (
    RosterNode,
    RosterPage,
    RosterVersion,
    enrolment_code,
    parse_root_public,
    root_public_text,
    verify,
)
from hub.relay.admission import Admission
from hub.relay.roster import Role, Roster
from hub.relay.roster_updates import RosterUpdates

ROOT = Ed25519PrivateKey.generate()
ME = Identity.generate("Plejecenter Solbakken", "care-home")
STAFF = Identity.generate("Aarhus krisestab", "staff")
HOME = Identity.generate("Lyngen", "care-home")
OTHER = Identity.generate("Stjålet", "care-home")
CLOCK = ManualClock()


def _hub(folder: Path) -> tuple[Roster, RosterUpdates, Admission]:
    roster = Roster(ME.card)
    updates = RosterUpdates(roster, ROOT.public_key(), folder)
    return roster, updates, Admission(roster, CLOCK, updates)


def _version(number: int, *nodes: RosterNode, revoked: frozenset[bytes] = frozenset()) -> RosterVersion:
    return RosterVersion(number, int(CLOCK.time()), nodes, revoked)


def _apply(updates: RosterUpdates, version: RosterVersion) -> bool:
    """Offer every page of ``version`` as the inbound pipeline does; True if the last one applied it."""
    return [updates.apply(updates.check(p), p) for p in version.sign(ROOT)][-1]


def _frame(sender: Identity, kind: Kind, payload: bytes) -> Frame:
    return sender.sign(kind, BROADCAST, payload, created=int(CLOCK.time()), ttl_minutes=10)


def test_a_version_is_applied_persisted_and_only_moves_forward(tmp_path: Path) -> None:
    roster, updates, _ = _hub(tmp_path)
    v1 = _version(1, RosterNode(STAFF.card, "Krisestaben", ("kommune",)))
    assert _apply(updates, v1)
    entry = roster.get(STAFF.node_id)
    assert entry is not None and entry.role is Role.STAFF and entry.institution == "Krisestaben"

    v2 = v1.with_node(RosterNode(HOME.card, "Lyngen"), now=CLOCK.time())
    assert _apply(updates, v2)
    with pytest.raises(TrustError) as stale:
        updates.check(v1.sign(ROOT)[0])
    assert stale.value.reason is RefusalReason.ROSTER_STALE
    assert not updates.apply(RosterPage(v1), v1.sign(ROOT)[0]), "an older version never replaces a newer one"
    assert updates.check(v2.sign(ROOT)[0]).version.version == 2, "the same version again is passed on"

    restarted, again, _ = _hub(tmp_path)
    assert again.load() and again.version == 2
    assert restarted.get(HOME.node_id) is not None

    signed = tmp_path / "roster.signed"
    signed.write_text(signed.read_text().replace("A", "B", 1))
    with pytest.raises(ConfigError, match="den signerede roster kan ikke verificeres med \\[trust\\] root"):
        _hub(tmp_path)[1].load()


def test_a_version_signed_by_another_key_is_forged(tmp_path: Path) -> None:
    _, updates, _ = _hub(tmp_path)
    [forged] = _version(5, RosterNode(HOME.card)).sign(Ed25519PrivateKey.generate())
    with pytest.raises(TrustError) as refused:
        updates.check(forged)
    assert refused.value.reason is RefusalReason.ROSTER_FORGED
    genuine = bytearray(_version(5, RosterNode(HOME.card)).sign(ROOT)[0])
    genuine[-3] ^= 1  # one bit of the body changed after signing
    with pytest.raises(TrustError, match="root key"):
        updates.check(bytes(genuine))


def test_a_new_hub_trusts_the_first_roster_frame_by_the_card_in_it(tmp_path: Path) -> None:
    roster, _, admission = _hub(tmp_path)
    [payload] = _version(1, RosterNode(STAFF.card)).sign(ROOT)
    assert admission.check(_frame(STAFF, Kind.ROSTER, payload), "test").name == STAFF.name
    with pytest.raises(TrustError):  # vouching covers the ROSTER frame, nothing else
        admission.check(_frame(STAFF, Kind.TEXT, b"hej"), "test")
    assert admission.refused[RefusalReason.UNKNOWN_SENDER.value] == 1
    with pytest.raises(TrustError):  # a version that does not list the sender vouches for nobody
        admission.check(_frame(HOME, Kind.ROSTER, payload), "test")
    assert roster.get(STAFF.node_id) is None, "vouching trusts the frame, it does not apply the version"


def test_revoked_and_expired_nodes_are_refused_even_if_added_by_hand(tmp_path: Path) -> None:
    roster, updates, admission = _hub(tmp_path)
    roster.add(HOME.card)  # an old hand edit
    until = int(CLOCK.time()) + 60
    v1 = _version(1, RosterNode(STAFF.card, valid_until=until), RosterNode(HOME.card))
    _apply(updates, v1)
    text = _frame(HOME, Kind.TEXT, b"hej")
    assert admission.check(text, "test").node_id == HOME.node_id

    v2 = v1.with_revoked(HOME.node_id, now=CLOCK.time())
    _apply(updates, v2)
    with pytest.raises(TrustError) as refused:
        admission.check(text, "test")
    assert refused.value.reason is RefusalReason.REVOKED
    assert HOME.node_id not in {e.node_id for e in roster}
    assert roster.get(ME.node_id) is not None, "a hub never stops trusting itself"

    CLOCK.advance(61)
    with pytest.raises(TrustError, match="place in the roster ended"):
        admission.check(_frame(STAFF, Kind.TEXT, b"hej"), "test")


def test_codes_and_root_keys_round_trip() -> None:
    code = enrolment_code(HOME.card)
    assert len(code) == 9 and code[4] == "-" and code == enrolment_code(HOME.card)
    assert code != enrolment_code(STAFF.card)
    text = root_public_text(ROOT.public_key())
    assert root_public_text(parse_root_public(text)) == text
    with pytest.raises(ValueError, match="en rodnøgle er 43 tegn base64"):
        parse_root_public("kort")


def test_a_version_too_large_for_one_frame_travels_as_pages(tmp_path: Path) -> None:
    roster, updates, admission = _hub(tmp_path)
    homes = [Identity.generate(f"Plejehjem {i:02}", "care-home") for i in range(80)]
    nodes = (
        RosterNode(STAFF.card),
        *(RosterNode(h.card, f"Plejehjem {i:02}", ("nord",)) for i, h in enumerate(homes)),
    )
    version = _version(1, *nodes, revoked=frozenset({OTHER.node_id}))
    pages = version.sign(ROOT)
    assert len(pages) == 3 and all(len(p) <= MAX_PAYLOAD for p in pages)

    last = pages[-1]  # the first page to arrive lists only care homes: its sender is vouched for by none
    with pytest.raises(TrustError):
        admission.check(_frame(STAFF, Kind.ROSTER, last), "test")
    assert not updates.apply(updates.check(pages[0]), pages[0]), "one page of three applies nothing"
    assert admission.check(_frame(STAFF, Kind.ROSTER, last), "test").node_id == STAFF.node_id, (
        "a later page is vouched for by the sender's card in a page already held"
    )
    assert not updates.apply(updates.check(last), last)
    assert roster.get(homes[0].node_id) is None
    assert updates.apply(updates.check(pages[1]), pages[1])
    assert all(roster.get(h.node_id) is not None for h in homes) and roster.is_revoked(OTHER.node_id)

    restarted, again, _ = _hub(tmp_path)
    assert again.load() and again.payloads == pages
    assert len(restarted) == 82  # itself, the staff hub and 80 homes


def test_groups_and_contact_interval_travel_in_the_signed_roster_and_in_roster_toml(tmp_path: Path) -> None:
    node = RosterNode(HOME.card, "Lyngen", ("distrikt-syd", "botilbud"), 0, 45)
    (payload,) = RosterVersion(3, 1_800_000_000, (node,)).sign(ROOT)
    carried = verify(payload, ROOT.public_key()).version.nodes[0]
    assert (carried.groups, carried.contact_minutes) == (("distrikt-syd", "botilbud"), 45)
    local = Roster(ME.card, tmp_path / "roster.toml")
    local.add(HOME.card, groups=("distrikt-syd",), contact_minutes=20)
    local.save()
    loaded = Roster.load(ME.card, tmp_path / "roster.toml").get(HOME.node_id)
    assert loaded is not None and (loaded.groups, loaded.contact_minutes) == (("distrikt-syd",), 20)
    (tmp_path / "bad.toml").write_text(f'[[node]]\ncard = "{HOME.card.encode()}"\ngroups = ["a:b"]\n')
    with pytest.raises(ConfigError, match="forventede en liste af gruppenavne"):
        Roster.load(ME.card, tmp_path / "bad.toml")


def test_a_revocation_takes_effect_with_the_first_page_of_its_version(tmp_path: Path) -> None:
    roster, updates, _ = _hub(tmp_path)
    told: list[tuple[bytes, int]] = []
    updates.on_revoked = lambda node, number: told.append((node, number))
    homes = [Identity.generate(f"Plejehjem {i:02}", "care-home") for i in range(80)]
    v1 = _version(1, RosterNode(STAFF.card), *(RosterNode(h.card) for h in homes))
    assert _apply(updates, v1) and roster.get(homes[5].node_id) is not None

    pages = v1.with_revoked(homes[5].node_id, now=CLOCK.time()).sign(ROOT)
    assert len(pages) == 2
    assert not updates.apply(updates.check(pages[1]), pages[1]), "one page of two applies nothing"
    assert updates.version == 1 and roster.get(homes[5].node_id) is None, "but its revocation counts now"
    assert roster.get(homes[6].node_id) is not None
    assert told == [(homes[5].node_id, 2)]
    reloaded = Roster(ME.card)  # the local file read again (``Hub.reload_roster``): still refused
    updates.rebind(reloaded)
    assert reloaded.get(homes[5].node_id) is None and reloaded.get(homes[6].node_id) is not None
    roster = reloaded
    assert updates.apply(updates.check(pages[0]), pages[0])
    assert updates.version == 2 and roster.is_revoked(homes[5].node_id)
    assert told == [(homes[5].node_id, 2)], "reported once, when it took effect"

    forged = Ed25519PrivateKey.generate()
    with pytest.raises(TrustError):  # only a page the root signed revokes anyone
        updates.check(v1.with_revoked(homes[6].node_id).sign(forged)[0])
    stale = v1.with_revoked(homes[6].node_id).sign(ROOT)[0]  # version 2 again, but revoking another
    assert not updates.apply(updates.check(stale), stale)
    assert roster.get(homes[6].node_id) is not None, "a version not newer than ours revokes nothing"
