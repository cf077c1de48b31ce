"""The router's timers: when each open delivery is next due, in one heap.

A batch sent together shares one timer (its hop-ack deadline). A delivery leaves its timer as soon as it
settles or is given another, so a settled delivery is freed at once instead of staying referenced from
the heap until the deadline passes: at 500 messages/s and a 5 s hop-ack timeout that held some 2 500
deliveries, each with its sets and lists, which the garbage collector walked again and again. A timer
left empty stays in the heap until it falls due, unless empty ones come to outnumber the rest: then the
heap is rebuilt without them.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from hub.relay.delivery import Delivery

COMPACT_ABOVE = 64
"""Empty timers the heap may hold beyond twice the deliveries scheduled before it is rebuilt."""


@dataclass(eq=False, slots=True)
class Timer:
    due: float
    deliveries: dict[int, Delivery]
    """The deliveries still on it, by ``id()``."""


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[float, tuple[int, int, int], int, Timer]] = []
        self._of: dict[int, Timer] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        """Timers held, empty ones included."""
        return len(self._heap)

    def set(self, deliveries: tuple[Delivery, ...], due: float) -> None:
        """One timer for ``deliveries`` (best first), each taken off the timer it had."""
        timer = Timer(due, {})
        for delivery in deliveries:
            self.cancel(delivery)
            timer.deliveries[id(delivery)] = delivery
            self._of[id(delivery)] = timer
        heapq.heappush(self._heap, (due, deliveries[0].order, next(self._seq), timer))
        if len(self._heap) > 2 * len(self._of) + COMPACT_ABOVE:  # most of them are empty
            self._heap = [entry for entry in self._heap if entry[3].deliveries]
            heapq.heapify(self._heap)

    def cancel(self, delivery: Delivery) -> None:
        """``delivery`` has no timer any more (settled, dropped, or about to get another)."""
        timer = self._of.pop(id(delivery), None)
        if timer is not None:
            del timer.deliveries[id(delivery)]

    def has(self, delivery: Delivery) -> bool:
        return id(delivery) in self._of

    def due(self, delivery: Delivery) -> float | None:
        """When ``delivery``'s timer falls due (monotonic), None without one."""
        timer = self._of.get(id(delivery))
        return None if timer is None else timer.due

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop(self, now: float) -> Timer | None:
        """The earliest timer due at ``now``, off the heap; None when none is. Its deliveries are still on
        it: ``take`` each one as it is acted on (acting on one may settle or reschedule another)."""
        if not self._heap or self._heap[0][0] > now:
            return None
        return heapq.heappop(self._heap)[3]

    def take(self, delivery: Delivery, timer: Timer) -> bool:
        """Take ``delivery`` off ``timer`` if it is still on it: whether it was."""
        if self._of.get(id(delivery)) is not timer:
            return False
        self.cancel(delivery)
        return True
