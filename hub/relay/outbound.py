"""The router's link queues: attempts wait here per link, best first, and go out in batches.

Each link has a priority queue of attempts: life-safety first, every real frame before an exercise's
(``Delivery.order``), real ones in the order the hub took them up: a frame that comes to a link after
failing on another keeps its place ahead of those that arrived after it (a sitrep bounced off a dead
radio does not wait behind the notes that came in meanwhile). A link that carries many frames in one go
(``LinkSet.batches``: the internet link, one POST) takes what is queued for it at once, up to
``BATCH_FRAMES`` frames and ``BATCH_BYTES`` bytes, best first, and hands each next hop's share over in
one call under one deadline; any other link takes one attempt at a time, so on a slow radio a
life-safety frame queued meanwhile never waits behind a batch. Every frame keeps its own outcome: a frame
the far side refused fails alone, a failed batch fails each of its frames, and the router retries or
fails over each one as it would a single send.

A link's budget running out (``BudgetExhausted``) holds back what it covers: for an exercise's frame only
the exercise's share, so a spent drill allowance never blocks real traffic.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence

from hub.core.clock import Clock
from hub.core.errors import BudgetExhausted, TransportError
from hub.relay.delivery import Delivery, DeliveryState
from hub.relay.health import HealthChanged, LinkState
from hub.relay.link_reasons import Reason, Why
from hub.relay.links import LinkSet
from hub.relay.planning import Attempt
from hub.relay.policy import Policy

log = logging.getLogger("beredt.router")

BATCH_FRAMES = 64
"""Frames one batch takes at most: one POST of the internet link at its default ``batch_max``."""
BATCH_BYTES = 64 * 1024
"""Bytes one batch takes at most, unless its first frame alone is larger."""

_Queued = tuple[tuple[int, int, int], int, Attempt]


class LinkQueues:
    def __init__(self, links: LinkSet, clock: Clock) -> None:
        self.links = links
        self.clock = clock
        self._queues: dict[str, asyncio.PriorityQueue[_Queued]] = {
            link: asyncio.PriorityQueue() for link in links.transports
        }
        self._seq = itertools.count()
        self._blocked_until: dict[str, float] = {}

    def put(self, attempt: Attempt) -> None:
        self._queues[attempt.candidate.link].put_nowait((attempt.delivery.order, next(self._seq), attempt))

    def withdraw_worse(self, change: HealthChanged, policy: Policy) -> list[Delivery]:
        """``change.link`` just got worse to ``change.peer`` (to every peer, for None): what waits in its
        queue for that hop was planned when the link looked better, so it leaves the queue instead of
        waiting its turn to fail there (on a radio each such send can cost seconds of retransmissions).
        Kept: a life-safety fan-out's attempt on a link that is only degraded (fan-out uses every link
        that is not down). Returns the deliveries that have no attempt left under way: the router plans
        them again at once."""
        hop = bytes.fromhex(change.peer) if change.peer is not None else None
        down = change.new is LinkState.DOWN
        queue = self._queues[change.link]
        kept: list[_Queued] = []
        replan: list[Delivery] = []
        while not queue.empty():
            item = queue.get_nowait()
            delivery = item[2].delivery
            if (hop is not None and item[2].hop != hop) or (
                not down and policy.fan_out(delivery.policy_priority)
            ):
                kept.append(item)
                continue
            delivery.inflight -= 1
            if delivery.inflight == 0 and delivery.state is DeliveryState.SENDING:
                delivery.attempts -= 1  # this plan never went out
                replan.append(delivery)
        for item in kept:
            queue.put_nowait(item)
        return replan

    def depth(self, link: str) -> int:
        return self._queues[link].qsize()

    def blocked(self, link: str, drill: bool, now: float) -> bool:
        """Whether ``link``'s budget is spent for real traffic, or, for a drill, for drills."""
        until = self._blocked_until.get(link, 0.0)
        if drill:
            until = max(until, self._blocked_until.get(_budget_key(link, True), 0.0))
        return until > now

    async def take(self, link: str) -> list[Attempt]:
        """The next batch for ``link``, best first: waits for one attempt, then adds what is queued behind
        it up to the bounds (only on a link that sends batches)."""
        queue = self._queues[link]
        first = (await queue.get())[2]
        batch, size = [first], len(first.delivery.wire)
        if not self.links.batches(link):
            return batch
        while not queue.empty() and len(batch) < BATCH_FRAMES:
            item = queue.get_nowait()
            wire = item[2].delivery.wire
            if size + len(wire) > BATCH_BYTES:
                queue.put_nowait(item)  # same key: it stays first in line for the next batch
                break
            batch.append(item[2])
            size += len(wire)
        return batch

    async def send(self, link: str, batch: Sequence[Attempt]) -> list[str | None]:
        """Hand ``batch`` to ``link``, one call per next-hop address; per attempt, why it failed or None."""
        by_address: dict[str, list[int]] = {}
        for index, attempt in enumerate(batch):
            by_address.setdefault(attempt.candidate.address, []).append(index)
        outcomes: list[str | None] = [None] * len(batch)
        groups = list(by_address.items())
        if len(groups) == 1:
            await self._send_group(link, batch, *groups[0], outcomes)
        else:
            await asyncio.gather(*(self._send_group(link, batch, a, i, outcomes) for a, i in groups))
        return outcomes

    async def _send_group(
        self,
        link: str,
        batch: Sequence[Attempt],
        address: str,
        indices: list[int],
        outcomes: list[str | None],
    ) -> None:
        cost = self.links.capabilities(link).cost
        frames = [(batch[i].delivery.wire, int(batch[i].delivery.send_priority(cost))) for i in indices]
        try:
            errors: Sequence[TransportError | Exception | None] = await self.links.send_batch(
                link, address, frames
            )
        except Exception as exc:  # a transport that breaks its contract: each of its frames failed
            log.exception("link %s raised outside its contract", link)
            errors = [exc] * len(indices)
        for i, error in zip(indices, errors, strict=True):
            if error is not None:
                outcomes[i] = self._failed(link, batch[i], error)

    def _failed(self, link: str, attempt: Attempt, error: Exception) -> str:
        """Note what a failed send says about the link; the reason for the delivery."""
        peer, now = attempt.hop.hex(), self.clock.monotonic()
        if isinstance(error, BudgetExhausted):
            # a drill's share being spent holds back drills only, never real traffic
            self._blocked_until[_budget_key(link, attempt.delivery.drill)] = now + error.retry_after
            return str(error)
        if isinstance(error, TransportError):
            self.links.health.failure(link, peer, now, Reason(Why.SEND_FAILED, str(error)))
            return str(error)
        self.links.health.failure(link, peer, now, Reason(Why.SEND_FAILED, f"internal error: {error!r}"))
        return f"internal error: {error!r}"


def _budget_key(link: str, drill: bool) -> str:
    return f"{link}#drill" if drill else link
