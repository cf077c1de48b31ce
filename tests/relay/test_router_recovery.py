"""A delivery whose attempt breaks after the send is retried, never stranded in SENDING."""

from __future__ import annotations

from pathlib import Path

from hub.core.frame import Kind
from hub.relay.delivery import DeliveryState
from hub.relay.health import HealthBoard, HealthChanged, LinkState
from hub.relay.link_reasons import Reason, Why
from hub.relay.router import HopAckOutcome
from tests.inproc import eventually
from tests.relay.engine_kit import PEER, engine, message, next_frame
from transports.memory import MemoryMedium


async def test_a_failure_after_the_send_leaves_the_delivery_retryable(tmp_path: Path) -> None:
    """A health listener that raises when the link recovers breaks the attempt right after its send
    (as any bug there would). Like a failed send, that marks the link tried; with no other link the round
    backs off, and then the delivery goes out again and settles."""
    health = HealthBoard(down_after=2, up_after=1, hold_down=0.0)
    broken = []

    def breaks_once(change: HealthChanged) -> None:
        if change.new is LinkState.UP and not broken:
            broken.append(change)
            raise RuntimeError("listener bug")

    health.listen(breaks_once)
    health.failure(
        "memory", PEER.node_id.hex(), 0.0, Reason(Why.PROBE_FAILED, "one lost probe")
    )  # degraded: the send heals it
    async with engine(tmp_path, {"memory": MemoryMedium()}, health=health) as e:
        delivery = await e.submit(message())
        first = await next_frame(e.wiring.far["memory"])
        await eventually(lambda: delivery.state is DeliveryState.QUEUED and not delivery.tried)
        assert broken and delivery.attempts == 1
        assert "listener bug" in (delivery.last_error or "")

        e.clock.advance(e.router.timing.retry_cap)
        e.router.dispatch_due()
        again = await next_frame(e.wiring.far["memory"])
        assert again.id == first.id
        await eventually(lambda: delivery.state is DeliveryState.SENT)
        assert delivery.attempts == 2

        assert e.router.hop_acked([first.id], PEER.node_id) == HopAckOutcome(1, 0)
        assert delivery.state is DeliveryState.HOP_ACKED
        assert e.router.open_count() == 0
        assert first.kind is Kind.TEXT
