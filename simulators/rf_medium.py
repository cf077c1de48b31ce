"""A simulated LoRa channel shared by fake Meshtastic radios: who hears whom, loss, relaying and airtime.

The medium models, at the level of whole packets, what Beredt's LoRa link must survive:

* managed flooding: every node that hears a packet for the first time rebroadcasts it while its hop
  limit lasts (firmware ``FloodingRouter``), except the destination of a direct message; a relay's radio
  may alter what it rebroadcasts (``Listener.relay``: a traceroute records the hop);
* the originator hears its neighbours rebroadcast its own packet, which the firmware takes as an
  implicit ACK (``ReliableRouter::shouldFilterReceived``);
* independent loss per reception, ``lose_next`` for targeted losses, and partitions (an explicit "who
  hears whom" graph; by default everybody hears everybody);
* per-node time on air over a rolling hour against the EU 868 limit of 360 s (10 % duty cycle).

Time on air comes from Semtech's formula (SX1276 datasheet §4.1.1.7, application note AN1200.13) with
the modem presets of Meshtastic's radio-settings documentation, a 16-symbol preamble, explicit header
and CRC, and a 16-byte Meshtastic header in front of the encoded ``Data``. Delivery is immediate
(``hop_delay`` adds a pause per hop) so tests run in milliseconds while airtime is still accounted.
``quiet`` waits until nothing is on the air, which lets a radio decide "no answer came" without
guessing a timeout.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from meshtastic.protobuf import mesh_pb2

EU868_LIMIT = 360.0
"""Seconds of transmission per rolling hour on EU 868 (10 % duty cycle)."""
HOUR = 3600.0
MESH_HEADER = 16
"""Bytes of Meshtastic's on-air header before the encoded ``Data``."""
PREAMBLE_SYMBOLS = 16
PRESETS: dict[str, tuple[int, int, int]] = {
    # name: (spreading factor, bandwidth in Hz, coding rate 4/x)
    "SHORT_TURBO": (7, 500_000, 5),
    "SHORT_FAST": (7, 250_000, 5),
    "SHORT_SLOW": (8, 250_000, 5),
    "MEDIUM_FAST": (9, 250_000, 5),
    "MEDIUM_SLOW": (10, 250_000, 5),
    "LONG_FAST": (11, 250_000, 5),
    "LONG_MODERATE": (11, 125_000, 8),
    "LONG_SLOW": (12, 125_000, 8),
}
BROADCAST = 0xFFFFFFFF


def lora_time_on_air(length: int, preset: str) -> float:
    """Seconds a LoRa frame of ``length`` bytes occupies the channel (Semtech AN1200.13)."""
    sf, bandwidth, coding_rate = PRESETS[preset]
    symbol = (1 << sf) / bandwidth
    low_data_rate = 1 if symbol >= 0.016 else 0
    crc, implicit_header = 1, 0
    bits = 8 * length - 4 * sf + 28 + 16 * crc - 20 * implicit_header
    payload_symbols = 8 + max(math.ceil(bits / (4 * (sf - 2 * low_data_rate))) * coding_rate, 0)
    return (PREAMBLE_SYMBOLS + 4.25) * symbol + payload_symbols * symbol


class Listener(Protocol):
    """A node on the medium (a fake radio): it has a number, hears packets and may relay them."""

    node_num: int
    mute: bool
    """A hung radio: it hears nothing and relays nothing."""

    def hear(self, packet: mesh_pb2.MeshPacket) -> None: ...

    def relay(self, packet: mesh_pb2.MeshPacket) -> mesh_pb2.MeshPacket:
        """What this node rebroadcasts of ``packet`` (as heard), its hop limit already spent by one."""
        ...


class _Ledger:
    """Transmissions of one node in the last hour."""

    def __init__(self) -> None:
        self._sent: deque[tuple[float, float]] = deque()

    def used(self, now: float) -> float:
        while self._sent and self._sent[0][0] <= now - HOUR:
            self._sent.popleft()
        return sum(seconds for _, seconds in self._sent)

    def record(self, now: float, seconds: float) -> None:
        self._sent.append((now, seconds))

    def wait_for(self, now: float, seconds: float, limit: float) -> float:
        """Seconds until ``seconds`` more fit under ``limit``."""
        excess = self.used(now) + seconds - limit
        for at, spent in self._sent:
            if excess <= 0:
                break
            excess -= spent
            if excess <= 0:
                return max(at + HOUR - now, 0.0)
        return 0.0 if excess <= 0 else HOUR


