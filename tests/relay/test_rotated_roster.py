"""A rotated node's old key during its grace: its frames are still admitted, but it is no member of any
group, no recipient of a broadcast's seal and not listed; the new key has its place."""

from __future__ import annotations

from hub.core.identity import Identity
from hub.core.kinds.roster import RosterNode, RosterVersion
from hub.relay.groups import Groups
from hub.relay.roster import Roster


def test_the_old_key_is_trusted_but_no_longer_listed_or_addressed() -> None:
    staff, old, new = (Identity.generate(name, role) for name, role in (
        ("Krisestab", "staff"), ("Solbakken", "care-home"), ("Solbakken", "care-home"),
    ))  # fmt: skip
    roster = Roster(staff.card)
    roster.apply(RosterVersion(1, 0, (RosterNode(old.card, "Plejecenter Solbakken", ("nord",)),)))
    assert Groups(lambda: roster, staff.node_id).members("nord") == (old.node_id,)

    assert roster.version is not None
    roster.apply(roster.version.with_rotated(old.node_id, new.card, 2_000_000_000, now=1_900_000_000))
    assert roster.get(old.node_id) is not None, "frames signed before the switch still count"
    assert [e.node_id for e in roster if e.node_id != staff.node_id] == [new.node_id]
    assert Groups(lambda: roster, staff.node_id).members("nord") == (new.node_id,)
