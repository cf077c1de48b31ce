"""Batching of acknowledgements, because acks cost airtime on slow links.

Hop acks tell the previous hub "I have stored these ids"; they travel straight back over the link the
frames came in on, are signed (so nobody can stop a retry by forging one), never stored and never
forwarded. End-to-end acks tell the originator "the recipient has it"; they are ordinary ACK messages,
stored and routed back like any other. Both collect ids for a short delay and go out as one frame per
destination, carrying the highest priority among what they acknowledge. A hop ack of urgent or
life-safety frames leaves ``HOP_ACK_DELAY`` after its first id; one of routine or normal frames only
waits longer (``ROUTINE_HOP_ACK_DELAY``): a relay taking a few hundred frames a second from a sender
then pays for one ack frame and one POST per several of them, and the sender's deadline is seconds.

An end-to-end ack to an origin nothing was acknowledged to within the last ``e2e_delay`` is made at once
instead (``reply_now``) and stored in the same transaction as the message it acknowledges: at a status
every few seconds that is one commit per status instead of two, and the ack leaves without the delay.
Later messages from that origin within ``e2e_delay`` are batched as before, so a burst costs one ack
more than it did, not one per message.

An end-to-end ack with no route back to its origin yet is kept and tried again every ``NO_ROUTE_RETRY``
while it would still live: a LoRa-only care home may take a message its relay brought a moment before it
hears that relay's announcement (its way back), and the ack would otherwise be lost for good.

Each link has its own hop-ack loop: a hop ack waiting for an Iridium session or a LoRa duty-cycle slot
must not hold back the internet's, or the internet's senders time out and fail over for nothing. For the
same reason one destination never holds back another's: each destination's hop ack goes out in its own
task, and ids for a destination whose hop ack is still under way wait to go out together after it. An
internet sender's reply-to is its own claim, so a replayed frame can name any address, one that never
answers included. On a link that carries address cards a hop ack therefore goes to the address we know
for the previous hop (configured, or learned from its signed card), whatever the frame's POST named; only
a hop we know no address of (a node just enrolled, a relay not heard from directly yet) is answered at
the claimed one. At most ``MAX_STRANGER_HOP_ACKS`` hop acks are under way at once to addresses that
belong to no peer, and one beyond that is dropped (counted as failed: a real sender retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hub.core.clock import Clock
from hub.core.errors import BeredtError, ProtocolError, RoutingError, TransportError
from hub.core.frame import BROADCAST, ID_SIZE, Kind, Priority, Status
from hub.core.identity import Identity
from hub.relay.links import LinkSet
from hub.relay.store_records import Incoming

log = logging.getLogger("beredt.acks")

MAX_IDS_PER_ACK = 48
HOP_ACK_TTL_MINUTES = 10
HOP_ACK_DELAY = 0.005
ROUTINE_HOP_ACK_DELAY = 0.02
MAX_STRANGER_HOP_ACKS = 16
NO_ROUTE_RETRY = 2.0


def encode_ids(ids: list[bytes]) -> bytes:
    return b"".join(ids)


def decode_ids(payload: bytes) -> list[bytes]:
    if not payload or len(payload) % ID_SIZE:
        raise ProtocolError(f"ack payload of {len(payload)} bytes is not a list of {ID_SIZE}-byte ids")
    return [payload[i : i + ID_SIZE] for i in range(0, len(payload), ID_SIZE)]


@dataclass(slots=True)
class _Batch:
    ids: list[bytes] = field(default_factory=list)
    priority: Priority = Priority.ROUTINE
    ttl_minutes: int = HOP_ACK_TTL_MINUTES
    due: float = 0.0  # event-loop time the hop ack goes out (end-to-end acks: unused)
    until: float = math.inf  # end-to-end acks: when one still without a route is given up (monotonic)


Submit = Callable[[Kind, bytes, bytes, Priority, int, Status], Awaitable[bytes]]
Prepare = Callable[[Kind, bytes, bytes, Priority, int, Status], Incoming]
REPLIED_KEPT = 1024  # origins remembered for reply_now before the stale ones are forgotten


class AckBatcher:
    def __init__(
        self,
        identity: Identity,
        links: LinkSet,
        clock: Clock,
        submit: Submit,
        e2e_delay: float,
        *,
        prepare: Prepare | None = None,
    ) -> None:
        self.identity = identity
        self.links = links
        self.clock = clock
        self.submit = submit
        self.e2e_delay = e2e_delay
        self.prepare = prepare
        """Signs and routes an ack without storing it (``reply_now``); None: every ack is batched."""
        self._replied: dict[tuple[bytes, Status], float] = {}
        """(origin, CAP status) -> when an ack was last made at once for it (monotonic)."""
        self._hop: dict[str, dict[tuple[str, bytes, Status], _Batch]] = {
            link: {} for link in links.transports
        }
        """Per link: (source address, previous hop, CAP status) -> ids to acknowledge there. An exercise's
        frames are acknowledged apart, in hop acks marked as the exercise's."""
        self._hop_ready = {link: asyncio.Event() for link in links.transports}
        self._hop_busy: dict[str, set[tuple[str, bytes, Status]]] = {link: set() for link in links.transports}
        """Per link: the destinations (keys of ``_hop``) whose hop ack is under way."""
        self._e2e: dict[tuple[bytes, Status], _Batch] = {}
        """Per (origin, CAP status): an exercise's acks travel as the exercise's, behind real traffic."""
        self._e2e_ready = asyncio.Event()
        self._strangers_acked = 0  # hop acks under way to addresses that belong to no peer
        self.hop_acks_sent = 0
        self.hop_acks_failed = 0
        self.e2e_acks_sent = 0

    def hop_ack(
        self,
        link: str,
        source: str,
        previous: bytes | None,
        message_id: bytes,
        priority: Priority,
        status: Status = Status.ACTUAL,
    ) -> None:
        """Acknowledge a stored frame to the hub that handed it to us (unless the link acks by itself),
        in a hop ack with the frame's CAP status."""
        capabilities = self.links.capabilities(link)
        if capabilities.link_ack:
            return
        if capabilities.address_cards and previous is not None:
            # The reply-to is the sender's unsigned claim and a replayed frame can name anyone's listener:
            # a previous hop whose address we know (configured, or proven by its signed card) gets its hop
            # ack there. Only a hop we know no address of is answered at the claimed one.
            source = self.links.address_of(previous, link) or source
        delay = HOP_ACK_DELAY if priority >= Priority.URGENT else ROUTINE_HOP_ACK_DELAY
        due = asyncio.get_running_loop().time() + delay
        key = (source, previous or BROADCAST, status)
        batch = self._hop[link].get(key)
        if batch is None:
            batch = self._hop[link][key] = _Batch(due=due)
            self._hop_ready[link].set()
        elif due < batch.due:  # an urgent frame's hop ack does not wait for routine company
            batch.due = due
            self._hop_ready[link].set()
        batch.ids.append(message_id)
        batch.priority = max(batch.priority, priority)

    def e2e_ack(
        self,
        origin: bytes,
        message_id: bytes,
        priority: Priority,
        remaining_minutes: int,
        status: Status = Status.ACTUAL,
    ) -> None:
        batch = self._e2e.setdefault((origin, status), _Batch())
        batch.ids.append(message_id)
        batch.priority = max(batch.priority, priority)
        batch.ttl_minutes = max(batch.ttl_minutes, min(remaining_minutes, 0xFFFF))
        batch.until = min(batch.until, self.clock.monotonic() + 60 * batch.ttl_minutes)
        self._e2e_ready.set()

    def reply_now(
        self, origin: bytes, message_id: bytes, priority: Priority, remaining_minutes: int, status: Status
    ) -> Incoming | None:
        """The end-to-end ack of ``message_id`` alone, signed and routed, for the caller to store with the
        message and send once both are committed; None when acks to ``origin`` are being batched (or it
        cannot be made now): then the caller uses ``e2e_ack``."""
        key, now = (origin, status), self.clock.monotonic()
        if (
            self.prepare is None
            or key in self._e2e
            or now - self._replied.get(key, -math.inf) < self.e2e_delay
        ):
            return None
        ttl = max(HOP_ACK_TTL_MINUTES, min(remaining_minutes, 0xFFFF))
        try:
            out = self.prepare(Kind.ACK, origin, encode_ids([message_id]), priority, ttl, status)
        except BeredtError as exc:
            log.info("end-to-end ack to %s left to the batch: %s", origin.hex(), exc)
            return None
        if len(self._replied) >= REPLIED_KEPT:
            self._replied = {k: t for k, t in self._replied.items() if now - t < self.e2e_delay}
        self._replied[key] = now
        self.e2e_acks_sent += 1
        return out

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for link in self._hop:
                group.create_task(self._hop_forever(link, group), name=f"acks-hop-{link}")
            group.create_task(self._e2e_forever(), name="acks-e2e")

    async def _hop_forever(self, link: str, group: asyncio.TaskGroup) -> None:
        """Send each destination's hop ack when it is due; woken by a new (or an earlier) due time and by
        a hop ack that finished while ids for its destination waited."""
        ready, loop = self._hop_ready[link], asyncio.get_running_loop()
        while True:
            await ready.wait()
            while True:
                ready.clear()
                busy = self._hop_busy[link]
                # ids for a destination whose hop ack is under way go out after it, together
                due = min((b.due for k, b in self._hop[link].items() if k not in busy), default=None)
                if due is None:
                    break
                if due > loop.time():
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout_at(due):
                            await ready.wait()
                    continue
                self._send_due(link, group, loop.time())

    def _send_due(self, link: str, group: asyncio.TaskGroup, now: float) -> None:
        busy = self._hop_busy[link]
        for key, batch in list(self._hop[link].items()):
            if key in busy or batch.due > now:
                continue
            del self._hop[link][key]
            stranger = self.links.peer_at(link, key[0]) is None
            if stranger and self._strangers_acked >= MAX_STRANGER_HOP_ACKS:
                self.hop_acks_failed += 1
                log.debug("hop ack to %s on %s dropped: too many to unknown addresses", key[0], link)
                continue
            busy.add(key)
            self._strangers_acked += stranger
            group.create_task(self._send_hop_to(link, key, batch, stranger))

    async def _send_hop_to(
        self, link: str, key: tuple[str, bytes, Status], batch: _Batch, stranger: bool
    ) -> None:
        """One destination's hop ack; then, if ids for it came in meanwhile, wake the loop for them."""
        source, previous, status = key
        try:
            await self._send_hop(link, source, previous, status, batch)
        finally:
            self._hop_busy[link].discard(key)
            self._strangers_acked -= stranger
            if key in self._hop[link]:
                self._hop_ready[link].set()

    async def _send_hop(self, link: str, source: str, previous: bytes, status: Status, batch: _Batch) -> None:
        for start in range(0, len(batch.ids), MAX_IDS_PER_ACK):
            frame = self.identity.sign(
                Kind.HOP_ACK,
                previous,
                encode_ids(batch.ids[start : start + MAX_IDS_PER_ACK]),
                created=int(self.clock.time()),
                ttl_minutes=HOP_ACK_TTL_MINUTES,
                priority=batch.priority,
                status=status,
            )
            try:
                await self.links.send(link, source, frame.encode(), int(batch.priority))
                self.hop_acks_sent += 1
            except TransportError as exc:  # the sender retries and we ack the duplicate
                self.hop_acks_failed += 1
                # A reply-to address no peer has is the sender's claim: not worth a line each.
                level = logging.INFO if self.links.peer_at(link, source) else logging.DEBUG
                log.log(level, "hop ack to %s on %s failed: %s", source, link, exc)

    async def _e2e_forever(self) -> None:
        while True:
            await self._e2e_ready.wait()
            await asyncio.sleep(self.e2e_delay)
            self._e2e_ready.clear()
            batches, self._e2e = self._e2e, {}
            for (origin, status), batch in batches.items():
                for start in range(0, len(batch.ids), MAX_IDS_PER_ACK):
                    payload = encode_ids(batch.ids[start : start + MAX_IDS_PER_ACK])
                    try:
                        await self.submit(
                            Kind.ACK, origin, payload, batch.priority, batch.ttl_minutes, status
                        )
                        self.e2e_acks_sent += 1
                    except RoutingError as exc:
                        self._no_route_yet(
                            origin, status, batch, batch.ids[start : start + MAX_IDS_PER_ACK], exc
                        )
                    except BeredtError:
                        log.exception("could not queue end-to-end ack to %s", origin.hex())

    def _no_route_yet(
        self, origin: bytes, status: Status, batch: _Batch, ids: list[bytes], exc: RoutingError
    ) -> None:
        """Keep ``ids`` to try again in ``NO_ROUTE_RETRY``, unless the ack would have expired by then."""
        if self.clock.monotonic() + NO_ROUTE_RETRY >= batch.until:
            log.warning("end-to-end ack to %s given up: %s", origin.hex(), exc)
            return
        log.debug("end-to-end ack to %s waits for a route: %s", origin.hex(), exc)
        kept = self._e2e.setdefault((origin, status), _Batch())
        kept.ids[:0] = ids
        kept.priority = max(kept.priority, batch.priority)
        kept.ttl_minutes = max(kept.ttl_minutes, batch.ttl_minutes)
        kept.until = min(kept.until, batch.until)
        asyncio.get_running_loop().call_later(NO_ROUTE_RETRY, self._e2e_ready.set)
