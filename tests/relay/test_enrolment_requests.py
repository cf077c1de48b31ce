"""The list of enrolment requests on the hub holding the root key: only a card's own key can put it there,
one entry per card, bounded, kept across a restart, and a damaged file does not stop the hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.core.errors import UsageError
from hub.core.identity import Identity
from hub.core.kinds.roster import enrolment_code
from hub.relay.enrolment_requests import FILE_NAME, MAX_PENDING, EnrolmentRequests, request_statement


def _signed(identity: Identity) -> tuple[str, bytes]:
    return identity.card.encode(), identity.sign_statement(request_statement(identity.card))


def test_only_the_cards_own_key_can_ask_and_a_restart_keeps_the_list(tmp_path: Path) -> None:
    requests = EnrolmentRequests(tmp_path)
    home, thief = Identity.generate("Solbakken", "care-home"), Identity.generate("Solbakken", "care-home")
    card, _ = _signed(home)
    with pytest.raises(UsageError, match="own key"):
        requests.add(card, thief.sign_statement(request_statement(home.card)))
    with pytest.raises(UsageError, match="card"):
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
    requests.add(*_signed(first), now=0)
    for i in range(1, MAX_PENDING + 1):
        requests.add(*_signed(Identity.generate(f"n{i}", "relay")), now=i)
    codes = {r.code for r in requests.pending()}
    assert len(codes) == MAX_PENDING and enrolment_code(first.card) not in codes
    (tmp_path / FILE_NAME).write_text("{ikke json")
    assert EnrolmentRequests(tmp_path).pending() == []
