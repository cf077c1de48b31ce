from __future__ import annotations

import asyncio

from hub.relay.events import EndToEndAcked, EventBus, Overflow


async def test_a_slow_subscriber_loses_its_oldest_events_and_is_told() -> None:
    bus = EventBus(queue_size=5)
    stream = bus.subscribe()
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # subscribed
    bus.publish(EndToEndAcked("0", "x"))
    assert await first == EndToEndAcked("0", "x")
    for n in range(1, 21):  # nobody reads: publishing must never raise
        bus.publish(EndToEndAcked(str(n), "x"))
    seen = [await anext(stream) for _ in range(5)]
    assert seen[-1] == EndToEndAcked("20", "x")
    assert any(isinstance(e, Overflow) for e in seen)
    await stream.aclose()
