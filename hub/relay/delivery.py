"""Delivery of one message to one next hop: an explicit state machine.

    QUEUED ──send starts──► SENDING ──link took it──► SENT ──hop ack──► HOP_ACKED
      ▲                        │  └──link ack (radio/SDS report)──────► HOP_ACKED
      └──── send failed ───────┘                        │
      └──────────────────── hop ack timed out ──────────┘
    QUEUED, SENDING, SENT ──► EXPIRED (past the frame's expiry) or EVICTED (store quota)

An end-to-end ack signed by the message's recipient also settles every open hop (the far end has it, so
did the hop); a hop ack settles a delivery only when signed by a hop the frame was handed to.
``SENDING`` exists only in memory: a restart resumes ``SENT`` and ``QUEUED`` deliveries as ``QUEUED``.
Retries back off exponentially with jitter, capped, so a dead link is not hammered and many queued
frames do not retry in lock-step.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field

from hub.core.frame import Priority
from hub.core.transport import Cost

_RANDOM = random.Random()


class DeliveryState(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    HOP_ACKED = "hop-acked"
    EXPIRED = "expired"
    EVICTED = "evicted"


_OPEN = {DeliveryState.QUEUED, DeliveryState.SENDING, DeliveryState.SENT}
TRANSITIONS: dict[DeliveryState, frozenset[DeliveryState]] = {
    DeliveryState.QUEUED: frozenset(
        {DeliveryState.SENDING, DeliveryState.HOP_ACKED, DeliveryState.EXPIRED, DeliveryState.EVICTED}
    ),
    DeliveryState.SENDING: frozenset(
        {
            DeliveryState.SENT,
            DeliveryState.QUEUED,
            DeliveryState.HOP_ACKED,
            DeliveryState.EXPIRED,
            DeliveryState.EVICTED,
        }
    ),
    DeliveryState.SENT: frozenset(
        {DeliveryState.HOP_ACKED, DeliveryState.QUEUED, DeliveryState.EXPIRED, DeliveryState.EVICTED}
    ),
    DeliveryState.HOP_ACKED: frozenset(),
    DeliveryState.EXPIRED: frozenset(),
    DeliveryState.EVICTED: frozenset(),
}


class IllegalTransition(RuntimeError):
    """A programming error: the router asked for a move the table forbids."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential back-off with full jitter in [base/2, base) of the current step."""

    initial: float = 1.0
    cap: float = 300.0
    factor: float = 2.0

    def delay(self, attempts: int, rng: random.Random = _RANDOM) -> float:
        step = min(self.cap, self.initial * self.factor ** max(0, attempts - 1))
        return step * (0.5 + rng.random() / 2)


@dataclass(slots=True)
class Delivery:
    """One (message, next hop) in flight, mirrored in the store's ``deliveries`` table."""

    message_id: bytes
    hop: bytes
    wire: bytes
    priority: Priority
    expires: int
    state: DeliveryState = DeliveryState.QUEUED
    attempts: int = 0
    next_attempt: float = 0.0
    link: str | None = None
    last_error: str | None = None
    tried: set[str] = field(default_factory=set)
    """Links tried since the last full round; failover walks the ranking past these."""
    candidates: list[bytes] = field(default_factory=list)
    """Next hops that may carry it: the route's primary first, then its alternatives."""
    preferred: str | None = None
    """A link to try first when it is usable (a roll-call re-sent over the next link, say)."""
    carrier: bytes | None = None
    """The next hop that took the frame (one of ``candidates``)."""
    handed_to: set[bytes] = field(default_factory=set)
    """Next hops the frame was handed to since it was loaded: only their hop acks settle it."""
    inflight: int = 0
    """Attempts handed to links and not yet finished (several at once for life-safety fan-out)."""
    drill: bool = False
    """An exercise's or a test's frame: queued behind every real one, and never on a paid link unless its
    exercise allows it (``paid``)."""
    paid: bool = False
    """A drill made while its exercise's scenario allowed the satellite link: there it may spend credit
    as real traffic of its priority does (it still never fans out)."""
    refused_paid: bool = False
    """Its refusal of a paid link is on the exercise's account already (``hub.relay.planning``)."""
    arrival: int = 0
    """Its place in line among frames of its order: the router numbers deliveries as it takes them up, so
    a frame that fails over to another link goes ahead of those that came after it, not behind them."""

    @property
    def order(self) -> tuple[int, int, int]:
        """Queue key, smallest first: real before drill, then higher priority first, then (real frames)
        first come. An exercise's frames go in the order they fall due: when its simulated outages are
        lifted its "end" control falls due before the older "outage" controls parked by them, and must
        reach the other hubs first, or a hub would take the outage up after the end and stay deaf to the
        coordinator until the outage ran out."""
        return int(self.drill), -int(self.priority), 0 if self.drill else self.arrival

    @property
    def policy_priority(self) -> Priority:
        """The priority the link policy sees: a drill may use free and metered links (so an exercise fails
        over for real), never paid credit unless its exercise allows it, and never fans out."""
        if not self.drill:
            return self.priority
        return min(self.priority, Priority.URGENT if self.paid else Priority.NORMAL)

    def send_priority(self, cost: Cost) -> Priority:
        """The priority a link (of ``cost``) and its own queue and budget see: routine for a drill, so it
        waits behind real frames and fills only the routine share of a radio's airtime; on a paid link its
        exercise allows, the priority the policy saw, which the link's own floor judges as for real."""
        if self.paid and cost is Cost.PAID:
            return self.policy_priority
        return Priority.ROUTINE if self.drill else self.priority

    @property
    def open(self) -> bool:
        return self.state in _OPEN

    def move(self, new: DeliveryState) -> None:
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransition(
                f"delivery {self.message_id.hex()} -> {self.hop.hex()}: {self.state} -> {new}"
            )
        self.state = new


@dataclass(frozen=True, slots=True)
class HopAckOutcome:
    """What one hop ack did: deliveries it settled, and ids its signer was never handed."""

    settled: int
    refused: int


@dataclass(frozen=True, slots=True)
class DeliveryProgress:
    """An open delivery as the router sees it now, for people watching a message (console, CLI)."""

    hop: bytes
    state: DeliveryState
    link: str | None
    last_error: str | None
    attempts: int
    next_try: float | None
    """Wall-clock time of the next attempt (or of the hop-ack deadline while it is sent)."""
    no_usable_link: bool
    """The last round found no link up to any of its next hops."""
