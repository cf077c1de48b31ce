"""The Delivery state machine (every legal move, every illegal one raises) and the retry back-off."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hub.core.frame import Priority
from hub.relay.delivery import TRANSITIONS, Backoff, Delivery, DeliveryState, IllegalTransition

Q, SENDING, SENT, ACKED, EXPIRED, EVICTED = (
    DeliveryState.QUEUED,
    DeliveryState.SENDING,
    DeliveryState.SENT,
    DeliveryState.HOP_ACKED,
    DeliveryState.EXPIRED,
    DeliveryState.EVICTED,
)
OPEN = {Q, SENDING, SENT}
TERMINAL = {ACKED, EXPIRED, EVICTED}

# The diagram in hub/relay/delivery.py, written out: the table must say exactly this.
LEGAL = {
    (Q, SENDING),
    (SENDING, SENT),
    (SENDING, Q),  # send failed
    (SENDING, ACKED),  # the link acks by itself, or an ack overtook the send's return
    (SENT, ACKED),
    (SENT, Q),  # hop ack timed out
    (Q, ACKED),  # an end-to-end ack settles a delivery still waiting
    *((state, end) for state in OPEN for end in (EXPIRED, EVICTED)),
}
ALL_PAIRS = list(itertools.product(DeliveryState, repeat=2))


def delivery(state: DeliveryState = Q) -> Delivery:
    d = Delivery(b"\x01" * 16, b"\x02" * 8, b"wire", Priority.NORMAL, expires=2_000_000_000)
    d.state = state
    return d


def test_the_table_is_the_documented_diagram() -> None:
    assert {(old, new) for old, targets in TRANSITIONS.items() for new in targets} == LEGAL


@pytest.mark.parametrize(("old", "new"), sorted(LEGAL))
def test_every_legal_move(old: DeliveryState, new: DeliveryState) -> None:
    d = delivery(old)
    d.move(new)
    assert d.state is new
    assert d.open is (new in OPEN)


@pytest.mark.parametrize(("old", "new"), [pair for pair in ALL_PAIRS if pair not in LEGAL])
def test_every_illegal_move_raises_and_changes_nothing(old: DeliveryState, new: DeliveryState) -> None:
    d = delivery(old)
    with pytest.raises(IllegalTransition, match=f"{old} -> {new}"):
        d.move(new)
    assert d.state is old


def test_settled_states_are_final() -> None:
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
        assert not delivery(state).open


class DeliveryMachine(RuleBasedStateMachine):
    """Any sequence of requested moves: the legal ones happen, the rest raise and change nothing, and a
    delivery that has settled stays settled."""

    def __init__(self) -> None:
        super().__init__()
        self.delivery = delivery()
        self.settled_as: DeliveryState | None = None

    @rule(new=st.sampled_from(DeliveryState))
    def move(self, new: DeliveryState) -> None:
        old = self.delivery.state
        if (old, new) in LEGAL:
            self.delivery.move(new)
            assert self.delivery.state is new
            if new in TERMINAL:
                self.settled_as = new
        else:
            with pytest.raises(IllegalTransition):
                self.delivery.move(new)
            assert self.delivery.state is old

    @invariant()
    def settled_stays_settled(self) -> None:
        if self.settled_as is not None:
            assert self.delivery.state is self.settled_as
        assert self.delivery.open is (self.delivery.state in OPEN)


DeliveryMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=15, deadline=None)
TestDeliveryMachine = DeliveryMachine.TestCase


class _Extreme(random.Random):
    """A random source pinned to one end of [0, 1), to check the jitter's bounds exactly."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@given(
    initial=st.floats(0.01, 10),
    cap=st.floats(0.01, 600),
    factor=st.floats(1, 4),
    attempts=st.integers(0, 200),
    seed=st.integers(0, 2**32),
)
@settings(max_examples=100, deadline=None)
def test_backoff_stays_in_half_to_full_step_and_under_the_cap(
    initial: float, cap: float, factor: float, attempts: int, seed: int
) -> None:
    backoff = Backoff(initial=initial, cap=cap, factor=factor)
    step = min(cap, initial * factor ** max(0, attempts - 1))
    delay = backoff.delay(attempts, random.Random(seed))
    assert step / 2 <= delay <= step <= cap


def test_backoff_doubles_from_the_initial_step_until_the_cap() -> None:
    backoff = Backoff(initial=1.0, cap=10.0)
    low, high = _Extreme(0.0), _Extreme(1.0 - 2**-53)
    assert [backoff.delay(n, low) for n in range(7)] == [0.5, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert [round(backoff.delay(n, high), 9) for n in range(7)] == [1.0, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_jitter_spreads_retries() -> None:
    """Many deliveries failing together must not retry in lock-step."""
    rng = random.Random(7)
    delays = [Backoff(initial=1.0, cap=300.0).delay(5, rng) for _ in range(1000)]
    assert min(delays) >= 8.0 and max(delays) < 16.0
    assert len({round(d, 3) for d in delays}) > 900
    assert max(delays) - min(delays) > 7.0
