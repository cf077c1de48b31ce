"""The per-source request budget: bursts, refill, one source not spending another's, fixed memory."""

from __future__ import annotations

from hub.core.source_rate import SourceRate


def test_a_burst_then_the_sustained_rate_per_source() -> None:
    rate = SourceRate(rate=2.0, burst=3)
    assert [rate.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rate.take("a", 0.0) == 0.5, "the fourth waits for half a second's refill"
    assert rate.take("b", 0.0) == 0.0, "another source has its own budget"
    assert rate.take("a", 0.5) == 0.0
    assert rate.take("a", 0.5) > 0
    assert SourceRate.retry_after(0.25) == "1" and SourceRate.retry_after(2.5) == "3"


def test_the_table_stays_bounded_pushing_out_the_quietest_source() -> None:
    rate = SourceRate(rate=1.0, burst=1, max_sources=2)
    rate.take("a", 0.0)
    rate.take("b", 1.0)
    rate.take("c", 2.0)
    assert len(rate) == 2
    assert rate.take("b", 2.0) == 0.0, "b refilled, still held"
    assert rate.take("c", 2.0) > 0, "c is still held: its budget is spent"
