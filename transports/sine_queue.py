"""The SINE radio's control-channel queue: which SDS goes next, and when it may.

SDS ride the control channel, which tolerates a few messages per minute per radio and no bursts: every
SDS a radio sends (frames, delivery reports, status, answers to team terminals) waits in one queue,
highest priority first, and leaves ``interval`` seconds after the one before. ``SdsJob`` is one such SDS
with the future its sender awaits; ``settle`` decides that future once.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from hardware import tetra_pei as pei
from hub.core.errors import DeliveryRefused


@dataclass(slots=True)
class SdsJob:
    dest: str
    """The address dialled: an SSI, or a 17-digit TSI for a radio of another network."""
    payload: pei.Transfer | pei.Report | int  # an int is a status value
    future: asyncio.Future[None] | None
    ref: int = 0
    """The reference the frame's report will carry: ours, or the radio's own once it gives one."""

    @property
    def peer(self) -> str:
        return pei.ssi_of(self.dest)


class SdsQueue:
    """Jobs by priority (first come first within one), released one per ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._heap: list[tuple[int, int, SdsJob]] = []
        self._queued = asyncio.Event()
        self._seq = itertools.count()
        self._last_sent = float("-inf")

    def __len__(self) -> int:
        return len(self._heap)

    def __iter__(self) -> Iterator[SdsJob]:
        return (job for _, _, job in self._heap)

    def wait_seconds(self, priority: int) -> float:
        """How long a new SDS of ``priority`` would wait for its turn."""
        ahead = sum(1 for key, _, _ in self._heap if -key >= priority)
        now = asyncio.get_running_loop().time()
        return max(0.0, self._last_sent + self.interval - now) + ahead * self.interval

    def push(self, job: SdsJob, priority: int) -> None:
        heapq.heappush(self._heap, (-priority, next(self._seq), job))
        self._queued.set()

    async def next_due(self) -> SdsJob:
        """The next job, once the control channel allows another SDS."""
        loop = asyncio.get_running_loop()
        while not self._heap:
            self._queued.clear()
            await self._queued.wait()
        await asyncio.sleep(max(0.0, self._last_sent + self.interval - loop.time()))
        return heapq.heappop(self._heap)[2]

    def sent_now(self) -> None:
        """The radio was just asked to send (whatever came of it): the next SDS waits a full interval."""
        self._last_sent = asyncio.get_running_loop().time()

    def clear(self) -> list[SdsJob]:
        """Empty the queue; returns what was in it."""
        jobs = [job for _, _, job in self._heap]
        self._heap.clear()
        return jobs


def settle(future: asyncio.Future[None] | None, error: BaseException | None) -> None:
    """Decide a sender's future (done with ``error``, or done if None) unless it already is."""
    if future is None or future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def sds_address(dest: str, link: str) -> str:
    """``dest`` as the radio dials it: an SSI without leading zeros, or a 17-digit TSI as given."""
    if dest.isdigit() and len(dest) == pei.TSI_DIGITS:
        return dest
    if dest.isdigit() and 1 <= len(dest) <= pei.SSI_DIGITS:
        return str(int(dest))
    raise DeliveryRefused(
        f"{dest!r} is not an ISSI (1-8 digits) or TSI (17 digits)",
        transport=link,
        peer=dest,
        reason="bad-address",
    )
