"""Hub events for live views (console, CLI watch, log book): a small fan-out bus.

Each subscriber gets its own bounded queue; a subscriber that does not keep up loses its oldest events
(and is told how many through ``Overflow``) rather than slowing the hub down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from hub.relay.link_reasons import Reason


@dataclass(frozen=True, slots=True)
class MessageReceived:
    id: str
    sender: str
    kind: str
    link: str
    priority: str


@dataclass(frozen=True, slots=True)
class MessageSent:
    """A message from this hub was accepted (signed and stored) for delivery."""

    id: str
    to: str
    kind: str
    priority: str
    status: str = "actual"
    """CAP status: actual, exercise or test."""


@dataclass(frozen=True, slots=True)
class DeliveryChanged:
    id: str
    hop: str
    state: str
    link: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class EndToEndAcked:
    id: str
    by: str


@dataclass(frozen=True, slots=True)
class LinkHealthChanged:
    link: str
    peer: str | None
    old: str
    new: str
    reason: Reason


@dataclass(frozen=True, slots=True)
class FrameRefused:
    link: str
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class RadioStatus:
    """An unsigned status from a radio network (SINE status SDS): vouched for by the network, not by keys."""

    link: str
    source: str
    peer: str | None
    status: str | None
    value: int


@dataclass(frozen=True, slots=True)
class ExerciseChanged:
    """The exercise this hub takes part in started, paused, resumed, took a link down or ended (None)."""

    exercise: dict[str, object] | None


@dataclass(frozen=True, slots=True)
class Overflow:
    lost: int


HubEvent = (
    MessageReceived
    | MessageSent
    | DeliveryChanged
    | EndToEndAcked
    | LinkHealthChanged
    | FrameRefused
    | RadioStatus
    | ExerciseChanged
    | Overflow
)


class EventBus:
    def __init__(self, queue_size: int = 1000) -> None:
        if queue_size < 3:
            raise ValueError("queue_size must leave room for an overflow marker and an event")
        self.queue_size = queue_size
        self._subscribers: set[asyncio.Queue[HubEvent]] = set()

    def publish(self, event: HubEvent) -> None:
        for queue in self._subscribers:
            if queue.full():  # make room for the marker and the event by dropping the two oldest
                queue.get_nowait()
                queue.get_nowait()
                queue.put_nowait(Overflow(2))
            queue.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[HubEvent]:
        queue: asyncio.Queue[HubEvent] = asyncio.Queue(self.queue_size)
        self._subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._subscribers.discard(queue)
