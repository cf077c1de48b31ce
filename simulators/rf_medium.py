"""A simulated LoRa channel shared by fake Meshtastic radios: who hears whom, loss, relaying and airtime.

The medium models what Beredt's LoRa link must survive, at the level of whole packets: managed flooding
(every node that hears a packet for the first time rebroadcasts it while its hop limit lasts, as the
firmware's ``FloodingRouter`` does), independent loss per reception, partitions (an explicit "who hears
whom" graph; by default everybody hears everybody), the originator's retransmissions of a ``want_ack``
direct message (three, as the firmware's ``NUM_RELIABLE_RETX``) and per-node time on air accounted with
``transports.lora_airtime`` against the EU 868 limit of 360 s per rolling hour. Delivery is immediate
(``hop_delay`` adds a pause per hop for time on the air) so tests run in milliseconds while airtime is
still accounted.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from meshtastic.protobuf import mesh_pb2, portnums_pb2

from hub.core.frame import Priority
from transports.lora_airtime import EU868_HOURLY_LIMIT, AirtimeBudget, ModemPreset, time_on_air

NUM_RELIABLE_RETX = 3
"""Retransmissions the firmware makes of an unacknowledged ``want_ack`` packet before giving up."""
RouteError = mesh_pb2.Routing.Error


class Listener(Protocol):
    """A node on the medium (a fake radio): it has a number and hears packets."""

    node_num: int

    def hear(self, packet: mesh_pb2.MeshPacket) -> None: ...


class RFMedium:
    """The shared channel. ``loss`` is the probability that one reception of one transmission fails."""

    def __init__(
        self,
        *,
        loss: float = 0.0,
        seed: int | None = None,
        preset: ModemPreset = ModemPreset.LONG_FAST,
        duty_cycle_limit: float = EU868_HOURLY_LIMIT,
        hop_delay: float = 0.0,
        retry_delay: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.loss = loss
        self.preset = preset
        self.duty_cycle_limit = duty_cycle_limit
        self.hop_delay = hop_delay
        self.retry_delay = retry_delay
        self._clock = clock
        self._random = random.Random(seed)
        self._nodes: dict[int, Listener] = {}
        self._budgets: dict[int, AirtimeBudget] = {}
        self._hears: dict[int, set[int]] | None = None
        self._doomed: dict[int, int] = {}
        self.transmissions = 0
        """Packets put on the air, relays, retransmissions and acks included."""
        self.lost = 0
        """Receptions that failed to random loss."""

    # -- membership and topology ------------------------------------------------------------------

    def join(self, node: Listener) -> None:
        self._nodes[node.node_num] = node
        self._budgets.setdefault(node.node_num, AirtimeBudget(self.duty_cycle_limit))

    def leave(self, node_num: int) -> None:
        self._nodes.pop(node_num, None)

    def node_nums(self) -> list[int]:
        return sorted(self._nodes)

    def partition(self, *groups: Iterable[int]) -> None:
        """Only nodes within the same group hear each other from now on."""
        hears: dict[int, set[int]] = {}
        for group in groups:
            members = set(group)
            for num in members:
                hears.setdefault(num, set()).update(members - {num})
        self._hears = hears

    def connect(self, links: Iterable[tuple[int, int]]) -> None:
        """Exactly these (symmetric) pairs hear each other: a chain a-b-c makes b a relay."""
        hears: dict[int, set[int]] = {}
        for a, b in links:
            hears.setdefault(a, set()).add(b)
            hears.setdefault(b, set()).add(a)
        self._hears = hears

    def heal(self) -> None:
        """Everybody hears everybody again."""
        self._hears = None

    def lose_next(self, node_num: int, count: int = 1) -> None:
        """Nobody hears the next ``count`` transmissions of ``node_num`` (retries and relays included)."""
        self._doomed[node_num] = self._doomed.get(node_num, 0) + count

    def neighbours(self, node_num: int) -> list[int]:
        if self._hears is None:
            return [n for n in self._nodes if n != node_num]
        return [n for n in self._hears.get(node_num, ()) if n in self._nodes]

    # -- airtime ----------------------------------------------------------------------------------

    def airtime_used(self, node_num: int) -> float:
        """Seconds ``node_num`` transmitted in the last hour."""
        return self._budget(node_num).used(self._clock())

    def charge(self, node_num: int, seconds: float) -> None:
        """Account ``seconds`` of transmission to a node, as if it had been busy (for tests and demos)."""
        self._budget(node_num).record(self._clock(), seconds)

    def silent_minutes(self, node_num: int, packet: mesh_pb2.MeshPacket) -> int:
        """Whole minutes until ``node_num`` may send ``packet`` under its duty cycle (firmware's notice)."""
        budget, airtime = self._budget(node_num), self.airtime_of(packet)
        wait = budget.decide(self._clock(), airtime, Priority.URGENT).retry_after
        return int(-(-wait // 60))

    def airtime_of(self, packet: mesh_pb2.MeshPacket) -> float:
        return time_on_air(min(255, 16 + packet.decoded.ByteSize()), self.preset)

    def _budget(self, node_num: int) -> AirtimeBudget:
        return self._budgets.setdefault(node_num, AirtimeBudget(self.duty_cycle_limit))

    def _spend(self, node_num: int, airtime: float) -> bool:
        """Account one transmission if the node's duty cycle allows it; False if the law forbids it."""
        budget = self._budget(node_num)
        now = self._clock()
        if budget.used(now) + airtime > self.duty_cycle_limit:
            return False
        budget.record(now, airtime)
        self.transmissions += 1
        return True

    # -- sending ----------------------------------------------------------------------------------

    async def transmit(self, origin: int, packet: mesh_pb2.MeshPacket) -> int:
        """Put ``packet`` from ``origin`` on the air; returns a ``Routing.Error`` value for its sender.

        A broadcast or a packet without ``want_ack`` is flooded once and returns ``NONE``. A direct
        message with ``want_ack`` is retransmitted until the destination's ACK (itself a flooded packet)
        gets back, then ``NONE``; ``MAX_RETRANSMIT`` after the last retry, ``DUTY_CYCLE_LIMIT`` when the
        originator may not transmit at all. The ACK reaches the originator's host through ``hear``.
        """
        airtime = self.airtime_of(packet)
        if self._budget(origin).used(self._clock()) + airtime > self.duty_cycle_limit:
            return int(RouteError.DUTY_CYCLE_LIMIT)
        if not packet.want_ack or packet.to == 0xFFFFFFFF:
            await self._flood(origin, packet)
            return int(RouteError.NONE)
        for attempt in range(1 + NUM_RELIABLE_RETX):
            if attempt:
                await asyncio.sleep(self.retry_delay)
            reached = await self._flood(origin, packet)
            if reached is None:
                return int(RouteError.DUTY_CYCLE_LIMIT)
            if packet.to in reached:
                ack_reached = await self._flood(packet.to, self._ack_for(packet))
                if ack_reached is not None and origin in ack_reached:
                    return int(RouteError.NONE)
        return int(RouteError.MAX_RETRANSMIT)

    def _ack_for(self, packet: mesh_pb2.MeshPacket) -> mesh_pb2.MeshPacket:
        ack = mesh_pb2.MeshPacket()
        setattr(ack, "from", packet.to)
        ack.to = getattr(packet, "from")
        ack.id = self._random.getrandbits(32) or 1
        ack.hop_limit = ack.hop_start = packet.hop_start or 3
        ack.priority = mesh_pb2.MeshPacket.Priority.ACK
        ack.decoded.portnum = portnums_pb2.PortNum.ROUTING_APP
        ack.decoded.request_id = packet.id
        ack.decoded.payload = mesh_pb2.Routing(error_reason=RouteError.NONE).SerializeToString()
        return ack

    async def _flood(self, origin: int, packet: mesh_pb2.MeshPacket) -> set[int] | None:
        """Managed flooding from ``origin``; the set of nodes that received it (None: origin may not send)."""
        airtime = self.airtime_of(packet)
        if not self._spend(origin, airtime):
            return None
        received = {origin}
        frontier = [(origin, packet.hop_limit)]
        first = True
        while frontier:
            await asyncio.sleep(self.hop_delay)  # each hop takes its time on the air
            next_frontier: list[tuple[int, int]] = []
            for sender, hops_left in frontier:
                if not first and not self._spend(sender, airtime):
                    continue  # a relay over its duty cycle stays silent
                if self._doomed.get(sender, 0) > 0:
                    self._doomed[sender] -= 1
                    self.lost += 1
                    continue
                for listener in self.neighbours(sender):
                    if listener in received:
                        continue
                    if self._random.random() < self.loss:
                        self.lost += 1
                        continue
                    received.add(listener)
                    self._deliver(listener, packet, hops_left)
                    if hops_left > 0 and listener != packet.to:
                        # The destination of a direct message keeps it; everybody else passes it on.
                        next_frontier.append((listener, hops_left - 1))
            frontier = next_frontier
            first = False
        return received - {origin}

    def _deliver(self, listener: int, packet: mesh_pb2.MeshPacket, hops_left: int) -> None:
        node = self._nodes.get(listener)
        if node is None:
            return
        heard = mesh_pb2.MeshPacket()
        heard.CopyFrom(packet)
        heard.hop_limit = hops_left
        heard.rx_time = int(time.time())
        heard.rx_snr = round(self._random.uniform(-7.0, 9.0), 2)
        heard.rx_rssi = self._random.randint(-120, -60)
        node.hear(heard)
