"""Handing the roster to a new neighbour: the page listing this hub first, once per neighbour per GAP,
never to a node the roster does not trust. The real exchange between hubs is in
tests/hubs/test_entry_points.py; here the pages handed are recorded where ``Hub.submit`` would sign them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.clock import ManualClock
from hub.core.frame import Kind, Priority
from hub.core.identity import Identity
from hub.core.kinds.roster import RosterNode, RosterVersion, verify
from hub.core.kinds.roster_delta import make_delta
from hub.relay.roster import Roster
from hub.relay.roster_handoff import GAP, RADIO_GAP, RosterHandoff
from hub.relay.roster_updates import RosterUpdates
from tests.inproc import eventually

ROOT = Ed25519PrivateKey.generate()
RELAY = Identity.generate("Relæ Nord", "relay")
STRANGER = Identity.generate("Ukendt", "care-home")


async def test_a_new_neighbour_gets_the_pages_ours_first_once_per_gap(tmp_path: Path) -> None:
    clock = ManualClock()
    roster = Roster(RELAY.card)
    updates = RosterUpdates(roster, ROOT.public_key(), tmp_path)
    homes = [Identity.generate(f"Plejehjem {i:02}", "care-home") for i in range(80)]
    # the relay is listed last, so on the last page: a care home with no roster needs that page first
    version = RosterVersion(
        1, int(clock.time()), (*(RosterNode(h.card) for h in homes), RosterNode(RELAY.card))
    )
    pages = version.sign(ROOT)
    assert len(pages) > 1 and verify(pages[-1], ROOT.public_key()).version.node(RELAY.node_id)
    for page in pages:
        updates.apply(updates.check(page), page)
    sent: list[tuple[bytes, bytes, dict[str, Any]]] = []

    async def send(kind: Kind, recipient: bytes, payload: bytes, **options: Any) -> bytes:
        assert kind is Kind.ROSTER
        sent.append((recipient, payload, options))
        return b"\x00" * 16

    handoff = RosterHandoff(RELAY.node_id, updates, lambda n: roster.get(n) is not None, send, clock)
    runner = asyncio.create_task(handoff.run())
    try:
        handoff.offer(homes[0].node_id)
        handoff.offer(homes[0].node_id)  # heard again at once: not again
        handoff.offer(STRANGER.node_id)  # not in the roster: nothing
        await eventually(lambda: handoff.handed == 1)
        assert [p for _, p, _ in sent] == [pages[-1], *pages[:-1]]
        assert {r for r, _, _ in sent} == {homes[0].node_id}
        assert all(o["priority"] is Priority.ROUTINE for _, _, o in sent), "routine: free links only"

        clock.advance(GAP)
        handoff.offer(homes[0].node_id)  # gone and back after the gap: handed again
        await eventually(lambda: handoff.handed == 2)
        assert len(sent) == 2 * len(pages)

        # a neighbour only radio reaches: normal priority, the least radio takes; paced by the hour
        handoff.offer(homes[1].node_id, radio=True)
        await eventually(lambda: handoff.handed == 3)
        assert all(o["priority"] is Priority.NORMAL for r, _, o in sent if r == homes[1].node_id)
        clock.advance(GAP)
        handoff.offer(homes[1].node_id, radio=True)  # still behind after the free links' gap: not yet
        clock.advance(RADIO_GAP - GAP)
        handoff.offer(homes[1].node_id, radio=True)
        await eventually(lambda: handoff.handed == 4)
        assert len(sent) == 4 * len(pages)
    finally:
        runner.cancel()


async def test_a_radio_neighbour_holding_the_deltas_base_gets_the_delta_alone(tmp_path: Path) -> None:
    clock = ManualClock()
    roster = Roster(RELAY.card)
    updates = RosterUpdates(roster, ROOT.public_key(), tmp_path)
    homes = [Identity.generate(f"Plejehjem {i:02}", "care-home") for i in range(40)]
    first = RosterVersion(
        1, int(clock.time()), (RosterNode(RELAY.card), *(RosterNode(h.card) for h in homes))
    )
    second = first.with_revoked(homes[-1].node_id, now=clock.time())
    delta = make_delta(first, second)
    assert delta is not None
    for payload in (*first.sign(ROOT), delta.sign(ROOT)):
        updates.apply(updates.check(payload), payload)
    assert updates.version == 2 and updates.delta == (1, delta.sign(ROOT))
    sent: list[tuple[bytes, bytes]] = []

    async def send(kind: Kind, recipient: bytes, payload: bytes, **options: Any) -> bytes:
        sent.append((recipient, payload))
        return b"\x00" * 16

    handoff = RosterHandoff(RELAY.node_id, updates, lambda n: roster.get(n) is not None, send, clock)
    runner = asyncio.create_task(handoff.run())
    try:
        handoff.offer(homes[0].node_id, radio=True, theirs=1)
        await eventually(lambda: handoff.handed == 1)
        assert sent == [(homes[0].node_id, delta.sign(ROOT))]
        # one holding another version, or reached by a free link, gets the pages and the delta after them
        handoff.offer(homes[1].node_id, radio=True, theirs=0)
        handoff.offer(homes[2].node_id, theirs=1)
        await eventually(lambda: handoff.handed == 3)
        assert [p for r, p in sent if r == homes[1].node_id] == updates.payloads
        assert [p for r, p in sent if r == homes[2].node_id] == updates.payloads
        assert len(updates.payloads) == len(first.sign(ROOT)) + 1
    finally:
        runner.cancel()
