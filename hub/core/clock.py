"""Injected time, and how far the hub may trust its wall clock.

Everything that waits or stamps asks a ``Clock``; tests drive a ``ManualClock`` instead of sleeping.
A Raspberry Pi without a real-time clock boots in 1970 after a power cut, so the wall clock is only
*trusted* once it is past ``PLAUSIBLE_EPOCH`` or has been corrected from a better source (GPS via the
radio, Iridium network time, signed timestamps of trusted peers); until then expiry checks are relaxed
rather than refusing every fresh frame.
"""

from __future__ import annotations

import time
from typing import Protocol

PLAUSIBLE_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z: no genuine clock reads earlier than this build


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock Unix time in seconds, corrected by any accepted offset."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring intervals; never jumps."""
        ...

    @property
    def trusted(self) -> bool:
        """Whether ``time()`` is believed correct to within a few minutes."""
        ...

    def correct(self, unix_time: float, source: str) -> None:
        """Adopt ``unix_time`` as now, as read from ``source`` (GPS, Iridium, a trusted peer)."""
        ...


class SystemClock:
    """The machine's clock plus an offset learned from outside sources."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.source = "system"

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()

    @property
    def trusted(self) -> bool:
        return self.time() >= PLAUSIBLE_EPOCH or self.source != "system"

    def correct(self, unix_time: float, source: str) -> None:
        """Adopt ``unix_time`` as now, as read from ``source``."""
        self.offset = unix_time - time.time()
        self.source = source


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.mono = 0.0
        self.source = "manual"

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    @property
    def trusted(self) -> bool:
        return self.now >= PLAUSIBLE_EPOCH

    def correct(self, unix_time: float, source: str) -> None:
        self.now = unix_time
        self.source = source

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds
