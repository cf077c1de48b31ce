"""A request rate per source address, within fixed memory (sans-IO: the caller passes the time).

For answers anyone may ask for without proving who they are (``/healthz``): each source (an address as
``hub.core.bounded_http.source_of`` gives it, so an IPv6 network counts as its /64) gets a token bucket of
``burst`` requests refilled at ``rate`` a second. At most ``max_sources`` buckets are kept; a new source
beyond that pushes out the bucket that has been quiet longest (a source pushed out starts again with a
full bucket, so a flood from many addresses costs at most ``burst`` requests per address it holds).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class SourceRate:
    """Up to ``rate`` requests a second per source, in bursts of up to ``burst`` (see the module)."""

    def __init__(self, *, rate: float, burst: int, max_sources: int = 4096) -> None:
        if rate <= 0 or burst < 1 or max_sources < 1:
            raise ValueError("rate, burst and max_sources must be positive")
        self.rate = rate
        self.burst = burst
        self.max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first

    def take(self, source: str, now: float) -> float:
        """Spend one request of ``source``'s budget at monotonic time ``now``: 0 if it may go ahead, else
        the seconds until it may (nothing is spent then)."""
        bucket = self._buckets.pop(source, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            while len(self._buckets) >= self.max_sources:
                self._buckets.popitem(last=False)
        bucket.tokens = min(float(self.burst), bucket.tokens + max(0.0, now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[source] = bucket
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        """``wait`` as a ``Retry-After`` header value: whole seconds, at least one."""
        return str(max(1, math.ceil(wait)))

    def __len__(self) -> int:
        return len(self._buckets)
