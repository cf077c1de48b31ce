"""What a console login may cost: lockouts with back-off, and a budget for password hashing.

Wrong passwords are counted three ways, each with its own threshold and its own back-off (the lock doubles
with every lockout in a row, up to a cap, and is forgotten after an hour of quiet):

- per name *and* source address: a tablet guessing at one name stops after a few tries, while the same
  name still logs in from the coordinator's own machine: nobody can lock the coordinator out from afar;
- per source address, whatever the name: one machine trying many names stops too;
- per name from every source, at a much higher threshold: guessing spread over many addresses is slowed.

``HashBudget`` bounds the scrypt work (16 MiB of memory and tens of milliseconds each) with a token
bucket and a limit on hashes at once: a flood of logins gets "busy, try again" instead of taking the
hub's memory. Every table here is bounded: an unauthenticated flood cannot grow it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from hub.core.clock import Clock
from hub.core.errors import AuthError


@dataclass(frozen=True, slots=True)
class Rule:
    """Lock after ``failures`` wrong passwords: ``first`` seconds, doubling per lockout up to ``cap``."""

    failures: int
    first: float
    cap: float


PER_NAME_AND_SOURCE = Rule(failures=5, first=60.0, cap=3600.0)
PER_SOURCE = Rule(failures=20, first=300.0, cap=3600.0)
PER_NAME = Rule(failures=50, first=60.0, cap=900.0)
FORGET_AFTER = 3600.0
MAX_ENTRIES = 4096


@dataclass(slots=True)
class _Record:
    failures: int = 0
    lockouts: int = 0
    locked_until: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """Failed logins per (name, source), per source and per name (see the module's docstring)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._records: dict[tuple[str, str], _Record] = {}
        self.lockouts: dict[str, int] = {"name_and_source": 0, "source": 0, "name": 0}
        self.failed_logins = 0
        self.refused_locked = 0
        """Attempts answered 429 because a lock was on (no password was checked)."""

    def _keys(self, username: str, source: str) -> tuple[tuple[str, str, Rule], ...]:
        return (
            ("name_and_source", f"{username}\n{source}", PER_NAME_AND_SOURCE),
            ("source", source, PER_SOURCE),
            ("name", username, PER_NAME),
        )

    def check(self, username: str, source: str) -> None:
        """``AuthError`` with ``retry_after`` while any of the three is locked."""
        now = self._clock.monotonic()
        wait = 0.0
        for kind, key, _ in self._keys(username, source):
            record = self._records.get((kind, key))
            if record is not None:
                wait = max(wait, record.locked_until - now)
        if wait > 0:
            self.refused_locked += 1
            minutes = max(1, round(wait / 60))
            raise AuthError(f"for mange forkerte adgangskoder: prøv igen om {minutes} min", retry_after=wait)

    def failed(self, username: str, source: str) -> None:
        now = self._clock.monotonic()
        self.failed_logins += 1
        for kind, key, rule in self._keys(username, source):
            record = self._record(kind, key, now)
            record.failures += 1
            record.last = now
            if record.failures >= rule.failures:
                record.lockouts += 1
                record.failures = 0
                record.locked_until = now + min(rule.cap, rule.first * 2 ** (record.lockouts - 1))
                self.lockouts[kind] += 1

    def status(self) -> dict[str, object]:
        """What ``/healthz`` shows of logins: wrong passwords, lockouts by kind, attempts refused while
        locked."""
        return {
            "failed": self.failed_logins,
            "lockouts": dict(self.lockouts),
            "refused_locked": self.refused_locked,
        }

    def succeeded(self, username: str, source: str) -> None:
        """The right password from this source: its own count for this name starts over."""
        self._records.pop(("name_and_source", f"{username}\n{source}"), None)

    def _record(self, kind: str, key: str, now: float) -> _Record:
        record = self._records.get((kind, key))
        if record is not None and now - record.last > FORGET_AFTER and now >= record.locked_until:
            record = None  # quiet for an hour: forgiven, back-off included
        if record is None:
            while len(self._records) >= MAX_ENTRIES:
                self._evict(now)
            record = self._records[(kind, key)] = _Record(last=now)
        return record

    def _evict(self, now: float) -> None:
        # an unlocked entry first (the oldest); only if every entry is locked, the oldest lock
        for entry, record in self._records.items():
            if record.locked_until <= now:
                del self._records[entry]
                return
        del self._records[next(iter(self._records))]


class HashBudget:
    """At most ``rate`` password hashes a second (bursts of ``burst``), ``parallel`` at a time."""

    def __init__(self, clock: Clock, *, rate: float = 4.0, burst: int = 16, parallel: int = 2) -> None:
        self._clock = clock
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._at = clock.monotonic()
        self._running = asyncio.Semaphore(parallel)
        self.refused = 0

    @contextlib.asynccontextmanager
    async def spend(self) -> AsyncIterator[None]:
        """Hold one hash's worth of budget; ``AuthError`` with ``retry_after`` when it is spent."""
        now = self._clock.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            self.refused += 1
            raise AuthError(
                "hubben har travlt med andre logins: prøv igen om nogle sekunder",
                retry_after=(1 - self._tokens) / self.rate,
            )
        self._tokens -= 1
        async with self._running:
            yield
