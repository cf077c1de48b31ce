"""HealthBoard: up / degraded / down with hysteresis, hard reports, per-peer views, and its events."""

from __future__ import annotations

import os

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from hub.relay.health import HealthBoard, HealthChanged, LinkState
from hub.relay.link_reasons import NOT_USED, Reason, Why

UP, DEGRADED, DOWN = LinkState.UP, LinkState.DEGRADED, LinkState.DOWN
PEER = "00112233445566aa"
ANSWER = Reason(Why.PROBE_ANSWERED)


def board(**kwargs: float) -> tuple[HealthBoard, list[HealthChanged]]:
    changes: list[HealthChanged] = []
    return HealthBoard(on_change=changes.append, **kwargs), changes  # type: ignore[arg-type]


def test_a_new_link_is_up_and_not_yet_used() -> None:
    health, changes = board()
    assert health.state("internet", PEER) is UP
    assert health.entry("internet", PEER).reason == NOT_USED
    assert changes == []


def test_one_failure_degrades_and_down_after_failures_take_it_down() -> None:
    health, changes = board(down_after=3)
    health.failure("internet", PEER, 1.0, Reason(Why.SEND_FAILED, "timeout"))
    assert health.state("internet", PEER) is DEGRADED
    health.failure("internet", PEER, 2.0, Reason(Why.SEND_FAILED, "timeout"))
    assert health.state("internet", PEER) is DEGRADED
    health.failure("internet", PEER, 3.0, Reason(Why.SEND_FAILED, "refused"))
    assert health.state("internet", PEER) is DOWN
    assert [(c.old, c.new, c.at) for c in changes] == [(UP, DEGRADED, 1.0), (DEGRADED, DOWN, 3.0)]
    assert str(changes[-1].reason) == "send failed: refused"


def test_a_success_between_failures_restarts_the_count() -> None:
    health, _ = board(down_after=2)
    health.failure("lora", PEER, 1.0, Reason(Why.SEND_FAILED, "no ack"))
    health.success("lora", PEER, 2.0, ANSWER)
    health.failure("lora", PEER, 3.0, Reason(Why.SEND_FAILED, "no ack"))
    assert health.state("lora", PEER) is DEGRADED


def test_a_down_link_waits_out_the_hold_down_then_serves_its_probation() -> None:
    health, changes = board(down_after=1, up_after=3, hold_down=10.0)
    health.failure("lora", PEER, 100.0, Reason(Why.SEND_FAILED, "no ack"))
    assert health.state("lora", PEER) is DOWN
    health.success("lora", PEER, 105.0, ANSWER)  # too early: still down
    assert health.state("lora", PEER) is DOWN
    health.success("lora", PEER, 110.0, ANSWER)
    assert health.state("lora", PEER) is DEGRADED  # on probation; this answer counts as the first
    assert health.entry("lora", PEER).reason.code is Why.PROBATION
    health.success("lora", PEER, 111.0, ANSWER)
    assert health.state("lora", PEER) is DEGRADED
    health.success("lora", PEER, 112.0, ANSWER)
    assert health.state("lora", PEER) is UP
    assert [(c.old, c.new) for c in changes] == [(UP, DOWN), (DOWN, DEGRADED), (DEGRADED, UP)]


def test_failing_while_down_restarts_the_hold_down() -> None:
    health, changes = board(down_after=1, hold_down=10.0)
    health.failure("lora", PEER, 100.0, Reason(Why.SEND_FAILED, "no ack"))
    health.failure("lora", PEER, 108.0, Reason(Why.SEND_FAILED, "still nothing"))
    assert health.entry("lora", PEER).since == 108.0
    assert health.entry("lora", PEER).reason.detail == "still nothing"
    health.success("lora", PEER, 112.0, ANSWER)  # 12 s after the first failure, 4 after the last
    assert health.state("lora", PEER) is DOWN
    assert len(changes) == 1


def test_any_failure_while_down_restarts_the_hold_down() -> None:
    """Also one failure short of ``down_after``: the link fell hard, then failed once more."""
    health, _ = board(down_after=3, hold_down=30.0)
    health.failure("lora", PEER, 0.0, Reason(Why.SEND_FAILED, "radio unplugged"), hard=True)
    health.failure("lora", PEER, 10.0, Reason(Why.SEND_FAILED, "no ack"))
    health.success("lora", PEER, 30.0, ANSWER)  # 30 s after the fall, 20 after the last failure
    assert health.state("lora", PEER) is DOWN
    health.success("lora", PEER, 40.0, ANSWER)
    assert health.state("lora", PEER) is DEGRADED


