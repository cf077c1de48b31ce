"""The hub's side of learned routes: which link tells each neighbour, sending ROUTE frames, hearing them.

Every second the hub looks at its neighbours (the peers ``LinkSet`` knows, configured or learned): a
neighbour is told over its best usable free link (internet, MQTT) when it has one, else over a metered
one (LoRa, SINE: the radio pace of ``hub.relay.route_table``), and over a paid one (satellite) only when
that link asks for it (``announce = "changes"``, ``paid_gaps``): then as over radio, what only it reaches
and a default, the first one free interval after the neighbour comes up (so it already holds what our
free neighbours told us), its changes at most every ``announce_hours`` and the same again weekly
(``PAID_INTERVAL``) so what it learned from us does not expire; sent urgent, which a satellite link
takes, and the credits they cost counted (``paid_spent``). Two announcements to one neighbour over a
paid link are never closer than ``announce_hours``, whatever asks for the second: a change, a full
table, the neighbour back after an outage, its link switching from a free or radio one, a prompt for
our table. When we last announced over one is kept for as long as the hub runs (``_paid_sent``), so
only the first after a start goes without waiting. A neighbour with no usable link at all is down:
every route through it is dropped at once. ROUTE frames are signed, sent with zero hops, never
stored, queued or retried: a lost one is made good by the next. Over a radio link that broadcasts (LoRa)
one frame to everyone tells all the neighbours there at once (one frame's airtime instead of one per
neighbour); elsewhere each goes straight to one neighbour's address.
One is taken only when it is addressed to us or to everyone, comes from a neighbour with zero hops, is
unexpired and is not older than the last one taken from it, so a recorded announcement replayed later
cannot bring back a route that was withdrawn; a hub never passes one on.

A hub that knows no neighbour on an internet link yet (a new care home, configured with nothing but the
root key and its municipality's *entry points*, ``[trust] entry``) announces itself to each entry point
there, an empty announcement to everyone, at once and then every interval until it has one. The relay
at that address takes it like any announcement from a roster-trusted hub: it learns the care home's
address from its signed address card, hands it the roster (``hub.relay.roster_handoff``: until it holds
one the care home takes no frame) and starts telling it its routes, which is how the care home in turn
learns the relay. When its last neighbour there is lost, it starts again (a relay replaced or moved is
found at another entry point).

On a shared MQTT broker a hub with no neighbour there announces itself on the broadcast topic, at once
and then every interval until it has one; a hub that holds it in its roster learns it at its node id
(the frame's signer, never the topic's sender level, which is only a claim), hands it the roster and
tells it its routes, as over a radio channel but at the free pace.

Over a radio channel (LoRa) a hub with no neighbour there does the same without any address to know:
one empty announcement to everyone on the channel, at once and then every ``radio_gap`` (an hour: one
frame's airtime, inside the announcement budget) until it has one. A hub there that holds the sender in
its roster learns it at the radio node it came from (``hub.relay.learned_addresses`` says when that may
move), hands it the roster and tells it its routes: a LoRa-only care home needs no ``[[peers]]`` line on
either side. Both kinds of announcement of itself say the sender is *alone* on that link: a neighbour
that holds it, and whose roster version it holds, answers with its table at once (at most once per
``PROMPT_GAP``, ``RADIO_GAP`` over radio, and never for a replay of the last one), so a hub restarted,
or on a new radio, learns its routes again in seconds, not at the next 12 h radio announcement.

Each announcement also says which roster version its sender holds. A neighbour holding an older one, or
none (a hub that has only the root key takes no frame until it holds a version, our announcements
included), is handed ours (``on_needs_roster``, paced by ``hub.relay.roster_handoff``; over radio when
radio is its only link). A hub that takes its first roster tells all its neighbours again at once, and
a neighbour that says it has caught up is told our table again at once (on a radio channel: everyone
there, one frame): so a hub that refused our announcements while it had no roster learns its routes as
soon as it has one, not at the next full announcement (12 h over radio). The first happens once in a
hub's life; the second at most once per ``PROMPT_GAP`` per neighbour (``RADIO_GAP`` over radio), and
only after that neighbour said it was behind, which drew a hand-off, or the first time it is heard
(it may have caught up from a broadcast before we heard it behind).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Callable, Mapping

from hub.core.clock import Clock
from hub.core.errors import ProtocolError, TransportError
from hub.core.frame import BROADCAST, Frame, Kind, Priority
from hub.core.identity import Identity
from hub.core.kinds.routes import EXPIRY_INTERVALS, MAX_INTERVAL, RouteAnnouncement, decode, encode
from hub.core.metering import Tally
from hub.core.transport import BROADCAST_ADDRESS, Cost
from hub.relay.health import LinkState
from hub.relay.links import LinkSet
from hub.relay.route_table import Pace, RouteTable, Target, hop_cost

log = logging.getLogger("beredt.routes")

TICK = 1.0
RADIO_INTERVAL = 12 * 3600.0
"""A LoRa frame with its signature takes about 1.3 s of air (LONG_FAST), and announcements may use 1.8 s
an hour (5 % of the EU868 duty cycle): so a radio neighbour hears our table twice a day, and a change at
most hourly. Probes, not announcements, notice a radio link lost."""
RADIO_GAP = 3600.0
PAID_INTERVAL = float(MAX_INTERVAL)
"""Over a paid link that asked for announcements: the same again once a week (the longest lifetime an
announcement may give), so a neighbour there keeps our routes with no change to tell it."""
PROMPT_GAP = 600.0
"""Least time between two announcements out of pace to one neighbour for having caught up with our
roster (over radio: ``RADIO_GAP``)."""


class RouteLearning:
    def __init__(
        self,
        identity: Identity,
        links: LinkSet,
        known: Callable[[bytes], bool],
        clock: Clock,
        *,
        interval: float = 30.0,
        gap: float = 1.0,
        radio_interval: float = RADIO_INTERVAL,
        radio_gap: float = RADIO_GAP,
        entry: tuple[str, ...] = (),
        roster_version: Callable[[], int] | None = None,
        paid_gaps: Mapping[str, float] | None = None,
    ) -> None:
        self.identity = identity
        self.links = links
        self.clock = clock
        self.table = RouteTable(identity.node_id, known)
        self.free_pace = (interval, gap)
        self.radio_pace = (radio_interval, radio_gap)
        self.paid_gaps = dict(paid_gaps or {})
        """Paid link that asked for announcements -> least seconds between two of its changes."""
        self.paid_frames = 0
        self.paid_spent = {link: Tally() for link in self.paid_gaps}
        """Paid link -> what our announcements over it cost since start, as the link counted it (credits;
        shown in ``/v1/links`` and ``beredt links``)."""
        self._paid_sent: dict[bytes, float] = {}
        """Neighbour -> when (monotonic) an announcement over a paid link last reached it; kept when it
        goes down or over another link, so the gap holds when it is back."""
        self._via: dict[bytes, tuple[str, str, bool, bool]] = {}
        """Neighbour -> (link, address, radio, paid) that tells it now; a paid link is told as radio."""
        self.entry = entry
        self._next_hello: dict[str, float] = {}
        self._hello_failed: dict[str, int] = {}
        """Link -> announcements of ourselves in a row it did not take (the wait doubles with each)."""
        """Link without a neighbour -> when to announce ourselves there again (over a paid link kept while
        it has one: two go no closer than its gap, however often its neighbour is lost)."""
        self.broadcasts = 0
        """Announcements sent once to every neighbour on a radio link."""
        self._newest: dict[bytes, int] = {}
        self.sent_frames = 0
        self.sent_bytes = 0
        self.refused = 0
        self.roster_version = roster_version
        """The roster version this hub holds; None: it has no root, and says nothing of rosters."""
        self._held = roster_version() if roster_version is not None else 0
        self._behind: set[bytes] = set()
        """Neighbours whose last announcement said they hold an older roster than ours."""
        self._prompted: dict[bytes, float] = {}
        """Neighbour -> when it may next be told our table out of pace for having caught up."""
        self._answered: dict[bytes, float] = {}
        """Neighbour -> when it may next be told our table out of pace for knowing no neighbour."""
        self.on_needs_roster: Callable[[bytes, bool, int | None], None] | None = None
        """Told a neighbour that holds an older roster than ours, or is new and does not say, whether
        only radio reaches it, and the version it holds (``hub.relay.roster_handoff``)."""

    def next_hops(self, destination: bytes) -> list[bytes]:
        return self.table.next_hops(destination)

    def link_to(self, neighbour: bytes) -> str | None:
        """The link ``neighbour`` is told over now (its cheapest usable one), or None: down."""
        via = self._via.get(neighbour)
        return None if via is None else via[0]

    def _best_link(self, neighbour: bytes) -> tuple[str, str, Cost, int] | None:
        """The (link, address, link cost, hop cost) to tell ``neighbour`` over, cheapest usable first;
        a paid link only if it asked for announcements."""
        best: tuple[int, str, str, Cost] | None = None
        for option in self.links.options(neighbour):
            caps = self.links.capabilities(option.link)
            if caps.cost is Cost.PAID and option.link not in self.paid_gaps:
                continue
            if self.links.state(option.link, neighbour) is LinkState.DOWN:
                continue
            cost = hop_cost(self.links.kind_of(option.link))
            if best is None or cost < best[0]:
                best = (cost, option.link, option.address, caps.cost)
        return None if best is None else (best[1], best[2], best[3], best[0])

    def refresh(self) -> None:
        """Bring the table's neighbours in line with the links: up at their cost, or down."""
        now = self.clock.monotonic()
        for neighbour in list(self.links.peers):
            chosen = self._best_link(neighbour)
            if chosen is None:
                if self._via.pop(neighbour, None) is not None:
                    log.info("no usable link to %s: routes through it dropped", neighbour.hex())
                self.table.neighbour_down(neighbour)
                continue
            link, address, link_cost, cost = chosen
            paid, radio = link_cost is Cost.PAID, link_cost is not Cost.FREE
            first, last = now, -math.inf
            if paid:  # after one free round: by then our free neighbours have told us their tables
                interval, gap, first = PAID_INTERVAL, self.paid_gaps[link], now + self.free_pace[0]
                last = self._paid_sent.get(neighbour, last)
            else:
                interval, gap = self.radio_pace if radio else self.free_pace
            # used only when new or changed
            pace = Pace(interval, gap, radio=radio, paid=paid, next_full=first, last_sent=last)
            self._via[neighbour] = (link, address, radio, paid)
            # never a channel over a paid link: each neighbour's announcements go urgent and are counted
            shared = radio and not paid and self.links.capabilities(link).broadcast
            self.table.neighbour_up(neighbour, cost, pace, channel=link if shared else None)

    async def run(self) -> None:
        """A ``tick`` every second; never returns."""
        while True:
            await self.tick()
            await asyncio.sleep(TICK)

    async def tick(self) -> None:
        """Bring the neighbours in line with the links, forget what is stale, announce what is due."""
        self.refresh()
        now = self.clock.monotonic()
        self.table.expire(now)
        self._follow_roster(now)
        for target, pages in self.table.outgoing(now).items():
            await self._send(target, pages)
        await self._hello(now)

    async def _hello(self, now: float) -> None:
        """Announce ourselves over each link that has no neighbour: to the entry points over internet,
        to everyone on a radio channel or a shared broker, to the addresses a link without broadcast
        knows (``Capabilities.entry``: a satellite modem's provider, a SINE link's entry radios). To
        everyone only a hub with a root: its roster decides who may learn it."""
        for link in self.links.transports:
            if self.links.kind_of(link) == "internet" and self.entry:
                addresses, interval, radio = self.entry, self.free_pace[0], False
            elif self._radio_channel(link) and self.roster_version is not None:
                addresses, interval, radio = (BROADCAST_ADDRESS,), self.radio_pace[1], True
            elif self._shared_broker(link) and self.roster_version is not None:
                addresses, interval, radio = (BROADCAST_ADDRESS,), self.free_pace[0], False
            elif entry := self._link_entry(link):  # addressed, as over internet
                # over a paid link at most once per announce_hours, as its announcements
                addresses, interval, radio = entry, self.paid_gaps.get(link, self.radio_pace[1]), True
            else:
                continue
            if any(via[0] == link for via in self._via.values()):
                if link not in self.paid_gaps:  # the next time it has none, at once; paid: after the gap
                    self._next_hello.pop(link, None)
                self._hello_failed.pop(link, None)
                continue
            if now < self._next_hello.get(link, now):
                continue
            self._next_hello[link] = now + interval
            lifetime = self.radio_pace[0] if radio else interval
            paid, sent = link in self.paid_gaps, False
            for address in addresses:
                page = RouteAnnouncement(max(1, round(lifetime)), alone=True)
                sent = await self._send_page(link, address, BROADCAST, page, radio=radio, paid=paid) or sent
            if sent:
                self._hello_failed.pop(link, None)
            else:  # the link took none (a modem not ready yet): again soon, not an interval later, but
                # backing off: an SDS to a radio that is off fails only after it went out
                failed = self._hello_failed[link] = self._hello_failed.get(link, 0) + 1
                self._next_hello[link] = now + min(interval, self.free_pace[0] * 2 ** min(failed - 1, 16))

    def _link_entry(self, link: str) -> tuple[str, ...]:
        """The addresses ``link`` itself knows to reach a neighbour at (a satellite modem's provider, a
        SINE link's entry radios); none over a paid link that did not ask for announcements."""
        caps = self.links.capabilities(link)
        if caps.cost is Cost.PAID and link not in self.paid_gaps:
            return ()
        return caps.entry

    def _shared_broker(self, link: str) -> bool:
        """Whether ``link`` is a free one where everyone is reached at once and a node's address is its
        node id (MQTT: the broadcast topic of the municipality's broker)."""
        caps = self.links.capabilities(link)
        return caps.cost is Cost.FREE and caps.broadcast and caps.node_id_addresses

    def _radio_channel(self, link: str) -> bool:
        """Whether ``link`` is a metered radio that reaches everyone on its channel at once (LoRa)."""
        caps = self.links.capabilities(link)
        return caps.cost is Cost.METERED and caps.broadcast

    async def _send(self, target: Target, pages: list[RouteAnnouncement]) -> None:
        """Send ``pages`` to one neighbour, or broadcast them on the radio link named by ``target``."""
        if isinstance(target, str):
            link, address, radio, paid, recipient = target, BROADCAST_ADDRESS, True, False, BROADCAST
        else:
            link, address, radio, paid = self._via[target]
            recipient = target
        for page in pages:
            if not await self._send_page(link, address, recipient, page, radio=radio, paid=paid):
                return
            if paid:
                self._paid_sent[recipient] = self.clock.monotonic()

    async def _send_page(
        self,
        link: str,
        address: str,
        recipient: bytes,
        page: RouteAnnouncement,
        *,
        radio: bool = False,
        paid: bool = False,
    ) -> bool:
        """Sign and send one announcement; False if the link would not take it."""
        # Routine traffic may not use radio, nor anything below urgent a satellite link (its min_priority).
        priority = Priority.URGENT if paid else Priority.NORMAL if radio else Priority.ROUTINE
        if self.roster_version is not None:
            page = dataclasses.replace(page, roster=self.roster_version())
        ttl = max(1, math.ceil(EXPIRY_INTERVALS * page.interval / 60))
        frame = self.identity.sign(
            Kind.ROUTE,
            recipient,
            encode(page),
            created=int(self.clock.time()),
            ttl_minutes=ttl,
            priority=priority,
        )
        wire = frame.encode()
        try:
            await self.links.send(
                link, address, wire, int(priority), account=self.paid_spent[link] if paid else None
            )
        except TransportError as exc:
            who = "everyone" if recipient == BROADCAST else recipient.hex()
            log.debug("route announcement to %s at %s over %s not sent: %s", who, address, link, exc)
            return False
        self.broadcasts += recipient == BROADCAST and radio
        self.sent_frames += 1
        self.sent_bytes += len(wire)
        if paid:
            self.paid_frames += 1
            log.info(
                "route announcement over paid link %s: %d sent, %d credits so far",
                link,
                self.paid_frames,
                self.paid_spent[link].credits,
            )
        return True

    def newer(self, frame: Frame) -> bool:
        """Whether ``frame`` is newer than every announcement taken from its sender."""
        return frame.created > self._newest.get(frame.sender, 0)

    def hear(self, frame: Frame, me: bytes) -> str | None:
        """Take an admitted ROUTE frame; return why it was refused, or None."""
        if frame.recipient not in (me, BROADCAST) or frame.hops != 0:
            return "a route announcement is for one neighbour, never relayed"
        new = frame.sender not in self._via
        if new and frame.sender in self.links.peers:
            self.refresh()  # a neighbour just learned from this very frame
        if frame.sender not in self._via:
            return f"{frame.sender.hex()} is not a neighbour with a usable link"
        if frame.created < self._newest.get(frame.sender, 0):
            return "older than the last route announcement taken from its sender"
        try:
            announcement = decode(frame.payload)
        except ProtocolError as exc:
            return str(exc)
        first = frame.sender not in self._newest
        later = frame.created > self._newest.get(frame.sender, 0)  # never a replay of the last one
        self._newest[frame.sender] = frame.created
        shared = frame.recipient == BROADCAST
        self.refused += self.table.hear(frame.sender, announcement, self.clock.monotonic(), shared=shared)
        self._compare_rosters(frame.sender, announcement.roster, new=new, first=first)
        if announcement.alone and later:
            self._answer_alone(frame.sender, announcement.roster)
        return None

    def _compare_rosters(self, neighbour: bytes, theirs: int | None, *, new: bool, first: bool) -> None:
        """Hand our roster to a neighbour behind (or new and silent about it); tell one that has just
        caught up our table again, or one first heard (it may have caught up unheard, from a broadcast,
        having refused all we said before)."""
        ours = self.roster_version() if self.roster_version is not None else None
        behind = theirs is not None and ours is not None and theirs < ours
        if (behind or (new and theirs is None)) and self.on_needs_roster is not None:
            self.on_needs_roster(neighbour, self._via[neighbour][2], theirs)
        if behind:
            self._behind.add(neighbour)
            return
        if theirs is None or not (first or neighbour in self._behind):
            return
        self._behind.discard(neighbour)
        now = self.clock.monotonic()
        if now >= self._prompted.get(neighbour, now):
            self._prompted[neighbour] = now + (RADIO_GAP if self._via[neighbour][2] else PROMPT_GAP)
            self.table.tell_again(now, neighbour)
            log.info("%s holds roster version %d: our routes told again", neighbour.hex(), theirs)

    def _answer_alone(self, neighbour: bytes, theirs: int | None) -> None:
        """A neighbour that knows nobody on the link (restarted, or on a new radio) asked for our table.
        One behind on the roster would refuse it: it gets the roster first and our table when it says
        it has caught up (``_compare_rosters``)."""
        ours = self.roster_version() if self.roster_version is not None else None
        if theirs is not None and ours is not None and theirs < ours:
            return
        now = self.clock.monotonic()
        if now >= self._answered.get(neighbour, now):
            self._answered[neighbour] = now + (RADIO_GAP if self._via[neighbour][2] else PROMPT_GAP)
            self.table.tell_again(now, neighbour)
            log.info("%s knows no neighbour on its link: our routes told again", neighbour.hex())

    def _follow_roster(self, now: float) -> None:
        """Our first roster: tell every neighbour at once that we hold it. Until now we refused all they
        said; the one that handed it to us answers with its table (``_compare_rosters``). A later version
        needs no such round: we took their announcements all along."""
        if self.roster_version is None or self._held:
            return
        self._held = self.roster_version()
        if self._held:
            self.table.tell_again(now)
            log.info("first roster (version %d) taken: our routes told to every neighbour again", self._held)
