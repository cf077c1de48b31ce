"""The list of enrolment requests on the hub holding the root key: only a card's own key can put it there,
one entry per card, bounded, kept across a restart, and a damaged file does not stop the hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.core.errors import UsageError
from hub.core.identity import Identity
from hub.core.kinds.roster import enrolment_code
from hub.relay.enrolment_requests import (
    BURST,
    FILE_NAME,
    MAX_PENDING,
    MAX_PER_SOURCE,
    RATE,
    EnrolmentRequests,
    request_statement,
)


def _signed(identity: Identity) -> tuple[str, bytes]:
    return identity.card.encode(), identity.sign_statement(request_statement(identity.card))


def test_only_the_cards_own_key_can_ask_and_a_restart_keeps_the_list(tmp_path: Path) -> None:
    requests = EnrolmentRequests(tmp_path)
    home, thief = Identity.generate("Solbakken", "care-home"), Identity.generate("Solbakken", "care-home")
    card, _ = _signed(home)
    with pytest.raises(UsageError, match="kortets egen nøgle"):
        requests.add(card, thief.sign_statement(request_statement(home.card)))
    with pytest.raises(UsageError, match="kortet"):
        requests.add("beredt1:ikke et kort", b"x" * 64)
    added = requests.add(*_signed(home), now=100)
    assert added.code == enrolment_code(home.card)
    requests.add(*_signed(home), now=200)  # asked again: one entry, the newer time
    again = EnrolmentRequests(tmp_path)
    assert [(r.code, r.received) for r in again.pending()] == [(added.code, 200)]
    assert again.remove(added.code.lower()).card == home.card
    with pytest.raises(UsageError):
        again.get(added.code)


def test_the_list_is_bounded_oldest_first_and_a_damaged_file_starts_empty(tmp_path: Path) -> None:
    requests = EnrolmentRequests(tmp_path)
    first = Identity.generate("n0", "relay")
    requests.add(*_signed(first), source="10.0.0.0", now=0)
    for i in range(1, MAX_PENDING + 1):
        requests.add(*_signed(Identity.generate(f"n{i}", "relay")), source=f"10.0.0.{i}", now=i)
    codes = {r.code for r in requests.pending()}
    assert len(codes) == MAX_PENDING and enrolment_code(first.card) not in codes
    (tmp_path / FILE_NAME).write_text("{ikke json")
    assert EnrolmentRequests(tmp_path).pending() == []


def test_a_flood_from_one_address_keeps_its_own_share_and_cannot_push_out_others(tmp_path: Path) -> None:
    requests = EnrolmentRequests(tmp_path)
    genuine = requests.add(*_signed(Identity.generate("Solbakken", "care-home")), source="10.0.0.7", now=0)
    for i in range(200):
        requests.add(*_signed(Identity.generate(f"flood{i}", "relay")), source="10.0.0.66", now=1 + i)
    held = [r.source for r in requests.pending()]
    assert held.count("10.0.0.66") == MAX_PER_SOURCE and genuine.code in {r.code for r in requests.pending()}
    # many addresses fill the list; a full list sheds the oldest of the address holding the most
    for n in range(20):
        for i in range(MAX_PER_SOURCE):
            requests.add(*_signed(Identity.generate(f"m{n}.{i}", "relay")), source=f"10.1.0.{n}", now=300 + i)
    assert len(requests.pending()) == MAX_PENDING
    assert genuine.code in {r.code for r in EnrolmentRequests(tmp_path).pending()}  # kept across a restart


def test_taking_requests_is_paced_and_the_wait_says_for_how_long(tmp_path: Path) -> None:
    now = [0.0]
    requests = EnrolmentRequests(tmp_path, clock=lambda: now[0])
    for i in range(BURST):
        assert requests.wait() == 0
        requests.add(*_signed(Identity.generate(f"n{i}", "relay")), source=f"10.0.0.{i}")
    assert requests.wait() == pytest.approx(1 / RATE)
    now[0] += 1 / RATE
    assert requests.wait() == 0
