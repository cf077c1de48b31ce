"""Acks prove what they say, across real hubs: municipality A -> relay B -> care home C, and a second care
home D whose key A trusts (a stolen Pi). D's signed acks for A's messages to C settle nothing; C still
gets every message and its own acks settle them. A refused hop ack does not count as the link to D
answering."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.core.frame import BROADCAST, Kind, Priority
from tests.attacker import post_frames, sign_as
from tests.hubproc import HubProcess


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, HubProcess, HubProcess]]:
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff")
    b = HubProcess.create(tmp_path / "b", "Relay Nord", "relay")
    c = HubProcess.create(tmp_path / "c", "Plejehjemmet Solgaarden", "care-home")
    d = HubProcess.create(tmp_path / "d", "Plejehjemmet Skovbo", "care-home")
    a.add_peer(b, {"internet": b.internet_url})
    a.add_peer(d, {"internet": d.internet_url})
    b.add_peer(a, {"internet": a.internet_url})
    b.add_peer(c, {"internet": c.internet_url})
    c.add_peer(b, {"internet": b.internet_url})
    a.set_default_route([b])
    c.set_default_route([b])
    b.set_route(a, [a])
    b.set_route(c, [c])
    for hub in (a, b, c):
        hub.trust(*(h for h in (a, b, c) if h is not hub))
    a.trust(d)
    b.trust(d)
    try:
        yield a, b, c, d
    finally:
        for hub in (a, b, c):
            hub.kill()


@pytest.mark.timeout(400)  # four hubs and a dozen CLI runs on a loaded 2-core machine
def test_acks_signed_by_another_care_home_settle_nothing(
    hubs: tuple[HubProcess, HubProcess, HubProcess, HubProcess],
) -> None:
    a, b, c, d = hubs
    a.start()  # B and C are still down: A's deliveries stay open
    sitreps = [
        a.send(
            c.node_id,
            "sitrep",
            {"number": n, "phase": "Update", "summary": f"Evakuering, fløj {n}"},
            priority="life-safety",
        )
        for n in range(5)
    ]
    ids = b"".join(bytes.fromhex(i) for i in sitreps)
    forged = [
        sign_as(d, Kind.ACK, a.node_id, ids, priority=Priority.LIFE_SAFETY),  # "Skovbo has them"
        sign_as(d, Kind.HOP_ACK, a.node_id, ids),  # "I hold them", though nobody handed them to D
        sign_as(d, Kind.ACK, BROADCAST.hex(), ids),  # the same, told to every hub
    ]
    assert post_frames(a, [f.encode() for f in forged], reply_to=d.internet_url) == 204

    def refused() -> dict[str, int]:
        counts: dict[str, int] = a.get("/healthz")["refused"]
        return counts

    a.wait_for(
        "the forged acks to be refused",
        lambda: (
            refused().get("ack-not-from-recipient", 0) >= 2 and refused().get("hop-ack-not-from-hop", 0) >= 1
        ),
    )
    for message_id in sitreps:
        state = a.message(message_id)
        assert not state["end_to_end_acked"], "a second care home's ack settled a message to the first"
        assert state["hops"][0]["state"] in ("queued", "sent"), state
    # D is not running, so nothing it really answered can show: its refused hop ack counted no success.
    rows = [r for r in a.get("/v1/links")["links"] if r["peer"] == d.node_id]
    assert rows and all(r["last_success"] is None for r in rows), rows

    b.start()
    c.start()
    c.wait_for("all five sitreps", lambda: {m["id"] for m in c.inbox()} >= set(sitreps))
    a.wait_for(
        "Solgaarden's own end-to-end acks", lambda: all(a.message(i)["end_to_end_acked"] for i in sitreps)
    )
    assert refused().get("ack-not-from-recipient", 0) == 2, "the true recipient's acks are never refused"
