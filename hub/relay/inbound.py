"""What happens to bytes that arrive on a link, in order: nothing untrusted touches the store.

    fragment? -> reassemble -> decode -> admit (roster, signature, kind, hops, expiry)
      -> hop ack? settle our deliveries, done
      -> seen before? count as replayed, ack again (the sender missed our ack), done
      -> for us / broadcast / to forward? (no route -> refuse, so the sender tries another way)
      -> durable commit (with its end-to-end ack, when one is made at once: ``AckBatcher.reply_now``)
      -> learn from it -> hop ack to the sender -> track onward deliveries, notify, ack

Frames read together from a link are worked as a batch (``handle_batch``): each is checked on its own and
in order, then the batch's new messages are committed in one transaction, and every step after the
commit runs only once that transaction is durable. One fsync serves the batch; a crash before it loses
only frames that were never hop-acked, so their senders send them again.

Frames carry a hop counter outside the signature, so it decides nothing on its own: a neighbour's address
is learned only from a frame that was just stored as new (never from a replay), with zero hops, stamped
within ``FRESH`` seconds of a clock we trust (``_learn``). The time is never taken from frames (see
``hub.relay.time_challenge``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from hub.core.clock import Clock
from hub.core.errors import ProtocolError, RefusalReason, TrustError
from hub.core.fragment import Reassembler, decode_fragment, is_fragment
from hub.core.frame import BROADCAST, MAX_FRAME, Frame, Kind, Priority, Status, decode_frame
from hub.core.kinds.roster import RosterPage
from hub.core.transport import Cost, Received
from hub.relay.acks import AckBatcher, decode_ids
from hub.relay.address_cards import AddressCards
from hub.relay.admission import Admission
from hub.relay.events import EventBus, FrameRefused, MessageReceived, RadioStatus
from hub.relay.exercises import ExerciseState
from hub.relay.lanes import is_exercise_control
from hub.relay.link_reasons import Reason, Why
from hub.relay.links import LinkSet
from hub.relay.roster import RosterEntry
from hub.relay.roster_updates import RosterUpdates
from hub.relay.route_learning import RouteLearning
from hub.relay.router import Router
from hub.relay.settings import may_wait
from hub.relay.store import Store
from hub.relay.store_records import Incoming

log = logging.getLogger("beredt.inbound")

FRESH = 300  # seconds: a frame stamped longer ago (or ahead) than this teaches no address
_NOT_FOR_PEOPLE = (
    Kind.ACK,
    Kind.ROSTER,
    Kind.EXERCISE_CONTROL,
    Kind.EXERCISE_SUMMARY,
)  # handled by the hub itself, never shown in an inbox
STATUS_MARKER = b"\x00"  # first byte of link-level status data, never of a frame (see hub/core/frame.py)


class Inbound:
    def __init__(
        self,
        *,
        me: bytes,
        admission: Admission,
        store: Store,
        router: Router,
        links: LinkSet,
        acks: AckBatcher,
        events: EventBus,
        clock: Clock,
        roster_updates: RosterUpdates | None = None,
        commit_window: float = 0.0,
    ) -> None:
        self.me = me
        self.commit_window = commit_window
        """Seconds routine and normal messages may wait for company in their commit (``Timing``)."""
        self.impatient: set[bytes] = set()
        """Neighbours that resent a message while it waited in the commit window (their window is shorter
        than ours): their messages are committed at once from then on. At most one per trusted node."""
        self.roster_updates = roster_updates
        self.admission = admission
        self.store = store
        self.router = router
        self.links = links
        self.acks = acks
        self.events = events
        self.clock = clock
        self.cards = AddressCards(clock)
        self.reassembler = Reassembler()
        self._accepting: set[bytes] = set()
        self.accepted = 0
        self.simulated_dropped = 0
        """Frames ignored because an exercise treats the link they came in on as down."""
        self.radio_status: dict[str, RadioStatus] = {}
        self.exercise: ExerciseState | None = None
        self.routes: RouteLearning | None = None

    def reassembly_status(self) -> dict[str, int]:
        """Partial fragment sets held, their bytes and budget, and what was refused, evicted or expired."""
        return {**dataclasses.asdict(self.reassembler.stats), "budget_bytes": self.reassembler.max_bytes}

    def _refuse(self, link: str, source: str, reason: RefusalReason, detail: str) -> None:
        try:
            raise self.admission.refuse(reason, detail, f"{link}:{source}")
        except TrustError as exc:
            self.events.publish(FrameRefused(link, source, exc.reason.value))

    async def handle(self, link: str, received: Received) -> None:
        await self.handle_batch(link, [received])

    async def handle_batch(self, link: str, batch: Sequence[Received]) -> None:
        """Work frames read together from ``link``. An exercise's controls among them go first, as a batch
        of their own: an end lifts the simulated outage the frames that came with it would otherwise be
        dropped by. Each is checked on its own and in order, so a bad one refuses only itself and each
        frame is judged by the state its predecessors left; then every new message among them is
        committed in one transaction (one fsync for the batch), and only after that commit is any of
        them hop-acked, passed on or announced."""
        controls = [r for r in batch if is_exercise_control(r.data)]
        if controls and len(controls) < len(batch):
            await self._handle_in_order(link, controls)
            batch = [r for r in batch if not is_exercise_control(r.data)]
        await self._handle_in_order(link, batch)

    async def _handle_in_order(self, link: str, batch: Sequence[Received]) -> None:
        pending: list[_Pending] = []
        try:
            for received in batch:
                try:
                    item = self._admit(link, received)
                except Exception:  # one bad frame must not cost the others
                    log.exception("inbound frame on %s from %s failed", link, received.source)
                    continue
                if item is not None:
                    pending.append(item)
            if not pending:
                return
            # each message, then its end-to-end ack if one was made at once: one transaction. A message
            # with an ack is for us and takes no quota, so it fails only with the whole commit, ack and all.
            stored = [m for item in pending for m in (item.incoming, item.reply) if m is not None]
            patience = self.commit_window if self._may_wait(link, pending) else 0.0
            errors = iter(await self.store.accept_many(stored, self.clock.time(), patience=patience))
        finally:
            self._accepting.difference_update(item.incoming.frame.id for item in pending)
        for item in pending:
            error = next(errors)
            if item.reply is not None and next(errors) is not None:
                item = dataclasses.replace(item, reply=None)  # no room for it: the batch path says why
            if error is not None:
                log.error(
                    "could not store %s from %s: %s; the sender will retry",
                    item.incoming.frame.id.hex(),
                    link,
                    error,
                )
                continue
            try:
                await self._committed(item)
            except Exception:
                log.exception("inbound frame on %s from %s failed", link, item.received.source)

    def _admit(self, link: str, received: Received) -> _Pending | None:
        """Everything before the store: the message to commit, or None if the frame ends here."""
        data = received.data
        # An exercise's pretend outage drops what arrives on the link, as if it never arrived: the sender
        # gets no hop ack and fails over. Only the exercise's own controls pass: an outage control and
        # the end that lifts it may come in one batch, and the end must not be lost to the outage.
        simulated_out = self._simulated_out(link, received.source)
        if simulated_out and (is_fragment(data) or data[:1] == STATUS_MARKER):
            self.simulated_dropped += 1
            return None
        if data[:1] == STATUS_MARKER and "value" in received.meta:
            self._radio_status(link, received)
            return None
        if is_fragment(data):
            try:
                whole = self.reassembler.add(
                    fragment_source(link, received), decode_fragment(data), self.clock.monotonic()
                )
            except ProtocolError as exc:
                self._refuse(link, received.source, RefusalReason.MALFORMED, str(exc))
                return None
            except TrustError as exc:
                self._refuse(link, received.source, exc.reason, str(exc))
                return None
            if whole is None:
                return None
            data = whole
        if len(data) > MAX_FRAME:
            self._refuse(link, received.source, RefusalReason.OVERSIZE, f"{len(data)} bytes > {MAX_FRAME}")
            return None
        try:
            frame = decode_frame(data)
        except ProtocolError as exc:
            self._refuse(link, received.source, RefusalReason.MALFORMED, str(exc))
            return None
        if simulated_out and frame.kind is not Kind.EXERCISE_CONTROL:
            self.simulated_dropped += 1
            return None
        try:
            signer = self.admission.check(frame, f"{link}:{received.source}")
        except TrustError as exc:
            self.events.publish(FrameRefused(link, received.source, exc.reason.value))
            return None
        if frame.kind is Kind.HOP_ACK:
            self._hop_ack(frame, link, received.source)
            return None
        if frame.kind is Kind.ROUTE:
            self._route(frame, signer, link, received)
            return None
        return self._message(frame, data, signer, link, received)

    def _simulated_out(self, link: str, source: str) -> bool:
        """Whether an exercise treats ``link`` (or the peer at ``source`` on it) as down right now."""
        health = self.links.health
        if health.simulated(link, None) is not None:
            return True
        peer = self.links.peer_at(link, source)
        return peer is not None and health.simulated(link, peer.hex()) is not None

    def _radio_status(self, link: str, received: Received) -> None:
        peer = self.links.peer_at(link, received.source)
        status = received.meta.get("status")
        value = int(received.meta["value"])
        log.warning(
            "radio status on %s from %s%s: %s (0x%04X)",
            link,
            received.source,
            f" ({peer.hex()})" if peer else "",
            status or "outside the status plan",
            value,
        )
        event = RadioStatus(link, received.source, peer.hex() if peer else None, status, value)
        self.radio_status[received.source] = event
        self.events.publish(event)

    def _hop_ack(self, frame: Frame, link: str, source: str) -> None:
        if frame.recipient not in (self.me, BROADCAST):
            return
        try:
            ids = decode_ids(frame.payload)
        except ProtocolError as exc:
            self._refuse(link, source, RefusalReason.MALFORMED, str(exc))
            return
        outcome = self.router.hop_acked(ids, frame.sender)
        if outcome.refused:
            self._refuse(
                link,
                source,
                RefusalReason.HOP_ACK_NOT_FROM_HOP,
                f"{frame.sender.hex()} acked {outcome.refused} frames it was never handed",
            )
        # Only an ack that settled a delivery proves the hop alive: a misdirected, late or replayed one
        # (anyone can replay a signed hop ack) must not keep a dead link looking up.
        if outcome.settled:
            self.links.health.success(link, frame.sender.hex(), self.clock.monotonic(), Reason(Why.HOP_ACK))

    def _route(self, frame: Frame, signer: RosterEntry, link: str, received: Received) -> None:
        """A neighbour's route announcement: taken by the route table, never stored nor forwarded. One
        newer than any taken from its sender may teach its address (a replay never is newer), so a new
        hub that announces itself becomes a neighbour without being configured."""
        if self.routes is None:
            why: str | None = "this hub does not learn routes"
        else:
            if frame.recipient in (self.me, BROADCAST) and self.routes.newer(frame):
                self._learn(frame, signer, link, received)
            why = self.routes.hear(frame, self.me)
        if why is not None:
            self._refuse(link, received.source, RefusalReason.ROUTE, f"route announcement refused: {why}")

    def _learn(self, frame: Frame, signer: RosterEntry, link: str, received: Received) -> None:
        """A frame just stored as new, signed by a trusted node: perhaps its address.

        Zero hops is only the sender's word (the counter is unsigned), so it merely filters out frames
        that were relayed and may be old; what makes it safe is that a replay is never new, and an address
        is taken only from a frame stamped within ``FRESH`` seconds of a clock we trust. On a link that
        carries address cards the address is the one the sender's signed card names (``AddressCards``),
        never the unsigned source; where addresses are node ids (MQTT) the signer's node id; elsewhere
        (LoRa) the source, moved only as ``hub.relay.learned_addresses`` allows, unless the link says
        anyone may name any source there (``Capabilities.sources_vouched``): then none."""
        if frame.hops != 0:
            return
        if not (self.clock.trusted and abs(self.clock.time() - frame.created) <= FRESH):
            return
        caps = self.links.capabilities(link)
        address: str | None = received.source
        vouched = caps.address_cards or caps.node_id_addresses
        if caps.node_id_addresses:  # the address is the signer's own id, whatever the topic claimed
            address = frame.sender.hex()
        elif not (vouched or caps.sources_vouched):
            return
        elif vouched:
            card = received.meta.get("card")
            if not isinstance(card, str):  # a hub of an older version: only configured addresses
                return
            try:
                address = self.cards.address(card, signer, link, self.links.kind_of(link))
            except TrustError as exc:
                self._refuse(link, received.source, exc.reason, str(exc))
                return
        if address is not None:
            self.links.learn(frame.sender, link, address, signer.name, stamped=frame.created, vouched=vouched)

    async def _e2e_ack(self, frame: Frame, link: str, source: str) -> None:
        """Settle what the ack's signer may settle: its own messages, its own copy of a broadcast."""
        try:
            ids = decode_ids(frame.payload)
        except ProtocolError as exc:
            log.warning("malformed end-to-end ack from %s: %s", frame.sender.hex(), exc)
            return
        recipients = await self.store.recipients(ids)
        own = [i for i in ids if recipients.get(i) == frame.sender]
        broadcast = [i for i in ids if recipients.get(i) == BROADCAST]
        foreign = len(recipients) - len(own) - len(broadcast)
        if foreign:
            self._refuse(
                link,
                source,
                RefusalReason.ACK_NOT_FROM_RECIPIENT,
                f"{frame.sender.hex()} acked {foreign} messages addressed to someone else",
            )
        if own:
            self.router.e2e_acked(own, frame.sender)
        if broadcast:
            self.router.recipient_acked(broadcast, frame.sender)

    def _duplicate(
        self, frame: Frame, link: str, source: str, previous: bytes | None, *, ack: bool = True
    ) -> None:
        self.admission.refused[RefusalReason.REPLAYED.value] += 1
        # debug only: anyone holding a recorded frame can send it again and again (it is counted above)
        log.debug("duplicate %s from %s:%s not stored", frame.id.hex(), link, source)
        if ack:  # the sender missed our earlier ack
            self.acks.hop_ack(link, source, previous, frame.id, _ack_priority(frame), frame.status)

    def _message(
        self, frame: Frame, data: bytes, signer: RosterEntry, link: str, received: Received
    ) -> _Pending | None:
        """A message to store, or None (a duplicate, a refused roster version, no route)."""
        message_id, source = frame.id, received.source
        previous = frame.sender if frame.hops == 0 else self.links.peer_at(link, source)
        # Claim the id before the commit is awaited: the same frame may arrive over several links at once.
        if message_id in self._accepting:  # no ack yet: the first copy is not committed
            self._duplicate(frame, link, source, None, ack=False)
            if self.commit_window and previous is not None:  # it waits no longer for our hop ack
                self.store.hurry()
                if previous not in self.impatient:
                    self.impatient.add(previous)
                    log.warning(
                        "%s resent %s while it waited in the commit window: its messages are committed at"
                        " once from now on (is its [timing] commit_window shorter than ours?)",
                        previous.hex(),
                        message_id.hex(),
                    )
            return None
        if self.store.has(message_id):
            self._duplicate(frame, link, source, previous)
            return None
        roster_page = None
        if frame.kind is Kind.ROSTER and self.roster_updates and self.roster_updates.root:
            try:  # a forged or stale version goes no further than this hub
                roster_page = self.roster_updates.check_any(frame.payload)
            except TrustError as exc:
                self._refuse(link, source, exc.reason, str(exc))
                return None
        for_me = frame.recipient in (self.me, BROADCAST)
        exclude = tuple(h for h in (previous, frame.sender) if h is not None)
        hops = (
            () if frame.recipient == self.me else tuple(self.router.delivery_hops(frame.recipient, exclude))
        )
        if not for_me and not hops:
            self._refuse(link, source, RefusalReason.NO_ROUTE, f"no route to {frame.recipient.hex()}")
            return None
        if for_me and frame.kind is Kind.EXERCISE_CONTROL and self.exercise is not None:
            # at once, before the commit is awaited: frames read after it are judged by the new state
            self.exercise.apply(frame)
        wire = frame.with_hops(frame.hops + 1).encode() if hops else data
        for_people = for_me and frame.kind not in _NOT_FOR_PEOPLE
        reply = None
        if frame.recipient == self.me and for_people:
            reply = self.acks.reply_now(
                frame.sender, message_id, frame.priority, self._ack_minutes(frame), frame.status
            )
        self._accepting.add(message_id)
        # the hub's clock stamps it, as for what it sends: one timeline in the store
        incoming = Incoming(frame, wire, hops, local=False, for_me=for_people, via=link)
        return _Pending(incoming, signer, link, received, previous, exclude, for_me, roster_page, reply)

    def _may_wait(self, link: str, pending: list[_Pending]) -> bool:
        """Whether these messages may wait in the commit window. Not on a link whose own ack already told
        the sender they arrived (a LoRa routing ack, an SDS report): the sender has let them go, so until
        the commit a power cut here would lose them. Not urgent or life-safety ones. Not end-to-end acks:
        on a paid link the ack to a direct neighbour is its hop ack too, and the sender's deadline has
        room for one window, the one its message waited in here. Not from a neighbour that has shown it
        waits less (``impatient``)."""
        if self.links.capabilities(link).link_ack:
            return False
        return all(
            may_wait(item.incoming.frame.priority)
            and item.incoming.frame.kind is not Kind.ACK
            and item.previous not in self.impatient
            for item in pending
        )

    async def _committed(self, item: _Pending) -> None:
        """A message just committed: learn from it, hop ack it, pass it on, announce or act on it."""
        frame, link, source = item.incoming.frame, item.link, item.received.source
        message_id, hops, previous = frame.id, item.incoming.hops, item.previous
        self.accepted += 1
        if hops:
            self.router.track(
                message_id,
                item.incoming.wire,
                frame.recipient,
                frame.priority,
                frame.expires,
                list(hops),
                exclude=list(item.exclude),
            )
        if item.roster_page is not None:  # ours, or a cross-certified municipality's: trusted at once,
            collector, page = item.roster_page  # passed on already, saved before our hop ack says we hold it
            adopted = collector.collect(page, frame.payload)
            if adopted is not None:
                await collector.save(adopted)
        # Learned before the hop ack is queued: a node that moved gets it where its fresh card says.
        self._learn(frame, item.signer, link, item.received)
        direct = frame.recipient == self.me and previous == frame.sender
        e2e_covers_hop = direct and frame.kind is not Kind.ACK
        if not (e2e_covers_hop and self.links.capabilities(link).cost is Cost.PAID):
            # On a paid link the end-to-end ack to a direct neighbour doubles as the hop ack: one message
            # of satellite credit saved per frame.
            self.acks.hop_ack(link, source, previous, message_id, _ack_priority(frame), frame.status)
        if item.for_me:
            await self._for_me(frame, link, source, item.reply)

    async def _for_me(self, frame: Frame, link: str, source: str, reply: Incoming | None) -> None:
        message_id = frame.id
        if frame.kind is Kind.ACK:
            await self._e2e_ack(frame, link, source)
            return
        if frame.kind in (Kind.ROSTER, Kind.EXERCISE_SUMMARY):  # applied on its commit, or read by the
            return  # after-action report from the store: no one's inbox
        if frame.kind is Kind.EXERCISE_CONTROL:  # the console's banner shows it, not the inbox
            if self.exercise is not None:
                self.exercise.apply(frame)
            return
        self.events.publish(
            MessageReceived(
                message_id.hex(),
                frame.sender.hex(),
                frame.kind.name.lower(),
                link,
                frame.priority.name.lower(),
            )
        )
        if reply is not None:  # committed with the message: it goes now
            ack = reply.frame
            self.router.track(ack.id, reply.wire, ack.recipient, ack.priority, ack.expires, list(reply.hops))
        elif frame.recipient == self.me:
            self.acks.e2e_ack(
                frame.sender, message_id, frame.priority, self._ack_minutes(frame), frame.status
            )

    def _ack_minutes(self, frame: Frame) -> int:
        """How long an end-to-end ack of ``frame`` lives: as long as the frame still would."""
        return max(10, int((frame.expires - self.clock.time()) // 60)) if self.clock.trusted else 60


@dataclass(frozen=True, slots=True)
class _Pending:
    """A message admitted from a batch and waiting for the batch's commit, with what acts on it after."""

    incoming: Incoming
    signer: RosterEntry
    link: str
    received: Received
    previous: bytes | None
    exclude: tuple[bytes, ...]
    for_me: bool
    roster_page: tuple[RosterUpdates, RosterPage] | None
    reply: Incoming | None = None
    """The end-to-end ack made at once (``AckBatcher.reply_now``), committed with the message."""


def _ack_priority(frame: Frame) -> Priority:
    """A hop ack goes at its frame's priority, an exercise's at routine: it spends no real budget."""
    return frame.priority if frame.status is Status.ACTUAL else Priority.ROUTINE


def fragment_source(link: str, received: Received) -> str:
    """Whom a fragment's share of the reassembler counts against: the connection's address where the
    link knows it, else the link's source. An internet sender's reply-to is its own claim: a flood naming
    a new one per POST would otherwise be a new source each time and push out other senders' sets."""
    return f"{link}|{received.meta.get('remote') or received.source}"
