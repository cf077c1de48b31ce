"""Root-signed roster deltas: small enough for one LoRa packet, and adopted only when the result is the
version the root signed."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.errors import ProtocolError
from hub.core.identity import Identity
from hub.core.kinds.roster import RosterNode, RosterVersion, verify
from hub.core.kinds.roster_delta import is_delta, make_delta, verify_delta

LORA_PAYLOAD = 233
"""The largest LoRa packet payload meshtastic carries."""


def _roster(size: int) -> RosterVersion:
    homes = tuple(
        RosterNode(
            Identity.generate(f"Plejecenter {i:02d}", "care-home").card, f"Plejecenter nr. {i:02d}", ("syd",)
        )
        for i in range(size)
    )
    return RosterVersion(7, 1_700_000_000, homes)


def test_an_enrolment_applies_and_its_delta_is_a_fraction_of_the_version() -> None:
    root = Ed25519PrivateKey.generate()
    held = _roster(80)
    home = RosterNode(Identity.generate("Plejecenter Solbakken", "care-home").card, "Plejecenter Solbakken")
    new = held.with_node(home, now=1_700_000_060)
    payload = make_delta(held, new).sign(root)  # type: ignore[union-attr]
    whole = sum(len(p) for p in new.sign(root))
    assert is_delta(payload) and not is_delta(new.sign(root)[0])
    assert len(payload) <= LORA_PAYLOAD, len(payload)
    assert whole > 30 * len(payload), (whole, len(payload))
    assert verify_delta(payload, root.public_key()).apply_to(held) == new


def test_a_revocation_in_a_delta_takes_effect() -> None:
    root = Ed25519PrivateKey.generate()
    held = _roster(80)
    stolen = held.nodes[3].node_id
    new = held.with_revoked(stolen, now=1_700_000_060)
    payload = make_delta(held, new).sign(root)  # type: ignore[union-attr]
    assert len(payload) <= LORA_PAYLOAD, len(payload)
    adopted = verify_delta(payload, root.public_key()).apply_to(held)
    assert stolen in adopted.revoked and adopted.node(stolen) is None
    assert adopted == new


def test_a_delta_for_another_base_is_not_applied() -> None:
    root = Ed25519PrivateKey.generate()
    older = _roster(3)
    held = older.with_revoked(older.nodes[0].node_id, now=1)
    later = held.with_revoked(held.nodes[0].node_id, now=2)
    delta = verify_delta(make_delta(held, later).sign(root), root.public_key())  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="does not apply to version 7"):
        delta.apply_to(older)


def test_a_delta_not_signed_by_the_root_is_refused() -> None:
    root, thief = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    held = _roster(2)
    new = held.with_node(RosterNode(Identity.generate("Tyv", "staff").card), now=1)
    forged = make_delta(held, new).sign(thief)  # type: ignore[union-attr]
    with pytest.raises(ProtocolError, match="not signed by this municipality's root key"):
        verify_delta(forged, root.public_key())
    # a delta is signed in its own context: it never passes as a version page, nor a page as a delta
    genuine = make_delta(held, new).sign(root)  # type: ignore[union-attr]
    with pytest.raises(ProtocolError, match="not signed"):
        verify(genuine, root.public_key())
    with pytest.raises(ProtocolError, match="not signed"):
        verify_delta(new.sign(root)[0], root.public_key())


def test_a_delta_whose_result_is_not_the_signed_version_is_refused() -> None:
    root = Ed25519PrivateKey.generate()
    held = _roster(2)
    new = held.with_node(RosterNode(Identity.generate("Solbakken", "care-home").card), now=1)
    delta = make_delta(held, new)
    assert delta is not None
    # the root signed these changes, but with the digest of a different result (a node left out)
    wrong = dataclasses.replace(delta, nodes=delta.nodes, removed=frozenset({held.nodes[0].node_id}))
    checked = verify_delta(wrong.sign(root), root.public_key())
    with pytest.raises(ValueError, match="not the root's version"):
        checked.apply_to(held)
    # a hub whose copy of the base differs from the root's (same number) adopts nothing either
    drifted = dataclasses.replace(held, nodes=held.nodes[:1])
    with pytest.raises(ValueError, match="not the root's version"):
        verify_delta(delta.sign(root), root.public_key()).apply_to(drifted)


def test_a_change_of_cross_certificates_goes_whole() -> None:
    held = _roster(1)
    assert make_delta(held, held) is None
    assert make_delta(held, dataclasses.replace(held, version=8, cross=held.cross)) is not None
