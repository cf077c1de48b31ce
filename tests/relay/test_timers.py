"""The router's timers: settled deliveries leave them at once, and empty timers do not pile up."""

from __future__ import annotations

from hub.core.frame import Priority
from hub.relay.delivery import Delivery
from hub.relay.timers import COMPACT_ABOVE, Timers


def delivery(n: int) -> Delivery:
    return Delivery(n.to_bytes(16, "big"), b"h" * 8, b"wire", Priority.NORMAL, expires=2_000_000_000)


def test_a_batch_shares_one_timer_and_a_cancelled_delivery_is_not_due() -> None:
    timers = Timers()
    batch = tuple(delivery(n) for n in range(3))
    timers.set(batch, due=10.0)
    timers.cancel(batch[1])
    assert [timers.due(d) for d in batch] == [10.0, None, 10.0]
    assert timers.pop(9.0) is None
    timer = timers.pop(10.0)
    assert timer is not None
    assert [timers.take(d, timer) for d in batch] == [True, False, True]
    assert not any(timers.has(d) for d in batch) and timers.pop(10.0) is None


def test_a_delivery_given_a_new_timer_leaves_its_old_one() -> None:
    timers = Timers()
    first = delivery(1)
    timers.set((first,), due=5.0)
    timers.set((first,), due=1.0)
    assert timers.due(first) == 1.0
    early, late = timers.pop(1.0), timers.pop(5.0)
    assert early is not None and late is not None
    assert list(early.deliveries.values()) == [first] and not late.deliveries


def test_empty_timers_are_dropped_once_they_outnumber_the_rest() -> None:
    timers = Timers()
    waiting = delivery(0)
    timers.set((waiting,), due=100.0)
    for n in range(1, 1000):  # each settled at once, its timer left empty until it would fall due
        settled = delivery(n)
        timers.set((settled,), due=50.0)
        timers.cancel(settled)
    assert len(timers) <= 2 * 1 + COMPACT_ABOVE + 1
    assert timers.due(waiting) == 100.0
    due = []
    while (timer := timers.pop(100.0)) is not None:  # the few empty ones left, then the waiting one
        due += [d for d in list(timer.deliveries.values()) if timers.take(d, timer)]
    assert due == [waiting]
