"""The router as a hypothesis state machine: messages arrive, links die and heal, acks come or do not,
time moves. Whatever the order, once the links are back (probes see them answer, as in a hub) and the
far side acknowledges, every delivery settles and the store's live count matches the database:
nothing is stranded or counted twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from hub.core.frame import Priority
from hub.relay.delivery import Delivery, DeliveryState
from tests.relay.engine_kit import PEER, Engine, engine, message
from transports.memory import MemoryMedium

LINKS = ("a", "b")
T = TypeVar("T")


class RouterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.stack = contextlib.AsyncExitStack()
        self.folder = tempfile.TemporaryDirectory()
        self.media = {name: MemoryMedium() for name in LINKS}
        self.e: Engine = self._run(
            self.stack.enter_async_context(
                engine(Path(self.folder.name), self.media, max_messages=6, probe_interval=0.005)
            )
        )
        self.deliveries: list[Delivery] = []
        self.count = 0

    def _run(self, awaitable: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def _turns(self, n: int = 5) -> None:
        async def turns() -> None:
            for _ in range(n):
                await asyncio.sleep(0)

        self._run(turns())

    @rule(priority=st.sampled_from([Priority.ROUTINE, Priority.NORMAL, Priority.LIFE_SAFETY]))
    def arrive(self, priority: Priority) -> None:
        self.count += 1
        frame = message(self.count.to_bytes(4, "big"), priority)
        with contextlib.suppress(Exception):  # StoreFull when nothing can be evicted: refused, not lost
            self.deliveries.append(self._run(self.e.submit(frame)))
        self._turns()

    @rule(link=st.sampled_from(LINKS), up=st.booleans())
    def plug(self, link: str, up: bool) -> None:
        (self.media[link].plug if up else self.media[link].unplug)(PEER.name)
        self._turns()

    @rule(seconds=st.sampled_from([0.5, 3.0, 10.0]))
    def time_passes(self, seconds: float) -> None:
        self.e.clock.advance(seconds)
        self.e.router.dispatch_due()
        self._turns()

    @rule()
    def peer_acks_what_it_has(self) -> None:
        sent = [d.message_id for d in self.deliveries if d.state is DeliveryState.SENT]
        self.e.router.hop_acked(sent, PEER.node_id)
        self._turns()

    @rule(index=st.integers(0, 50))
    def recipient_acks_one(self, index: int) -> None:
        if self.deliveries:
            self.e.router.e2e_acked([self.deliveries[index % len(self.deliveries)].message_id], PEER.node_id)
        self._turns()

    @invariant()
    def live_count_never_exceeds_the_quota(self) -> None:
        assert 0 <= self.e.store.live_messages <= self.e.store.max_messages

    def teardown(self) -> None:
        try:
            for medium in self.media.values():
                medium.plug(PEER.name)
            deadline = time.monotonic() + 30  # generous: probes run in real time on a loaded machine
            while self.e.router.open_count() and time.monotonic() < deadline:
                # links healed, probes answered, the far side acks: everything settles
                self.e.clock.advance(10.0)
                self.e.router.dispatch_due()
                self._run(asyncio.sleep(0.01))  # real time: a probe round
                self.peer_acks_what_it_has()
            stranded = [d for d in self.deliveries if d.open]
            assert stranded == [], [(d.state, d.inflight, d.attempts) for d in stranded]
            assert self.e.store.live_messages == self._run(self._active_in_database()) == 0
        finally:
            self._run(self.stack.aclose())
            self.loop.close()
            self.folder.cleanup()

    async def _active_in_database(self) -> int:
        await self.e.store.flush()
        async with self.e.store._db.execute("SELECT count(*) FROM messages WHERE state='active'") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


_RUNS = 300 if os.environ.get("BEREDT_SOAK") == "1" else 15
RouterMachine.TestCase.settings = settings(max_examples=_RUNS, stateful_step_count=20, deadline=None)
TestRouterMachine = RouterMachine.TestCase