def test_hard_reports_skip_the_hysteresis() -> None:
    health, changes = board(down_after=5, hold_down=60.0)
    health.failure("mqtt", None, 1.0, Reason(Why.SEND_FAILED, "broker connection lost"), hard=True)
    assert health.state("mqtt", None) is DOWN
    health.success("mqtt", None, 2.0, Reason(Why.LINK_UP, "reconnected"), hard=True)
    assert health.state("mqtt", None) is UP
    assert [(c.old, c.new, c.peer) for c in changes] == [(UP, DOWN, None), (DOWN, UP, None)]


def test_a_peer_is_seen_through_the_worse_of_its_own_and_the_links_state() -> None:
    health, _ = board()
    health.failure("mqtt", None, 1.0, Reason(Why.SEND_FAILED, "broker gone"), hard=True)
    assert health.state("mqtt", PEER) is DOWN
    assert health.entry("mqtt", PEER).state is UP  # the peer's own record is untouched
    health.success("mqtt", None, 2.0, Reason(Why.LINK_UP, "broker back"), hard=True)
    health.failure("mqtt", PEER, 3.0, Reason(Why.SEND_FAILED, "peer offline"), hard=True)
    assert health.state("mqtt", PEER) is DOWN
    assert health.state("mqtt", "ffeeddccbbaa9988") is UP


def test_every_listener_hears_every_change() -> None:
    health, first = board()
    second: list[HealthChanged] = []
    health.listen(second.append)
    health.failure("sine", PEER, 1.0, Reason(Why.SEND_FAILED, "no coverage"), hard=True)
    assert first == second and len(first) == 1
    assert (first[0].link, first[0].peer) == ("sine", PEER)


class HealthMachine(RuleBasedStateMachine):
    """Random successes, failures and hard reports on one (link, peer) as time moves on. Checked
    against the contract rather than a copy of the code: changes are reported exactly as they happen,
    a soft success never jumps from down to up, leaves down only after the hold-down, and enough
    consecutive failures always end down."""

    @initialize(
        down_after=st.integers(1, 4), up_after=st.integers(1, 4), hold_down=st.sampled_from([0.0, 2.0, 30.0])
    )
    def start(self, down_after: int, up_after: int, hold_down: float) -> None:
        self.changes: list[HealthChanged] = []
        self.health = HealthBoard(
            down_after=down_after, up_after=up_after, hold_down=hold_down, on_change=self.changes.append
        )
        self.now = 0.0
        self.state = UP
        self.failures_in_a_row = 0
        self.successes_in_a_row = 0
        self.down_since = 0.0

    def _observe(self, before: LinkState, seen: int) -> LinkState:
        after = self.health.state("lora", PEER)
        new = self.changes[seen:]
        if after is before:
            assert new == []
        else:
            assert [(c.old, c.new, c.at) for c in new] == [(before, after, self.now)]
        if after is DOWN and before is not DOWN:
            self.down_since = self.now
        self.state = after
        return after

    @rule(dt=st.floats(0, 20), hard=st.booleans())
    def failure(self, dt: float, hard: bool) -> None:
        self.now += dt
        before, seen = self.state, len(self.changes)
        self.health.failure("lora", PEER, self.now, Reason(Why.SEND_FAILED, "lost"), hard=hard)
        self.failures_in_a_row += 1
        self.successes_in_a_row = 0
        after = self._observe(before, seen)
        if before is DOWN:
            self.down_since = self.now  # failing while down restarts the hold-down
        if hard or self.failures_in_a_row >= self.health.down_after:
            assert after is DOWN
        else:
            assert after is (DEGRADED if before is not DOWN else DOWN)

    @rule(dt=st.floats(0, 20), hard=st.booleans())
    def success(self, dt: float, hard: bool) -> None:
        self.now += dt
        before, seen = self.state, len(self.changes)
        self.health.success("lora", PEER, self.now, ANSWER, hard=hard)
        self.failures_in_a_row = 0
        self.successes_in_a_row += 1
        after = self._observe(before, seen)
        if hard:
            assert after is UP
        elif before is DOWN:
            held = self.now - self.down_since >= self.health.hold_down
            assert after is (DEGRADED if held else DOWN)
            self.successes_in_a_row = 1 if held else 0
        elif before is DEGRADED:
            assert after is (UP if self.successes_in_a_row >= self.health.up_after else DEGRADED)
        else:
            assert after is UP

    @precondition(lambda self: self.state is DEGRADED)
    @rule()
    def degraded_recovers_after_up_after_answers(self) -> None:
        for _ in range(self.health.up_after):
            self.success(0.0, False)
        assert self.state is UP

    @invariant()
    def never_a_change_to_the_same_state(self) -> None:
        assert all(c.old is not c.new for c in self.changes)


# A short run in CI; --soak explores far more (it took ~1,500 runs to find the hold-down restart above).
_RUNS = 2000 if os.environ.get("BEREDT_SOAK") == "1" else 50
HealthMachine.TestCase.settings = settings(max_examples=_RUNS, stateful_step_count=25, deadline=None)
TestHealthMachine = HealthMachine.TestCase
