"""Rotation statements and the roster version that carries a rotation out."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.errors import ProtocolError
from hub.core.identity import Identity
from hub.core.kinds.roster import RosterNode, RosterVersion, verify
from hub.core.rotation import decode, sign_rotation


def test_a_statement_round_trips_and_only_the_old_key_signs_it() -> None:
    old, new, thief = (Identity.generate("Plejecenter Solbakken", "care-home") for _ in range(3))
    statement = sign_rotation(old, new.card)
    parsed = decode(statement.encode())
    assert parsed == statement
    parsed.verify(old.signing_public)
    with pytest.raises(ProtocolError, match="ikke signeret med nodens nuværende nøgle"):
        parsed.verify(thief.signing_public)
    forged = sign_rotation(thief, new.card)  # a thief's key cannot speak for the old node id
    with pytest.raises(ProtocolError):
        decode(forged.encode().replace(thief.node_id.hex(), old.node_id.hex())).verify(old.signing_public)
    with pytest.raises(ValueError, match="ser sådan ud"):
        decode("beredt1:x:care-home:aa:bb")


def test_a_rotated_version_keeps_the_place_and_retires_the_old_key() -> None:
    root = Ed25519PrivateKey.generate()
    old, new = (Identity.generate("Solbakken", "care-home") for _ in range(2))
    first = RosterVersion(1, 0, (RosterNode(old.card, "Plejecenter Solbakken", ("nord",), 0, 30),))
    rotated = first.with_rotated(old.node_id, new.card, 1_000, now=500)
    [page] = rotated.sign(root)
    held = verify(page, root.public_key()).version
    successor, retiring = held.node(new.node_id), held.node(old.node_id)
    assert successor and retiring and held.version == 2
    assert (successor.institution, successor.groups, successor.contact_minutes) == (
        "Plejecenter Solbakken",
        ("nord",),
        30,
    )
    assert successor.replaces == old.node_id and retiring.valid_until == 1_000
    pruned = held.with_expired_revoked(1_000)
    assert pruned.node(old.node_id) is None and old.node_id in pruned.revoked
    assert held.with_expired_revoked(999) is held
    with pytest.raises(ValueError, match="er ikke i rosterversion"):
        first.with_rotated(new.node_id, old.card, 1_000, now=500)
