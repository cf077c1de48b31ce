"""A learned address comes only from the peer's signed address card, across real ``beredt run`` hubs.

The staff hub knows the care home only by its key (no configured URL). An on-path attacker who holds a
fresh frame of the care home (it sees the traffic) rewrites the reply-to and the card header: without a
card, with a forged card, with a card of another trusted node (a stolen care-home key), with the care
home's own recorded card from before it moved, and with an expired one. None of them moves the address.
When the care home really moves to another port, its next frame's card teaches the new address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.topology import free_port
from hub.core.frame import Kind
from tests.attacker import card_as, post_frames, sign_as
from tests.hubproc import HubProcess

ATTACKER = "http://127.0.0.1:9"


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, HubProcess]]:
    staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff")
    home = HubProcess.create(tmp_path / "home", "Plejecenter Solbakken", "care-home")
    thief = HubProcess.create(tmp_path / "thief", "Plejehjemmet Skovbo", "care-home")  # never started
    staff.add_peer(home, {})  # reached at whatever address its signed card names
    staff.add_peer(thief, {})
    home.add_peer(staff, {"internet": staff.internet_url})
    home.set_default_route([staff])
    staff.trust(home, thief)
    home.trust(staff)
    staff.start()
    home.start()
    try:
        yield staff, home, thief
    finally:
        staff.kill()
        home.kill()


def _address_of(staff: HubProcess, home: HubProcess) -> str | None:
    peer = next(p for p in staff.get("/v1/peers")["peers"] if p["node"] == home.node_id)
    address: str | None = peer["links"].get("internet")
    return address


def _refused_cards(staff: HubProcess) -> int:
    return int(staff.get("/healthz")["refused"].get("address-card", 0))


def test_only_the_peers_own_current_card_teaches_its_address(
    hubs: tuple[HubProcess, HubProcess, HubProcess],
) -> None:
    staff, home, thief = hubs
    hello = home.send(staff.node_id, "text", "Solbakken er på nettet")
    staff.wait_for("the care home's first message", lambda: any(m["id"] == hello for m in staff.inbox()))
    staff.wait_for("its address, from its card", lambda: _address_of(staff, home) == home.internet_url)

    recorded = time.time() - 1800  # the care home's card from half an hour ago, when it was elsewhere
    attempts = {
        "no card (the header rewritten, the card dropped)": None,
        "a card that is not one": "bm90IGEgY2FyZA",
        "the care home's card with a byte changed": _flip(card_as(home, ATTACKER)),
        "a stolen key's card for the care home's frame": card_as(thief, ATTACKER),
        "the care home's recorded card from before it moved": card_as(home, ATTACKER, issued=recorded),
        "the care home's expired card": card_as(home, ATTACKER, issued=time.time() - 7200),
        "a card for another kind of link": card_as(home, ATTACKER, kind="mqtt"),
    }
    for n, (what, card) in enumerate(attempts.items()):
        # A frame the care home signed just now, as the attacker captured it on its way.
        frame = sign_as(home, Kind.TEXT, staff.node_id, f"Besked {n}".encode())
        assert post_frames(staff, [frame.encode()], reply_to=ATTACKER, card=card) == 204, what
        stored = frame.id.hex()
        staff.wait_for(
            f"the frame with {what}", lambda stored=stored: stored in {m["id"] for m in staff.inbox()}
        )
        refused = n if card is not None else 0  # every card but the missing one is refused and counted
        staff.wait_for(f"{what} refused", lambda refused=refused: _refused_cards(staff) == refused)
        assert _address_of(staff, home) == home.internet_url, f"{what} steered the address"

    # A genuine move: the care home comes back on another port and says so in its next frame's card.
    assert home.stop() == 0
    home.link_port = free_port()
    home.config["links"]["internet"]["listen"] = f"127.0.0.1:{home.link_port}"
    home.write_config()
    home.start()
    moved = home.send(staff.node_id, "text", "Solbakken er flyttet")
    staff.wait_for("the moved care home's message", lambda: any(m["id"] == moved for m in staff.inbox()))
    staff.wait_for("its new address", lambda: _address_of(staff, home) == home.internet_url)
    reply = staff.send(home.node_id, "text", "Modtaget på den nye adresse")
    home.wait_for("the reply at the new address", lambda: any(m["id"] == reply for m in home.inbox()))
    log = (staff.dir / "hub.log").read_text()
    assert log.count("learned address of Plejecenter Solbakken") == 2, "learned at start and after the move"


def _flip(card: str) -> str:
    """The card with one character of its address changed (still valid base64url)."""
    at = len(card) // 2
    return card[:at] + ("A" if card[at] != "A" else "B") + card[at + 1 :]
