"""Root-signed roster deltas on a hub: adopted only on the version they were made from, persisted with
it, refused when forged or when their result is not the root's version, revoking at once either way."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.errors import RefusalReason, TrustError
from hub.core.identity import Identity
from hub.core.kinds.roster import RosterNode, RosterVersion
from hub.core.kinds.roster_delta import make_delta
from hub.relay.roster import Roster
from hub.relay.roster_updates import RosterUpdates

ROOT = Ed25519PrivateKey.generate()
ME = Identity.generate("Plejecenter Solbakken", "care-home")
STAFF = Identity.generate("Aarhus krisestab", "staff")
HOME = Identity.generate("Lyngen", "care-home")
V1 = RosterVersion(1, 1_700_000_000, (RosterNode(STAFF.card), RosterNode(ME.card)))
V2 = V1.with_node(RosterNode(HOME.card, "Plejecenter Lyngen"), now=1_700_000_060)
V3 = V2.with_revoked(HOME.node_id, now=1_700_000_120)


def _hub(folder: Path, held: RosterVersion | None = V1) -> RosterUpdates:
    updates = RosterUpdates(Roster(ME.card), ROOT.public_key(), folder)
    for page in held.sign(ROOT) if held else ():
        updates.apply(updates.check(page), page)
    return updates


def _delta(base: RosterVersion, new: RosterVersion, root: Ed25519PrivateKey = ROOT) -> bytes:
    delta = make_delta(base, new)
    assert delta is not None
    return delta.sign(root)


def _offer(updates: RosterUpdates, payload: bytes) -> bool:
    return updates.apply(updates.check(payload), payload)


def test_a_delta_on_the_held_version_is_adopted_and_survives_a_restart(tmp_path: Path) -> None:
    updates = _hub(tmp_path)
    assert _offer(updates, _delta(V1, V2))
    assert updates.version == 2 and updates.roster.get(HOME.node_id) is not None
    assert _offer(updates, _delta(V2, V3))  # a revocation by delta takes effect
    assert updates.version == 3 and updates.roster.get(HOME.node_id) is None
    assert updates.roster.is_revoked(HOME.node_id)
    restarted = _hub(tmp_path, None)
    assert restarted.load() and restarted.roster.version == V3
    assert restarted.payloads == updates.payloads and len(restarted.payloads) == 3  # V1's page, 2 deltas


def test_a_delta_for_a_version_not_held_adopts_nothing_but_its_revocation_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    updates = _hub(tmp_path)
    with caplog.at_level(logging.INFO, "beredt.roster"):
        for _ in range(3):  # the root's hub repeats it every interval
            assert not _offer(updates, _delta(V2, V3))
    assert updates.version == 1
    assert updates.roster.is_revoked(HOME.node_id)  # root-signed: refused now, the whole version follows
    said = "roster delta 2->3 not applied: this hub holds version 1, not version 2; waiting for the whole"
    assert [r.getMessage() for r in caplog.records if said in r.getMessage()] == [
        f"{said} version 3 (its revocations count already)"
    ]  # once, and not as forged
    assert "forged" not in caplog.text
    assert _offer(updates, V3.sign(ROOT)[0])  # the whole version still catches the hub up
    assert updates.version == 3 and updates.delta is None


def test_a_delta_reaching_a_hub_with_no_version_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    updates = _hub(tmp_path, None)
    with caplog.at_level(logging.INFO, "beredt.roster"):
        assert not _offer(updates, _delta(V1, V2))
    assert updates.version == 0
    assert "roster delta 1->2 not applied: this hub holds no version, not version 1" in caplog.text


def test_a_forged_delta_is_refused(tmp_path: Path) -> None:
    updates = _hub(tmp_path)
    with pytest.raises(TrustError) as refused:
        updates.check(_delta(V1, V2, Ed25519PrivateKey.generate()))
    assert refused.value.reason is RefusalReason.ROSTER_FORGED and updates.version == 1


def test_a_delta_whose_result_is_not_the_roots_version_is_refused(tmp_path: Path) -> None:
    updates = _hub(tmp_path)
    delta = make_delta(V1, V2)
    assert delta is not None
    wrong = dataclasses.replace(delta, nodes=(RosterNode(Identity.generate("Tyv", "staff").card),))
    with pytest.raises(TrustError, match="not the root's version") as refused:
        updates.check(wrong.sign(ROOT))
    assert refused.value.reason is RefusalReason.ROSTER_FORGED
    assert updates.version == 1 and updates.roster.get(HOME.node_id) is None
