"""Link health per (link, peer): up / degraded / down with hysteresis, and an event for every change.

    UP ──failure──► DEGRADED ──failure × down_after──► DOWN
    ▲                 │  ▲                               │
    └──success × up_after (and held for hold_down s)─────┘  (DOWN goes back through DEGRADED)
    any ──link reported down (hard failure)──► DOWN;  any ──link reported up (hard success)──► UP

Hysteresis keeps a flapping link from causing storms: a link that went down must answer ``up_after``
times in a row, and not earlier than ``hold_down`` seconds after it last failed, before traffic returns.
A whole-link state (peer None) comes from the transport's own ``LinkChanged`` events; the state the
policy sees for (link, peer) is the worse of the link's and the peer's.

An exercise may *simulate* an outage (``simulate_down``): the pair, or the whole link, then reads as down
to the policy, so the router fails over for real, while the link itself stays open and its measured
health goes on underneath; ``lift_simulated`` gives the measured state back.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hub.relay.link_reasons import NOT_USED, Reason, Why

log = logging.getLogger("beredt.health")


class LinkState(enum.IntEnum):
    """Ordered so that ``min`` gives the worse state."""

    DOWN = 0
    DEGRADED = 1
    UP = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class HealthChanged:
    link: str
    peer: str | None
    old: LinkState
    new: LinkState
    reason: Reason
    at: float


@dataclass(slots=True)
class LinkHealth:
    link: str
    peer: str | None
    state: LinkState = LinkState.UP
    since: float = 0.0
    reason: Reason = NOT_USED
    last_success: float | None = None
    failures: int = 0
    successes: int = 0


class HealthBoard:
    def __init__(
        self,
        *,
        down_after: int = 2,
        up_after: int = 2,
        hold_down: float = 2.0,
        on_change: Callable[[HealthChanged], None] | None = None,
    ) -> None:
        self.down_after = down_after
        self.up_after = up_after
        self.hold_down = hold_down
        self._entries: dict[tuple[str, str | None], LinkHealth] = {}
        self._simulated: dict[tuple[str, str | None], Reason] = {}
        """(link, peer or None for the whole link) -> why an exercise treats it as down."""
        self._listeners: list[Callable[[HealthChanged], None]] = [on_change] if on_change else []

    def listen(self, callback: Callable[[HealthChanged], None]) -> None:
        self._listeners.append(callback)

    def entry(self, link: str, peer: str | None) -> LinkHealth:
        key = (link, peer)
        health = self._entries.get(key)
        if health is None:
            health = self._entries[key] = LinkHealth(link, peer)
        return health

    def state(self, link: str, peer: str | None) -> LinkState:
        if self.simulated(link, peer) is not None:
            return LinkState.DOWN
        own = self.entry(link, None).state
        return own if peer is None else min(own, self.entry(link, peer).state)

    def simulated(self, link: str, peer: str | None) -> Reason | None:
        """Why an exercise treats (link, peer) as down (the whole link or this peer on it), or None."""
        whole = self._simulated.get((link, None))
        return whole if whole is not None or peer is None else self._simulated.get((link, peer))

    def simulations(self) -> dict[tuple[str, str | None], Reason]:
        return dict(self._simulated)

    def simulate_down(self, link: str, peer: str | None, reason: Reason, now: float) -> None:
        """Treat (link, peer), or the whole link for peer None, as down until ``lift_simulated``."""
        old = self.state(link, peer)
        self._simulated[(link, peer)] = reason
        log.warning("link %s%s: simulated down (%s)", link, f" to {peer}" if peer else "", reason)
        self._notify(HealthChanged(link, peer, old, LinkState.DOWN, reason, now))

    def lift_simulated(self, link: str, peer: str | None, now: float) -> None:
        """End a simulated outage: the measured state counts again (and parked traffic wakes up)."""
        if self._simulated.pop((link, peer), None) is None:
            return
        new = self.state(link, peer)
        log.info("link %s%s: simulated outage lifted (%s)", link, f" to {peer}" if peer else "", new.label)
        self._notify(HealthChanged(link, peer, LinkState.DOWN, new, Reason(Why.SIMULATED_LIFTED), now))

    def entries(self) -> list[LinkHealth]:
        return list(self._entries.values())

    def success(self, link: str, peer: str | None, now: float, reason: Reason, *, hard: bool = False) -> None:
        """``hard``: the transport itself reports the link up (it reconnects with its own back-off), so
        no probation applies."""
        health = self.entry(link, peer)
        health.last_success = now
        health.failures = 0
        health.successes += 1
        if hard:
            if health.state is not LinkState.UP:
                self._move(health, LinkState.UP, reason, now)
        elif health.state is LinkState.DOWN:
            if now - health.since >= self.hold_down:
                self._move(health, LinkState.DEGRADED, Reason(Why.PROBATION, str(reason)), now)
                health.successes = 1
        elif health.state is LinkState.DEGRADED and health.successes >= self.up_after:
            self._move(health, LinkState.UP, reason, now)

    def failure(self, link: str, peer: str | None, now: float, reason: Reason, *, hard: bool = False) -> None:
        health = self.entry(link, peer)
        health.successes = 0
        health.failures += 1
        if health.state is LinkState.DOWN:
            health.since = now  # still failing: restart the hold-down
            health.reason = reason
        elif hard or health.failures >= self.down_after:
            self._move(health, LinkState.DOWN, reason, now)
        elif health.state is LinkState.UP:
            self._move(health, LinkState.DEGRADED, reason, now)

    def _move(self, health: LinkHealth, new: LinkState, reason: Reason, now: float) -> None:
        old, health.state, health.since, health.reason = health.state, new, now, reason
        where = health.link + (f" to {health.peer}" if health.peer else "")
        level = logging.WARNING if new < old else logging.INFO
        log.log(level, "link %s: %s -> %s (%s)", where, old.label, new.label, reason)
        self._notify(HealthChanged(health.link, health.peer, old, new, reason, now))

    def _notify(self, event: HealthChanged) -> None:
        for listener in self._listeners:
            listener(event)
