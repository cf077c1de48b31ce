"""Address cards: what a signed card lets a hub learn, and what it refuses (engine logic, manual clock).
The same rules against real processes and an on-path attacker: tests/hubs/test_address_cards.py."""

from __future__ import annotations

import pytest

from hub.core.address_card import REFRESH, AddressCard, CardIssuer
from hub.core.clock import ManualClock
from hub.core.errors import ProtocolError, TrustError
from hub.core.identity import Identity
from hub.relay.address_cards import AddressCards
from hub.relay.roster import RosterEntry

NOW = 1_800_000_000.0
HOME = Identity.generate("Plejecenter Solbakken", "care-home")
ENTRY = RosterEntry.from_card(HOME.card)


def _card(clock: ManualClock, address: str) -> str:
    return CardIssuer(HOME, clock).card("internet", address)


def test_a_card_round_trips_and_its_issuer_renews_it_only_after_refresh() -> None:
    clock = ManualClock(NOW)
    issuer = CardIssuer(HOME, clock)
    text = issuer.card("internet", "https://solbakken.example.dk:8471")
    card = AddressCard.decode(text)
    assert (card.node, card.link_kind, card.address, card.issued) == (
        HOME.node_id,
        "internet",
        "https://solbakken.example.dk:8471",
        int(NOW),
    )
    clock.advance(REFRESH - 1)
    assert issuer.card("internet", "https://solbakken.example.dk:8471") == text
    clock.advance(1)
    assert (
        AddressCard.decode(issuer.card("internet", "https://solbakken.example.dk:8471")).issued > card.issued
    )
    for bad in ("", "!!!", text[:-10], "A" * 2000):
        with pytest.raises(ProtocolError):
            AddressCard.decode(bad)
    with pytest.raises(ValueError):
        HOME.sign_statement(b"\x01 a frame's signed bytes")


def test_newer_cards_move_the_address_and_older_ones_are_refused() -> None:
    clock = ManualClock(NOW)
    cards = AddressCards(clock)
    old = _card(clock, "http://10.0.0.5:8471")
    clock.advance(60)
    moved = _card(clock, "http://10.0.0.6:8471")
    assert cards.address(old, ENTRY, "internet", "internet") == "http://10.0.0.5:8471"
    assert cards.address(moved, ENTRY, "internet", "internet") == "http://10.0.0.6:8471"
    with pytest.raises(TrustError, match="before the one already taken"):
        cards.address(old, ENTRY, "internet", "internet")
    assert cards.address(_card(clock, "http://0.0.0.0:8471"), ENTRY, "internet", "internet") is None
    clock.advance(3600)
    with pytest.raises(TrustError, match="expired"):
        cards.address(moved, ENTRY, "internet", "internet")


def test_nothing_is_learned_while_the_clock_is_not_trusted() -> None:
    clock = ManualClock(100.0)  # a Pi that booted in 1970
    with pytest.raises(TrustError, match="not trusted"):
        AddressCards(clock).address(_card(ManualClock(NOW), "http://10.0.0.5:8471"), ENTRY, "i", "internet")
