"""The router: moves stored messages to their next hops over the best link, until acknowledged.

Every open (message, next hop) delivery has a timer (``hub.relay.timers``). When it falls due the
dispatcher plans the attempt (``hub.relay.planning``: the policy's usable links to its next hops, the
configured route's hops in order, the first the primary and later ones alternatives, skipping those
already tried in this round) and queues it for that link (``hub.relay.outbound``): best first, so
life-safety frames overtake routine ones and every real frame overtakes an exercise's (CAP status Exercise
or Test: ``Delivery.order``). A link takes from its queue in batches where it can carry many frames at
once (one POST on the internet link), else one at a time; a slow link has one batch out at a time, a free
link many. A batch's frames that await a hop ack share one deadline (one timer). A send that fails, an
attempt that breaks after its send, or a hop ack that does not come in time marks that link tried and the
delivery is due again at once on the next link: that is the failover. When every link has been tried the
round starts over after a capped, jittered back-off. Health changes for the better wake parked deliveries,
so traffic returns to a link as it heals; a change for the worse takes what waits in that link's queue for
the hop out again, to be planned at once on what is left.

The router knows policy and state, never sockets: it talks to links only through ``LinkSet``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable

from hub.core.clock import Clock
from hub.core.frame import BROADCAST, Priority
from hub.core.transport import Cost
from hub.relay.delivery import Backoff, Delivery, DeliveryProgress, DeliveryState, HopAckOutcome
from hub.relay.events import DeliveryChanged, EndToEndAcked, EventBus
from hub.relay.health import HealthChanged, LinkState
from hub.relay.lanes import is_drill
from hub.relay.link_reasons import Reason, Why
from hub.relay.links import LinkSet
from hub.relay.outbound import LinkQueues
from hub.relay.planning import Attempt, note_paid_refusal, plan, tried_key
from hub.relay.policy import Policy
from hub.relay.resumption import Resumption
from hub.relay.settings import Timing
from hub.relay.store import Store
from hub.relay.store_records import PendingDelivery
from hub.relay.timers import Timers

log = logging.getLogger("beredt.router")

FREE_LINK_BATCHES = 64
"""Batches a free link (internet, MQTT) has out at once; a metered or paid one has one."""
PARKED_RECHECK = 5.0
"""A delivery with no usable link looks again after 2.5-5 s, or at once when a link's health improves.
Only a fallback (an address learned, a budget that ran out): re-planning thousands of parked deliveries
every second while a link is down would cost a relay more than the traffic it still carries."""


class Router:
    def __init__(
        self,
        *,
        me: bytes,
        store: Store,
        links: LinkSet,
        policy: Policy,
        timing: Timing,
        clock: Clock,
        events: EventBus,
        routes: dict[bytes, tuple[bytes, ...]],
        default_route: tuple[bytes, ...],
        learned: Callable[[bytes], list[bytes]] | None = None,
    ) -> None:
        self.me = me
        self.store = store
        self.links = links
        self.policy = policy
        self.timing = timing
        self.clock = clock
        self.events = events
        self.routes = routes
        self.default_route = default_route
        self.learned = learned
        """Learned next hops per destination (``hub.relay.route_learning``); configured routes win."""
        self.drills_may_pay: Callable[[], bool] = bool
        """Whether the exercise this hub takes part in lets its frames use a paid link (``bool()``: no)."""
        self.backoff = Backoff(initial=timing.retry_initial, cap=timing.retry_cap)
        self._park = Backoff(initial=PARKED_RECHECK, cap=PARKED_RECHECK)
        self._deliveries: dict[bytes, list[Delivery]] = {}
        self._sizes: dict[bytes, int] = {}
        self._timers = Timers()
        """When each open delivery is due next: a batch sent together shares one timer."""
        self._arrivals = itertools.count()
        self._wake = asyncio.Event()
        self._parked_deliveries: dict[int, Delivery] = {}
        self.resumption = Resumption(store)
        self.outbound = LinkQueues(links, clock)
        links.health.listen(self._on_health)
        store.on_evicted = self._drop_messages

    # ---- routing ------------------------------------------------------------------------------------

    def route(self, recipient: bytes, exclude: Iterable[bytes] = ()) -> list[bytes]:
        """Next hops to try for ``recipient``, best first; empty if it has no route."""
        skip = {self.me, *exclude}
        if recipient == BROADCAST:
            return [p for p in self.links.peers if p not in skip]
        learned = self.learned(recipient) if self.learned is not None else []
        if recipient in self.routes:
            hops: tuple[bytes, ...] = self.routes[recipient]
        elif recipient in self.links.peers:
            # the configured default route is the operator's detour; a learned one may be hours old on radio
            hops = (recipient, *self.default_route, *learned)
        else:
            hops = (*learned, *self.default_route)
        return [h for h in dict.fromkeys(hops) if h not in skip]

    def delivery_hops(self, recipient: bytes, exclude: Iterable[bytes] = ()) -> list[bytes]:
        """Which deliveries to create: one per peer for broadcasts, else one (alternatives ride along)."""
        hops = self.route(recipient, exclude)
        return hops if recipient == BROADCAST else hops[:1]

    # ---- tracking -----------------------------------------------------------------------------------

    def track(
        self,
        message_id: bytes,
        wire: bytes,
        recipient: bytes,
        priority: Priority,
        expires: int,
        hops: Iterable[bytes],
        *,
        attempts: int = 0,
        exclude: Iterable[bytes] = (),
        prefer: str | None = None,
    ) -> None:
        alternatives = self.route(recipient, exclude) if recipient != BROADCAST else []
        for hop in hops:
            delivery = Delivery(
                message_id,
                hop,
                wire,
                priority,
                expires,
                attempts=attempts,
                preferred=prefer,
                drill=is_drill(wire),
                arrival=next(self._arrivals),
            )
            delivery.paid = delivery.drill and self.drills_may_pay()  # as allowed when it was made
            delivery.candidates = [hop, *(a for a in alternatives if a != hop)]
            self._deliveries.setdefault(message_id, []).append(delivery)
            self._sizes[message_id] = len(wire)
            self._schedule(delivery, self.clock.monotonic())

    async def resume(self, loaded: asyncio.Event) -> None:
        """Track what the store held when it was opened, a page at a time per next hop
        (``hub.relay.resumption``); set ``loaded`` once every next hop has its first page in memory,
        return when all are."""
        await self.resumption.run(loaded, self._track_resumed)

    def _track_resumed(self, pending: list[PendingDelivery], resumed: set[bytes]) -> None:
        by_message: dict[bytes, list[PendingDelivery]] = {}
        for item in pending:
            by_message.setdefault(item.message_id, []).append(item)
        for message_id, items in by_message.items():
            if message_id in self._deliveries:  # tracked already (accepted again since the bound was read)
                continue
            first = items[0]
            for item in items:
                self.track(
                    message_id,
                    item.wire,
                    item.recipient,
                    item.priority,
                    item.expires,
                    [item.hop],
                    attempts=item.attempts,
                )
            resumed.add(message_id)
            if first.end_to_end_acked and first.recipient != BROADCAST:
                for delivery in self.deliveries(message_id):
                    self._settle(delivery, DeliveryState.HOP_ACKED, "end-to-end ack")

    def deliveries(self, message_id: bytes) -> list[Delivery]:
        """A message's deliveries while any is open (the router forgets them once all are settled)."""
        return list(self._deliveries.get(message_id, ()))

    def open_count(self) -> int:
        return sum(1 for ds in self._deliveries.values() for d in ds if d.open)

    def queue_depth(self, link: str) -> int:
        return self.outbound.depth(link)

    def progress(self, message_id: bytes) -> list[DeliveryProgress]:
        """The open deliveries of one message (none once every hop has settled). Scans the timer heap,
        so it is meant for a person looking at a few messages, not for the hot path."""
        open_ = [d for d in self._deliveries.get(message_id, ()) if d.open]
        if not open_:
            return []
        offset = self.clock.time() - self.clock.monotonic()
        out = []
        for d in open_:
            when = self._timers.due(d)
            next_try = None if when is None else when + offset
            parked = id(d) in self._parked_deliveries
            out.append(DeliveryProgress(d.hop, d.state, d.link, d.last_error, d.attempts, next_try, parked))
        return out

    def _schedule(self, delivery: Delivery, due: float) -> None:
        self._schedule_all((delivery,), due)

    def _schedule_all(self, deliveries: tuple[Delivery, ...], due: float) -> None:
        """One timer for ``deliveries`` (best first); settling one of them leaves the others' due."""
        self._timers.set(deliveries, due)
        self._wake.set()

    # ---- acknowledgements ---------------------------------------------------------------------------

    def hop_acked(self, ids: Iterable[bytes], acker: bytes) -> HopAckOutcome:
        """Settle the deliveries ``acker`` proves it holds; say how many it settled and how many ids it had
        no business acking.

        Only a hop the frame was handed to can settle it. An ack from a node that is a route hop of the
        message (a late ack from before a restart, a duplicate after its own copy of a broadcast was
        settled) is ignored; one from any other node, for a message still in flight, is counted."""
        settled = refused = 0
        for message_id in ids:
            deliveries = list(self._deliveries.get(message_id, ()))
            for delivery in deliveries:
                if delivery.open and acker in delivery.handed_to:
                    delivery.carrier = acker
                    self._settle(delivery, DeliveryState.HOP_ACKED, f"hop ack from {acker.hex()}")
                    settled += 1
            if deliveries and not any(acker in d.candidates or acker in d.handed_to for d in deliveries):
                refused += 1
        return HopAckOutcome(settled, refused)

    def e2e_acked(self, ids: Iterable[bytes], by: bytes) -> None:
        """``by`` is the recipient of every message in ``ids`` (the caller checked): all its hops are done."""
        ids = list(ids)
        for message_id in ids:
            for delivery in list(self._deliveries.get(message_id, ())):
                if delivery.open:
                    self._settle(delivery, DeliveryState.HOP_ACKED, "end-to-end ack")
            self.events.publish(EndToEndAcked(message_id.hex(), by.hex()))
        self.store.record_e2e_ack(ids, self.clock.time())

    def recipient_acked(self, ids: Iterable[bytes], by: bytes) -> None:
        """``by`` acknowledged broadcasts in ``ids``: that settles its own copy, never the whole fan-out."""
        for message_id in ids:
            for delivery in list(self._deliveries.get(message_id, ())):
                if delivery.open and delivery.hop == by:
                    self._settle(delivery, DeliveryState.HOP_ACKED, f"end-to-end ack from {by.hex()}")
            self.events.publish(EndToEndAcked(message_id.hex(), by.hex()))

    def _settle(self, delivery: Delivery, state: DeliveryState, why: str) -> None:
        delivery.move(state)
        self._timers.cancel(delivery)
        self._parked_deliveries.pop(id(delivery), None)
        self.store.record_delivery(
            delivery.message_id,
            delivery.hop,
            state,
            attempts=delivery.attempts,
            next_attempt=0,
            link=delivery.link,
            next_hop=delivery.carrier,
            error=None if state is DeliveryState.HOP_ACKED else why,
        )
        self.events.publish(
            DeliveryChanged(delivery.message_id.hex(), delivery.hop.hex(), state.value, delivery.link)
        )
        siblings = self._deliveries.get(delivery.message_id, [])
        if not any(d.open for d in siblings):
            self._deliveries.pop(delivery.message_id, None)
            self.resumption.forget(delivery.message_id)
            size = self._sizes.pop(delivery.message_id, 0)
            self.store.retire(
                delivery.message_id, "done" if state is DeliveryState.HOP_ACKED else state.value, size
            )

    def _drop_messages(self, ids: list[bytes]) -> None:
        for message_id in ids:
            for delivery in self._deliveries.pop(message_id, []):
                if delivery.open:
                    delivery.move(DeliveryState.EVICTED)
                    self._timers.cancel(delivery)
            self._sizes.pop(message_id, None)
            self.resumption.forget(message_id)

    # ---- the loops ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Dispatcher and link senders; returns only by cancellation."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._dispatch_forever(), name="router-dispatch")
            for link, transport in self.links.transports.items():
                free = transport.capabilities.cost is Cost.FREE
                slots = asyncio.Semaphore(FREE_LINK_BATCHES if free else 1)
                group.create_task(self._send_forever(link, slots, group), name=f"router-{link}")

    def dispatch_due(self) -> None:
        """Act on every delivery whose time has come: the dispatcher's step, also for a test that moved a
        manual clock."""
        now = self.clock.monotonic()
        while (timer := self._timers.pop(now)) is not None:
            for delivery in list(timer.deliveries.values()):
                if self._timers.take(delivery, timer):
                    self._due(delivery, now)

    async def _dispatch_forever(self) -> None:
        while True:
            self.dispatch_due()
            self._wake.clear()
            due = self._timers.next_due()
            timeout = None if due is None else due - self.clock.monotonic()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _due(self, delivery: Delivery, now: float) -> None:
        if not delivery.open or delivery.state is DeliveryState.SENDING:
            return
        if self.clock.trusted and self.clock.time() >= delivery.expires:
            log.warning(
                "message %s expired before reaching %s", delivery.message_id.hex(), delivery.hop.hex()
            )
            self._settle(delivery, DeliveryState.EXPIRED, "expired")
            return
        if delivery.state is DeliveryState.SENT:
            assert delivery.link is not None
            carrier = delivery.carrier or delivery.hop  # an alternative hop may have taken it
            reason = Reason(Why.NO_HOP_ACK, f"nothing from {carrier.hex()}")
            self.links.health.failure(delivery.link, carrier.hex(), now, reason)
            delivery.tried.add(tried_key(delivery.link, carrier))
            delivery.move(DeliveryState.QUEUED)
            self.store.record_delivery(
                delivery.message_id,
                delivery.hop,
                DeliveryState.QUEUED,
                attempts=delivery.attempts,
                next_attempt=now,
                link=delivery.link,
                error=str(reason),
            )
        blocked = self.outbound.blocked
        attempts = plan(delivery, self.policy, self.links, lambda link: blocked(link, delivery.drill, now))
        if not attempts:
            note_paid_refusal(delivery, self.policy, self.links)
            if delivery.tried:
                delivery.tried.clear()
                delay = self.backoff.delay(delivery.attempts)
            else:
                delay = self._park.delay(1)
                self._parked_deliveries[id(delivery)] = delivery
            self._schedule(delivery, now + delay)
            return
        delivery.move(DeliveryState.SENDING)
        delivery.attempts += 1
        delivery.inflight = len(attempts)
        for attempt in attempts:
            self.outbound.put(attempt)

    async def _send_forever(self, link: str, slots: asyncio.Semaphore, group: asyncio.TaskGroup) -> None:
        """Take ``link``'s queue a batch at a time, each sent in a task of its own while a slot is free."""
        while True:
            await slots.acquire()
            try:
                batch = await self.outbound.take(link)
            except BaseException:
                slots.release()
                raise
            group.create_task(self._send_batch(link, batch, slots))
            del batch  # the task has it: kept here, the last batch would outlive its deliveries' settling

    async def _send_batch(self, link: str, batch: list[Attempt], slots: asyncio.Semaphore) -> None:
        try:
            await self._attempt(link, batch)
        except Exception as exc:  # a bug must not stop the router, nor strand a delivery
            log.exception("delivery attempt over %s failed unexpectedly; it will be retried", link)
            for attempt in batch:
                self._recover(attempt, exc)
        finally:
            slots.release()

    async def _attempt(self, link: str, batch: list[Attempt]) -> None:
        """Send ``batch`` over ``link``, then move each delivery on by its own outcome."""
        going: list[Attempt] = []
        for attempt in batch:
            if attempt.delivery.open:
                attempt.delivery.handed_to.add(attempt.hop)  # before the send: its hop ack may overtake it
                going.append(attempt)
            else:  # settled meanwhile (acked by a fan-out sibling, expired, evicted)
                attempt.delivery.inflight -= 1
        if not going:
            return
        try:
            errors = await self.outbound.send(link, going)
        finally:
            for attempt in going:
                attempt.delivery.inflight -= 1
        now = self.clock.monotonic()
        caps = self.links.capabilities(link)
        size = sum(len(attempt.delivery.wire) for attempt in going)
        # a routine or normal message may wait in the receiver's commit window before it is hop-acked
        window = self.timing.window_for(min(a.delivery.priority for a in going))
        deadline = now + self.timing.hop_ack_timeout + window + 2 * size / caps.bytes_per_second
        sent = Reason(Why.FRAME_SENT)
        waiting: list[Delivery] = []
        for attempt, error in zip(going, errors, strict=True):
            delivery = attempt.delivery
            if error is not None:
                self._send_failed(attempt, error, now)
                continue
            self.links.health.success(link, attempt.hop.hex(), now, sent)
            if delivery.state is not DeliveryState.SENDING:
                if delivery.state is DeliveryState.HOP_ACKED and delivery.link is None:
                    self._carried(delivery, link, attempt.hop)
                continue
            if delivery.link not in (None, link):
                self.links.last_failover[attempt.hop.hex()] = (
                    f"{delivery.link} -> {link}: {delivery.last_error}"
                )
            delivery.link = link
            delivery.carrier = attempt.hop
            if caps.link_ack:
                self._settle(delivery, DeliveryState.HOP_ACKED, f"link ack on {link}")
                continue
            delivery.move(DeliveryState.SENT)
            self.store.record_delivery(
                delivery.message_id,
                delivery.hop,
                DeliveryState.SENT,
                attempts=delivery.attempts,
                next_attempt=deadline,
                link=link,
                next_hop=attempt.hop,
            )
            self.events.publish(DeliveryChanged(delivery.message_id.hex(), delivery.hop.hex(), "sent", link))
            waiting.append(delivery)
        if waiting:
            self._schedule_all(tuple(waiting), deadline)

    def _carried(self, delivery: Delivery, link: str, hop: bytes) -> None:
        """An ack settled ``delivery`` before its own send returned (the recipient's end-to-end ack can
        overtake the answer to the POST that carried the frame): its record still names the link and hop."""
        delivery.link, delivery.carrier = link, delivery.carrier or hop
        self.store.record_delivery(
            delivery.message_id,
            delivery.hop,
            DeliveryState.HOP_ACKED,
            attempts=delivery.attempts,
            next_attempt=0,
            link=link,
            next_hop=delivery.carrier,
        )

    def _send_failed(self, attempt: Attempt, error: str, now: float) -> None:
        delivery, link = attempt.delivery, attempt.candidate.link
        delivery.last_error = error
        log.info(
            "send of %s to %s over %s failed: %s", delivery.message_id.hex(), attempt.hop.hex(), link, error
        )
        delivery.tried.add(tried_key(link, attempt.hop))
        if delivery.inflight == 0 and delivery.state is DeliveryState.SENDING:
            delivery.move(DeliveryState.QUEUED)
            self._schedule(delivery, now)

    def _recover(self, attempt: Attempt, exc: Exception) -> None:
        """An attempt broke outside the send's own error handling (a listener, a bug): treat it as a failed
        send (due again at once on the next link; a round with every link tried backs off), never leave
        the delivery in SENDING or in SENT without a timer, where nothing would make it due again."""
        delivery = attempt.delivery
        delivery.last_error = f"internal error: {exc!r}"
        delivery.tried.add(tried_key(attempt.candidate.link, attempt.hop))
        if not delivery.open or (delivery.state is DeliveryState.SENDING and delivery.inflight > 0):
            return  # settled, or a fan-out sibling still in flight moves it on
        if delivery.state is DeliveryState.SENDING:
            delivery.move(DeliveryState.QUEUED)
        if not self._timers.has(delivery):
            self._schedule(delivery, self.clock.monotonic())

    def _on_health(self, change: HealthChanged) -> None:
        if change.new < change.old and self.links.health.simulated(change.link, change.peer) is None:
            # an exercise's pretend failure takes nothing out of the queues: what was queued goes out as
            # it would have, the control frame that announces the outage to the other hubs among it
            self._replan_queued(change)
        if change.new > change.old:
            now = self.clock.monotonic()
            for delivery in self._parked_deliveries.values():
                if delivery.open:
                    self._schedule(delivery, now)
            self._parked_deliveries.clear()
        if change.new is LinkState.DOWN:
            log.warning("link %s to %s down: %s", change.link, change.peer or "all peers", change.reason)

    def _replan_queued(self, change: HealthChanged) -> None:
        """What waited in the queue of a link that just got worse is planned again at once
        (``LinkQueues.withdraw_worse``)."""
        now = self.clock.monotonic()
        for delivery in self.outbound.withdraw_worse(change, self.policy):
            delivery.move(DeliveryState.QUEUED)
            self._schedule(delivery, now)
