"""Signed answers to time challenges: bound to node and nonce, refused when malformed, given only by a
trusted clock and within a budget of signatures."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.core.clock import ManualClock
from hub.core.errors import ProtocolError
from hub.core.identity import Identity
from hub.core.time_answer import ANSWER_BURST, ANSWERS_PER_SECOND, TimeAnswer, TimeWitness

HOME = Identity.generate("Plejecenter Solbakken", "care-home")
NONCE = bytes(range(16))


def test_an_answer_names_the_node_the_nonce_and_the_time_and_verifies() -> None:
    clock = ManualClock(1_800_000_000.5)
    text = TimeWitness(HOME, clock).answer(NONCE)
    assert text is not None
    answer = TimeAnswer.decode(text)
    assert (answer.node, answer.nonce, answer.unix_ms) == (HOME.node_id, NONCE, 1_800_000_000_500)
    key = Ed25519PublicKey.from_public_bytes(HOME.signing_public)
    key.verify(answer.signature, answer.signed_message())
    for bad in ("", "%%%", text[:-4], text + "AAAA"):
        with pytest.raises(ProtocolError):
            TimeAnswer.decode(bad)


def test_no_answer_from_an_untrusted_clock_nor_beyond_the_budget() -> None:
    assert TimeWitness(HOME, ManualClock(100.0)).answer(NONCE) is None  # booted in 1970: nothing to give
    clock = ManualClock(1_800_000_000.0)
    witness = TimeWitness(HOME, clock)
    assert witness.answer(b"short") is None
    given = [witness.answer(NONCE) for _ in range(ANSWER_BURST + 5)]
    assert sum(a is not None for a in given) == ANSWER_BURST
    clock.advance(1 / ANSWERS_PER_SECOND)
    assert witness.answer(NONCE) is not None