class RFMedium:
    """The shared channel. ``loss`` is the probability that one reception of one transmission fails."""

    def __init__(
        self,
        *,
        loss: float = 0.0,
        seed: int | None = None,
        preset: str = "LONG_FAST",
        duty_cycle_limit: float = EU868_LIMIT,
        hop_delay: float = 0.0,
        retry_delay: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if preset not in PRESETS:
            raise ValueError(f"unknown modem preset {preset!r}; expected one of {', '.join(PRESETS)}")
        self.loss = loss
        self.preset = preset
        self.duty_cycle_limit = duty_cycle_limit
        self.hop_delay = hop_delay
        self.retry_delay = retry_delay
        """Pause a radio makes before retransmitting an unanswered packet, once the air is quiet."""
        self._clock = clock
        self._random = random.Random(seed)
        self._nodes: dict[int, Listener] = {}
        self._ledgers: dict[int, _Ledger] = {}
        self._hears: dict[int, set[int]] | None = None
        self._doomed: dict[tuple[int, int | None], int] = {}
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._floods: set[asyncio.Task[set[int] | None]] = set()
        self.transmissions = 0
        """Packets put on the air, relays, retransmissions and acks included."""
        self.lost = 0
        """Receptions that failed to random or targeted loss."""

    # -- membership and topology ------------------------------------------------------------------

    def join(self, node: Listener) -> None:
        self._nodes[node.node_num] = node

    def leave(self, node_num: int) -> None:
        self._nodes.pop(node_num, None)

    def node(self, node_num: int) -> Listener | None:
        """The node numbered ``node_num`` on this medium, if any."""
        return self._nodes.get(node_num)

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

    def lose_next(self, node_num: int, count: int = 1, *, port: int | None = None) -> None:
        """Nobody hears the next ``count`` transmissions of ``node_num`` (retries and relays included),
        or only of its packets on ``port`` (``ROUTING_APP``: its ACKs)."""
        self._doomed[node_num, port] = self._doomed.get((node_num, port), 0) + count

    def neighbours(self, node_num: int) -> list[int]:
        if self._hears is None:
            return [n for n in self._nodes if n != node_num]
        return [n for n in self._hears.get(node_num, ()) if n in self._nodes]

    # -- airtime ----------------------------------------------------------------------------------

    def airtime_of(self, packet: mesh_pb2.MeshPacket) -> float:
        return lora_time_on_air(min(255, MESH_HEADER + packet.decoded.ByteSize()), self.preset)

    def airtime_used(self, node_num: int) -> float:
        """Seconds ``node_num`` transmitted in the last hour."""
        return self._ledger(node_num).used(self._clock())

    def charge(self, node_num: int, seconds: float) -> None:
        """Account ``seconds`` of transmission to a node, as if it had been busy (for tests and demos)."""
        self._ledger(node_num).record(self._clock(), seconds)

    def silent_minutes(self, node_num: int, packet: mesh_pb2.MeshPacket) -> int:
        """Whole minutes until ``node_num`` may send ``packet`` (the figure in the firmware's notice)."""
        wait = self._ledger(node_num).wait_for(self._clock(), self.airtime_of(packet), self.duty_cycle_limit)
        return int(-(-wait // 60))

    def _ledger(self, node_num: int) -> _Ledger:
        return self._ledgers.setdefault(node_num, _Ledger())

    def _spend(self, node_num: int, airtime: float) -> bool:
        """Account one transmission if the node's duty cycle allows it; False if the law forbids it."""
        ledger, now = self._ledger(node_num), self._clock()
        if ledger.used(now) + airtime > self.duty_cycle_limit:
            return False
        ledger.record(now, airtime)
        self.transmissions += 1
        return True

    # -- sending ----------------------------------------------------------------------------------

    def launch(self, origin: int, packet: mesh_pb2.MeshPacket) -> asyncio.Task[set[int] | None]:
        """Start flooding ``packet`` from ``origin``; the air counts as busy from this call on."""
        self._active += 1
        self._idle.clear()
        task = asyncio.create_task(self._counted(origin, packet), name=f"rf-flood-{origin:08x}")
        self._floods.add(task)
        task.add_done_callback(self._floods.discard)
        return task

    async def flood(self, origin: int, packet: mesh_pb2.MeshPacket) -> set[int] | None:
        """Managed flooding from ``origin``: the nodes that received it, or None if it may not send."""
        return await self.launch(origin, packet)

    async def quiet(self) -> None:
        """Wait until no packet is on the air (nor queued by a node that just heard one)."""
        await self._idle.wait()

    async def _counted(self, origin: int, packet: mesh_pb2.MeshPacket) -> set[int] | None:
        try:
            return await self._flood(origin, packet)
        finally:
            self._active -= 1
            if self._active == 0:
                self._idle.set()

    async def _flood(self, origin: int, packet: mesh_pb2.MeshPacket) -> set[int] | None:
        if not self._spend(origin, self.airtime_of(packet)):
            return None
        received = {origin}
        frontier = [(origin, packet)]
        while frontier:
            await asyncio.sleep(self.hop_delay)  # each hop takes its time on the air
            onward: list[tuple[int, mesh_pb2.MeshPacket]] = []
            for sender, sent in frontier:
                if sender != origin and not self._spend(sender, self.airtime_of(sent)):
                    continue  # a relay over its duty cycle stays silent
                if self._doom(sender, sent):
                    continue
                for listener in self.neighbours(sender):
                    if listener in received and listener != origin:
                        continue
                    if self._random.random() < self.loss:
                        self.lost += 1
                        continue
                    heard = self._deliver(listener, sent)
                    if listener == origin or heard is None:
                        continue  # the originator heard a relay repeat its packet: an implicit ACK
                    received.add(listener)
                    if sent.hop_limit > 0 and listener != packet.to:
                        # The destination of a direct message keeps it; everybody else passes it on.
                        onward.append((listener, self._nodes[listener].relay(heard)))
            frontier = onward
        return received - {origin}

    def _doom(self, sender: int, packet: mesh_pb2.MeshPacket) -> bool:
        """Whether this transmission is one ``lose_next`` asked to lose (and count it)."""
        for key in ((sender, None), (sender, int(packet.decoded.portnum))):
            if self._doomed.get(key, 0) > 0:
                self._doomed[key] -= 1
                self.lost += 1
                return True
        return False

    def _deliver(self, listener: int, packet: mesh_pb2.MeshPacket) -> mesh_pb2.MeshPacket | None:
        node = self._nodes.get(listener)
        if node is None or node.mute:
            return None
        heard = mesh_pb2.MeshPacket()
        heard.CopyFrom(packet)
        heard.rx_time = int(time.time())
        heard.rx_snr = round(self._random.uniform(-7.0, 9.0), 2)
        heard.rx_rssi = self._random.randint(-120, -60)
        node.hear(heard)
        return heard
