"""The internet link's sending side, per destination URL: its lanes, the waiters of ``send_batch``,
and which queued frames the next POST carries.

Each destination has one lane per priority and, above them, one for acks (ranked by
``TransportContext.frame_rank``), so an ack never waits behind data. A ``send_batch`` call is one
``Waiter``: one future for all its frames, each frame's outcome apart.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from yarl import URL

from hub.core.errors import TransportError
from hub.core.ranked import URGENT_RANK

BATCH_BYTES = 64 * 1024  # a batch body stays under this unless one frame alone is larger
PRIORITY_LANES = 4  # hub.core.frame.Priority ROUTINE..LIFE_SAFETY; transports never import message kinds
SEND_LANES = URGENT_RANK + 1  # the priority lanes and, above them, acks
PROMPT_LANE = 2  # hub.core.frame.Priority.URGENT: this lane and those above go without waiting for company
MAX_RETRY_AFTER = 30.0  # a longer Retry-After from a peer is cut to this


class Waiter:
    """The frames of one ``send_batch``: one future for all of them, each frame's outcome apart."""

    __slots__ = ("future", "outcomes", "pending", "settled")

    def __init__(self, future: asyncio.Future[None], count: int) -> None:
        self.future = future
        self.outcomes: list[TransportError | None] = [None] * count
        self.settled = bytearray(count)
        self.pending = count

    def done(self) -> bool:
        """Its sender stopped waiting (cancelled or timed out), or every frame has its outcome."""
        return self.future.done()

    def settle(self, index: int, error: TransportError | None) -> None:
        if self.future.done() or self.settled[index]:
            return
        self.settled[index] = 1
        self.outcomes[index] = error
        self.pending -= 1
        if not self.pending:
            self.future.set_result(None)

    def give_up(self, error: TransportError) -> None:
        """The sender stops waiting: ``error`` for every frame still without an outcome. A frame of it
        still queued is skipped by the pump; one in a POST under way may yet arrive (acks settle that)."""
        for index, settled in enumerate(self.settled):
            if not settled:
                self.outcomes[index] = error
        if not self.future.done():
            self.future.cancel()


Item = tuple[bytes, Waiter, int, int]  # a frame, its sender's waiter, its index there, its send lane


@dataclass(eq=False, slots=True)
class Destination:
    """Client-side state of one destination URL: its send lanes, its pump and what we last saw of it."""

    url: str
    frames_url: URL
    probe_url: URL
    lanes: tuple[deque[Item], ...] = field(default_factory=lambda: tuple(deque() for _ in range(SEND_LANES)))
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    prompt: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a frame of ``PROMPT_LANE`` or above, or a full POST's worth, is queued: it ends the wait
    for company."""
    in_flight: list[Item] = field(default_factory=list)
    pump: asyncio.Task[None] | None = None
    up: bool | None = None  # None until the first answer or failure
    busy: bool = False  # its last answer was 503 with Retry-After: we wait, it is not down


def prompt_queued(peer: Destination, batch_max: int) -> bool:
    """Whether the next POST to ``peer`` goes without waiting for company: an urgent or life-safety
    frame or an ack is waiting, or ``batch_max`` frames already are (company would not fit in it)."""
    if any(peer.lanes[lane] for lane in range(PROMPT_LANE, SEND_LANES)):
        return True
    return sum(len(lane) for lane in peer.lanes) >= batch_max


def take_batch(peer: Destination, batch_max: int) -> list[Item]:
    """The next POST's frames for ``peer``: highest lane first, at most ``batch_max`` frames and
    ``BATCH_BYTES`` (unless the first frame alone is larger). Frames whose sender stopped waiting are
    dropped."""
    batch: list[Item] = []
    size = 0
    for lane in reversed(peer.lanes):  # highest priority first
        while lane and len(batch) < batch_max:
            data, waiter, _, _ = lane[0]
            if waiter.done():  # its sender was cancelled or timed out
                lane.popleft()
                continue
            if batch and size + len(data) + 2 > BATCH_BYTES:
                return batch
            batch.append(lane.popleft())
            size += len(data) + 2
    return batch


def describe(exc: BaseException, timeout: float | None) -> str:
    """A short reason for logs and ``LinkChanged``: aiohttp's reprs carry whole connection keys."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout} s"
    return str(exc) or type(exc).__name__


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header in delta-seconds form (capped); None if absent or a date."""
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER)
