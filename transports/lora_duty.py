"""What the radio says about its EU 868 duty cycle, and how long it will refuse to send because of it.

When the firmware's own duty-cycle limit is reached it first sends the host a notice ("... You can send
again in N mins", ``Router.cpp``) and then NAKs the packet with ``DUTY_CYCLE_LIMIT``. ``RadioDutyCycle``
keeps the radio's figure from the notice (or ``DUTY_CYCLE_BACKOFF`` when it gave none), so the link
refuses sends itself until then instead of provoking the radio again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

DUTY_CYCLE_BACKOFF = 600.0
"""Seconds to stay off the air after the radio refused for duty cycle without saying for how long."""
DUTY_NOTICE = re.compile(r"send again in (\d+) min")
"""The firmware's notice before a duty-cycle NAK: "... You can send again in N mins" (Router.cpp)."""
FRESH = 10.0
"""Seconds a notice counts as belonging to the NAK that follows it."""


class RadioDutyCycle:
    def __init__(self) -> None:
        self.refuses_until = 0.0
        """Monotonic time until which the radio refuses to send."""
        self._notice: tuple[float, float] | None = None
        """When the radio last said how long it will refuse (monotonic time, seconds)."""
        self._arrived = asyncio.Event()

    def heard(self, message: str) -> bool:
        """Take a notice of the radio's; whether it was the duty-cycle one."""
        match = DUTY_NOTICE.search(message)
        if match is None:
            return False
        now, seconds = time.monotonic(), max(60.0, 60.0 * int(match.group(1)))
        self._notice = (now, seconds)
        self.refuses_until = now + seconds
        self._arrived.set()
        return True

    def refusing_for(self, now: float) -> float:
        """Seconds the radio still refuses to send (0: it does not)."""
        return max(0.0, self.refuses_until - now)

    async def await_notice(self) -> None:
        """The firmware sends its notice just before the NAK, but pubsub's thread may deliver it after."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                while self._fresh() is None:
                    self._arrived.clear()
                    await self._arrived.wait()

    def refused(self) -> float:
        """The radio NAKed for duty cycle: seconds it refuses (its own figure, if it gave one)."""
        seconds = self._fresh() or DUTY_CYCLE_BACKOFF
        self.refuses_until = time.monotonic() + seconds
        return seconds

    def _fresh(self) -> float | None:
        notice = self._notice
        return notice[1] if notice is not None and time.monotonic() - notice[0] < FRESH else None
