"""The hub's view of its links: open transports, peers' addresses on them, and health.

``LinkSet`` is the only place the router meets transports. It fragments to each link's MTU, maps
transport errors to health, learns peers' addresses from frames they signed themselves (a mesh node
number, say, is never trusted from unsigned data), and probes every (link, peer) pair so a dead link is
noticed within a few seconds even when no traffic flows. Metered and paid links are probed less often
because their probes, though free of credit, still cost the radio time, unless they are failing: then
every round, so traffic returns to them as soon as they heal. A healthy pair that answered within the
last interval (a hop ack, a frame sent) is not probed: traffic already proves it, so a busy hub with 80
peers spends nothing on probes and an idle one probes as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hub.core.clock import Clock
from hub.core.errors import BudgetExhausted, LinkDown, TransportError
from hub.core.fragment import split
from hub.core.metering import Tally, charged_to
from hub.core.transport import Capabilities, Cost, OutFrame, SendsBatches, Transport
from hub.relay.health import HealthBoard, HealthChanged, LinkState
from hub.relay.learned_addresses import MAX_LEARNED_PEERS, LearnedAddress, Learning
from hub.relay.link_reasons import Reason, Why
from hub.relay.policy import Candidate
from hub.relay.settings import PeerConfig

log = logging.getLogger("beredt.links")


@dataclass(slots=True)
class Peer:
    node_id: bytes
    name: str
    addresses: dict[str, str]
    """Link name -> address, from config; learned addresses fill gaps but never override config."""
    learned: dict[str, LearnedAddress]

    def address(self, link: str) -> str | None:
        learned = self.learned.get(link)
        return self.addresses.get(link) or (learned.address if learned is not None else None)


def _no_account(link: str, wire: bytes) -> Tally | None:
    return None


class LinkSet:
    def __init__(
        self,
        transports: Mapping[str, Transport],
        kinds: Mapping[str, str],
        peers: Sequence[PeerConfig],
        health: HealthBoard,
        clock: Clock,
    ) -> None:
        self.transports = dict(transports)
        self.kinds = dict(kinds)
        self.health = health
        self.clock = clock
        self.peers: dict[bytes, Peer] = {p.node_id: Peer(p.node_id, p.name, dict(p.links), {}) for p in peers}
        self._by_address = {(link, addr): p.node_id for p in peers for link, addr in p.links.items()}
        self.sent_bytes: dict[str, int] = dict.fromkeys(self.transports, 0)
        self.last_failover: dict[str, str] = {}
        self.probes_skipped = 0
        """Probes left out because traffic had just shown the pair working."""
        self._batching = {link for link, t in self.transports.items() if isinstance(t, SendsBatches)}
        self.account: Callable[[str, bytes], Tally | None] = _no_account
        """The tally what a link spends on a frame is charged to (``hub.relay.exercise_usage``)."""
        self._configured = len(self.peers)
        self.learning: dict[str, int] = dict.fromkeys((o.value for o in Learning), 0)
        """What signed frames did to learned addresses, per ``Learning`` outcome."""
        health.listen(self._on_health)

    def capabilities(self, link: str) -> Capabilities:
        return self.transports[link].capabilities

    def batches(self, link: str) -> bool:
        """Whether ``link`` carries many frames to one address in one go (``send_batch``)."""
        return link in self._batching

    def kind_of(self, link: str) -> str:
        return self.kinds[link]

    def options(self, hop: bytes) -> list[Candidate]:
        peer = self.peers.get(hop)
        if peer is None:
            return []
        return [Candidate(link, addr) for link in self.transports if (addr := peer.address(link)) is not None]

    def state(self, link: str, hop: bytes) -> LinkState:
        return self.health.state(link, hop.hex())

    def learn(
        self,
        node_id: bytes,
        link: str,
        address: str,
        name: str | None = None,
        *,
        stamped: int,
        vouched: bool = False,
    ) -> Learning | None:
        """``node_id`` signed a fresh frame, new to us, stamped ``stamped``, that reached us directly from
        ``address`` on ``link`` (``vouched``: the address is named by the node's signed card).

        One address per link, and a configured address always wins. A node that is no configured peer
        becomes one only when the caller names it (it is in the roster): what is learned stays bounded
        by the config and the roster, whatever arrives. When an address may move is
        ``hub.relay.learned_addresses``'s rule. None when nothing was considered (a configured address)."""
        peer = self.peers.get(node_id)
        if peer is None and name is not None:
            if len(self.peers) - self._configured >= MAX_LEARNED_PEERS:
                return self._count(Learning.FULL)
            log.info("learned neighbour %s (%s) on %s", name, node_id.hex(), link)
            peer = self.peers[node_id] = Peer(node_id, name, {}, {})
        if peer is None or peer.addresses.get(link):
            return None
        current = peer.learned.get(link)
        if current is None:
            peer.learned[link] = LearnedAddress(address, stamped)
            self._by_address[(link, address)] = node_id
            log.info("learned address of %s on %s: %s", peer.name, link, address)
            return self._count(Learning.NEW)
        old = current.address
        # the peer's own health, not an exercise's pretend failure of it
        working = self.health.entry(link, node_id.hex()).state is not LinkState.DOWN
        outcome = current.offer(address, stamped, vouched=vouched, working=working)
        if outcome is Learning.MOVED:
            self._moved(peer, link, old)
        elif outcome is Learning.HELD:
            log.warning(
                "%s signed a later frame from %s on %s, but its confirmed address %s still works: "
                "kept %s, the other is tried only if it fails",
                peer.name, address, link, old, old,
            )  # fmt: skip
        elif outcome is Learning.STALE:
            log.warning(
                "%s's frame came again from %s on %s, no later than the one from %s: address kept",
                peer.name, address, link, old,
            )  # fmt: skip
        return self._count(outcome)

    def _count(self, outcome: Learning) -> Learning:
        self.learning[outcome.value] += 1
        return outcome

    def _moved(self, peer: Peer, link: str, old: str) -> None:
        new = peer.learned[link].address
        self._by_address.pop((link, old), None)
        self._by_address[(link, new)] = peer.node_id
        log.info("learned address of %s on %s: %s (was %s)", peer.name, link, new, old)

    def _on_health(self, change: HealthChanged) -> None:
        """A learned address that went down gives way to the candidate held for it (a replaced radio)."""
        if change.peer is None or change.new is not LinkState.DOWN:
            return
        if self.health.simulated(change.link, change.peer) is not None:
            return  # an exercise's pretend failure moves no address
        peer = self.peers.get(bytes.fromhex(change.peer))
        learned = peer.learned.get(change.link) if peer is not None else None
        if peer is None or learned is None or peer.addresses.get(change.link):
            return
        old = learned.address
        if learned.promote() is not None:
            self._count(Learning.MOVED)
            self._moved(peer, change.link, old)

    def rename(self, old: bytes, new: bytes) -> bool:
        """The peer ``old`` now signs with the key of ``new`` (a root-approved key rotation): its addresses
        move over. False if ``old`` is no peer or ``new`` is one already."""
        peer = self.peers.get(old)
        if peer is None or new in self.peers:
            return False
        del self.peers[old]
        peer.node_id = new
        self.peers[new] = peer
        for key, node in self._by_address.items():
            if node == old:
                self._by_address[key] = new
        return True

    def address_of(self, node_id: bytes, link: str) -> str | None:
        """Where ``node_id`` is reached on ``link`` (configured, else learned), or None."""
        peer = self.peers.get(node_id)
        return peer.address(link) if peer is not None else None

    def peer_at(self, link: str, address: str) -> bytes | None:
        return self._by_address.get((link, address))

    async def send(
        self, link: str, address: str, wire: bytes, priority: int, *, account: Tally | None = None
    ) -> None:
        """Send an encoded frame, fragmented to the link's MTU; raises TransportError. What the link
        spends on it goes on ``account`` when given, else on the exercise it belongs to, if any."""
        transport = self.transports[link]
        with charged_to(account if account is not None else self.account(link, wire)):
            for piece in split(wire, transport.capabilities.mtu):
                await transport.send(address, piece, priority=priority)
        self.sent_bytes[link] += len(wire)

    async def send_batch(
        self, link: str, address: str, frames: Sequence[OutFrame]
    ) -> list[TransportError | None]:
        """Send encoded frames to one address, in one go where the link can (``batches``); each frame's
        outcome in order: None when sent, else the ``TransportError`` ``send`` would have raised for it.
        A frame that must be fragmented, or whose cost an exercise is charged, goes alone as ``send``."""
        transport = self.transports[link]
        outcomes: list[TransportError | None] = [None] * len(frames)
        alone = list(range(len(frames)))
        if isinstance(transport, SendsBatches) and link in self._batching:
            mtu = transport.capabilities.mtu
            together = [
                i
                for i, (wire, _) in enumerate(frames)
                if len(wire) <= mtu and self.account(link, wire) is None
            ]
            if together:
                sent = await transport.send_batch(address, [frames[i] for i in together])
                for i, error in zip(together, sent, strict=True):
                    outcomes[i] = error
                    if error is None:
                        self.sent_bytes[link] += len(frames[i][0])
                alone = sorted(set(alone).difference(together))
        for i in alone:
            wire, priority = frames[i]
            try:
                await self.send(link, address, wire, priority)
            except TransportError as exc:
                outcomes[i] = exc
        return outcomes

    async def probe_forever(self, interval: float) -> None:
        """Probe every (link, peer) pair, a round every ``interval`` seconds from the start of the last;
        never returns. A round that waited out a silent peer's deadline is followed at once by the next,
        so two failures in a row (down) take two deadlines, not two deadlines and two intervals."""
        loop = asyncio.get_running_loop()
        rounds = 0
        while True:
            rounds += 1
            started = loop.time()
            checks = []
            now = self.clock.monotonic()
            for peer in self.peers.values():
                for link, transport in self.transports.items():
                    address = peer.address(link)
                    if address is None:
                        continue
                    costly = transport.capabilities.cost is not Cost.FREE
                    healthy = self.health.state(link, peer.node_id.hex()) is LinkState.UP
                    if costly and healthy and rounds % 30 != 1:
                        continue  # a healthy radio link is probed rarely; a failing one every round
                    heard = self.health.entry(link, peer.node_id.hex()).last_success
                    if healthy and heard is not None and now - heard < interval:
                        self.probes_skipped += 1
                        continue  # traffic answered within the interval: a probe would say nothing new
                    checks.append(self._probe(link, transport, peer, address, interval))
            await asyncio.gather(*checks)
            await asyncio.sleep(max(0.0, interval - (loop.time() - started)))

    async def _probe(
        self, link: str, transport: Transport, peer: Peer, address: str, interval: float
    ) -> None:
        deadline = max(interval, 1.0)
        try:
            async with asyncio.timeout(deadline):
                await transport.probe(address)
        except (LinkDown, TimeoutError) as exc:
            # A TimeoutError has no text of its own: say what the silence was.
            why = (
                Reason(Why.PROBE_FAILED, str(exc))
                if str(exc)
                else Reason(Why.PROBE_SILENT, params={"seconds": f"{deadline:g}"})
            )
            self.health.failure(link, peer.node_id.hex(), self.clock.monotonic(), why)
        except BudgetExhausted:
            pass
        except TransportError as exc:
            self.health.failure(
                link, peer.node_id.hex(), self.clock.monotonic(), Reason(Why.PROBE_FAILED, str(exc))
            )
        else:
            self.health.success(link, peer.node_id.hex(), self.clock.monotonic(), Reason(Why.PROBE_ANSWERED))
