"""Time from neighbours: a hub at 1970 takes it only when several signers' live readings (answers to its
time challenges) agree, and only nudges it after. That frames and recorded answers never count is tested
across processes in tests/hubs/test_clock_from_peers.py."""

from __future__ import annotations

from hub.core.clock import ManualClock
from hub.relay.timesync import AGREE, MAX_STEP, NeighbourTime

NOW = 1_800_000_000
THREE_DAYS = 3 * 24 * 3600
A, B, C = b"a" * 8, b"b" * 8, b"c" * 8


def test_one_signer_does_not_set_an_untrusted_clock() -> None:
    clock = ManualClock(start=100.0)
    time = NeighbourTime(clock)
    time.offer(A, NOW - THREE_DAYS)  # a peer whose own clock is three days behind
    time.offer(A, NOW)
    assert not clock.trusted and clock.time() == 100.0


def test_two_signers_that_disagree_do_not_set_it_either() -> None:
    clock = ManualClock(start=100.0)
    time = NeighbourTime(clock)
    time.offer(A, NOW - THREE_DAYS)
    time.offer(B, NOW)
    assert not clock.trusted


def test_two_signers_that_agree_set_it() -> None:
    clock = ManualClock(start=100.0)
    time = NeighbourTime(clock)
    time.offer(A, NOW - THREE_DAYS)
    time.offer(B, NOW)
    clock.advance(30)
    time.offer(C, NOW + 25)  # B's reading has aged 30 s meanwhile: C agrees with it
    assert clock.trusted and time.owns_clock
    assert abs(clock.time() - (NOW + 25)) <= AGREE


def test_once_set_neighbours_only_nudge_it() -> None:
    clock = ManualClock(start=100.0)
    time = NeighbourTime(clock)
    time.offer(A, NOW)
    time.offer(B, NOW)
    set_at = clock.time()
    time.offer(A, NOW - THREE_DAYS)  # both keys now lie: three days back
    time.offer(B, NOW - THREE_DAYS)
    assert clock.time() == set_at - MAX_STEP


def test_a_clock_right_by_itself_or_from_gps_is_never_touched() -> None:
    clock = ManualClock(start=NOW)
    time = NeighbourTime(clock)
    time.offer(A, NOW - THREE_DAYS)
    time.offer(B, NOW - THREE_DAYS)
    assert clock.time() == NOW

    at_1970 = ManualClock(start=100.0)
    time = NeighbourTime(at_1970)
    time.offer(A, NOW)
    time.offer(B, NOW)
    at_1970.correct(NOW + 3, "GPS")
    time.outside_hint()
    time.offer(A, NOW + 200)
    time.offer(B, NOW + 200)
    assert at_1970.time() == NOW + 3
