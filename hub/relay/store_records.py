"""What the store hands out: messages, delivery rows and pages of unfinished deliveries to resume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hub.core.frame import Frame, Priority


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A delivery that was not finished when the store was opened: resume it."""

    message_id: bytes
    hop: bytes
    recipient: bytes
    wire: bytes
    priority: Priority
    expires: int
    attempts: int
    end_to_end_acked: bool
    """The recipient's end-to-end ack is on record (it came while the delivery waited on disk)."""


@dataclass(frozen=True, slots=True)
class PendingPage:
    """One page of a next hop's unfinished deliveries, and where the next page of that priority starts."""

    deliveries: list[PendingDelivery]
    after: tuple[float, int]
    """(accepted_at, rowid) of the last message read; pass it back to read on."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: bytes
    wire: bytes
    sender: bytes
    recipient: bytes
    kind: int
    priority: int
    created: int
    expires: int
    local: bool
    for_me: bool
    state: str
    accepted_at: float
    via: str | None
    e2e_acked_at: float | None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    hop: bytes
    """The route's primary next hop: the delivery's key."""
    state: str
    attempts: int
    link: str | None
    last_error: str | None
    updated: float
    next_hop: bytes | None
    """The hop that actually took the frame (an alternative when the primary was unreachable)."""


MESSAGE_COLUMNS = (
    "id, wire, sender, recipient, kind, priority, created, expires, local, for_me, state, accepted_at, via,"
    " e2e_acked_at"
)


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    return StoredMessage(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        bool(row[8]),
        bool(row[9]),
        row[10],
        row[11],
        row[12],
        row[13],
    )


@dataclass(frozen=True, slots=True)
class Incoming:
    """A message to commit with ``Store.accept_many``: its frame, the bytes to store (hop counter already
    raised when it goes on), and one queued delivery per next hop (none: it is for us, stored delivered)."""

    frame: Frame
    wire: bytes
    hops: tuple[bytes, ...]
    local: bool
    for_me: bool
    via: str | None
