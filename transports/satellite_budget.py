"""What the two satellite roles share: the daily credit budget and the common transport base.

Every Iridium SBD message is billed in credits (one per started 50 bytes), whether a local 9603 modem
sends it (``transports.satellite``) or the provider's MT API queues it (``transports.satellite_webhook``).
``CreditBudget`` counts the credits of each UTC day in a small JSON file, written so that a power cut
leaves the old count or the new one, and refuses what does not fit with ``BudgetExhausted``.
``SatelliteBase`` holds what both role transports do alike: the event queue, the priority floor that keeps
routine traffic off the paid link, reserving a frame's credits, and ending the events on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hardware import iridium_sbd as sbd
from hub.core.clock import Clock
from hub.core.errors import BudgetExhausted, FrameTooLarge, TransportClosed
from hub.core.files import write_atomically
from hub.core.metering import CREDITS, charge
from hub.core.transport import Capabilities, Cost, TransportEvent

WEBHOOK_MTU = 5 * sbd.CREDIT_BYTES  # 250, within the 270-byte MT limit
_SESSION_RATE = 10.0  # bytes/s: ~232 bytes per session of 5-20 s, for drain-time estimates
_PRIORITY_NAMES = ("routine", "normal", "urgent", "life-safety")


class CreditBudget:
    """Credits spent per UTC day, kept in a small JSON file so restarts do not forget them."""

    def __init__(self, path: Path, daily: int, clock: Clock, *, transport: str) -> None:
        self.path = path
        self.daily = daily
        self.clock = clock
        self.transport = transport
        self._day, self._used = self._load()

    @property
    def used_today(self) -> int:
        self._roll()
        return self._used

    def reserve(self, credits: int, peer: str | None = None) -> None:
        """Count ``credits`` as spent now, or raise ``BudgetExhausted`` if they do not fit today."""
        self._roll()
        if self._used + credits > self.daily:
            raise BudgetExhausted(
                f"daily satellite budget spent: {self._used} of {self.daily} credits used, "
                f"this frame needs {credits}",
                transport=self.transport,
                peer=peer,
                retry_after=self._seconds_to_midnight(),
            )
        self._used += credits
        self._save()
        charge(CREDITS, credits)  # on the account of the exercise the hub sends for, if any

    def refund(self, credits: int) -> None:
        self._roll()
        self._used = max(0, self._used - credits)
        self._save()
        charge(CREDITS, -credits)

    def spend(self, credits: int) -> None:
        """Count credits already spent (MT traffic the gateway billed), even beyond the budget."""
        self._roll()
        self._used += credits
        self._save()

    def _today(self) -> str:
        return datetime.fromtimestamp(self.clock.time(), UTC).date().isoformat()

    def _seconds_to_midnight(self) -> float:
        now = datetime.fromtimestamp(self.clock.time(), UTC)
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        return max(1.0, (midnight - now).total_seconds())

    def _roll(self) -> None:
        if self._day != self._today():
            self._day, self._used = self._today(), 0

    def _load(self) -> tuple[str, int]:
        try:
            state = json.loads(self.path.read_text())
            return str(state["day"]), int(state["used"])
        except FileNotFoundError:
            return self._today(), 0
        except (ValueError, KeyError, TypeError) as exc:
            logging.getLogger(__name__).error(
                "%s unreadable (%s): counting today's credits from 0", self.path, exc
            )
            return self._today(), 0

    def _save(self) -> None:
        # A power cut leaves the old count or the new one, never half a file. A few satellite frames a day
        # make the fsyncs affordable even on an SD card.
        write_atomically(self.path, json.dumps({"day": self._day, "used": self._used}))


class SatelliteBase:
    """What both roles share: events, the priority floor, the budget and closing."""

    def __init__(
        self, name: str, mtu: int, budget: CreditBudget, min_priority: int, logger: logging.Logger
    ) -> None:
        self.name = name
        self.capabilities = Capabilities(
            mtu=mtu, link_ack=False, cost=Cost.PAID, bytes_per_second=_SESSION_RATE
        )
        self.budget = budget
        self.min_priority = min_priority
        self.log = logger
        self.closed = False
        self._events: asyncio.Queue[TransportEvent | None] = asyncio.Queue(maxsize=1000)

    def _admit(self, dest: str, data: bytes, priority: int, wire_size: int) -> int:
        """Check closing, size and priority, then reserve the frame's credits; returns them."""
        if self.closed:
            raise TransportClosed("send after close", transport=self.name, peer=dest)
        if len(data) > self.capabilities.mtu:
            raise FrameTooLarge(
                f"{len(data)} bytes > MTU {self.capabilities.mtu}", transport=self.name, peer=dest
            )
        if priority < self.min_priority:
            raise BudgetExhausted(
                f"priority {priority} ({_PRIORITY_NAMES[max(0, min(priority, 3))]}) may not use the paid "
                f"satellite link; min_priority is {self.min_priority} ({_PRIORITY_NAMES[self.min_priority]})",
                transport=self.name,
                peer=dest,
                retry_after=3600.0,
            )
        credits = sbd.credits_for(wire_size)
        self.budget.reserve(credits, dest)
        return credits

    def _put(self, event: TransportEvent) -> None:
        if self.closed:
            return
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:  # the hub stopped reading; a paid message is logged, not lost silently
            self.log.error("%s: event queue full, dropped %s", self.name, type(event).__name__)

    async def events(self) -> AsyncIterator[TransportEvent]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    def _end_events(self) -> None:
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait(None)
