"""What a metered link spends for an exercise: LoRa airtime and satellite credits, as the link counts them.

A link never looks inside a frame, so it cannot tell an exercise's frame from a real one; the hub can.
Before the hub hands the pieces of an exercise's frame to a link, it opens a ``Tally`` for that
exercise and link (``charged_to``, a context variable: it follows the send into the transport's own
awaits, and no other send sees it). The transport reports what it actually spends where it counts it
against its own budget (``charge``): the airtime the radio was given, retransmissions the radio
reported, the credits a session cost (and a refund when it failed). Outside ``charged_to`` a charge
goes nowhere, so link probes, traceroutes and mailbox checks are never put on an exercise's account.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

AIRTIME = "airtime_s"
"""Seconds on air (LoRa)."""
CREDITS = "credits"
"""Satellite credits."""


@dataclass(slots=True)
class Tally:
    """What one link spent for one exercise: seconds of airtime and credits."""

    airtime_s: float = 0.0
    credits: int = 0
    refused: int = 0
    """Exercise frames kept off the link because the exercise may not use it (a paid link)."""

    def add(self, what: str, amount: float) -> None:
        if what == AIRTIME:
            self.airtime_s += amount
        elif what == CREDITS:
            self.credits += int(amount)
        else:
            raise ValueError(f"unknown meter {what!r}")


_current: ContextVar[Tally | None] = ContextVar("beredt_metering_tally", default=None)


@contextmanager
def charged_to(tally: Tally | None) -> Iterator[None]:
    """Within the block, what a link ``charge``s goes on ``tally`` (None: on no account)."""
    token = _current.set(tally)
    try:
        yield
    finally:
        _current.reset(token)


def charge(what: str, amount: float) -> None:
    """A link spent ``amount`` of ``what`` (``AIRTIME`` or ``CREDITS``; negative: refunded)."""
    tally = _current.get()
    if tally is not None:
        tally.add(what, amount)
