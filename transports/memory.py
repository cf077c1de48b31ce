"""An in-memory link: a real transport for tests, demos and one-process simulations.

A ``MemoryMedium`` is a shared ether where each ``MemoryTransport`` has an address. It models what the
router must survive on real links: an MTU, latency, random loss, a slow radio (``rate``: a send holds
the sender's attachment for as long as its bytes take on air; ``cost``: metered, so the router sends one
frame at a time over it, as over LoRa or SINE), unplugging (a node's link goes
down, sends fail with ``LinkDown`` and frames to it vanish) and plugging back in, and silence (a node
that answers nothing: frames to it vanish without an error and probes of it never return). Media are found by
name so several hubs in one process, each opened from config, meet on the same medium.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Mapping
from typing import Any

from hub.core.errors import FrameTooLarge, LinkDown, TransportClosed
from hub.core.metering import AIRTIME, charge
from hub.core.options import Options
from hub.core.transport import (
    BROADCAST_ADDRESS,
    Capabilities,
    Cost,
    LinkChanged,
    Received,
    TransportContext,
    TransportEvent,
)

_MEDIA: dict[str, MemoryMedium] = {}


class MemoryMedium:
    """The shared ether. ``loss`` is a probability in [0, 1); ``latency`` is seconds per delivery;
    ``rate`` is bytes per second on air (None: no limit); ``cost`` is what its links tell the policy;
    ``link_ack`` says its links confirm delivery themselves, as a LoRa routing ack does."""

    def __init__(
        self,
        *,
        mtu: int = 4096,
        latency: float = 0.0,
        loss: float = 0.0,
        rate: float | None = None,
        seed: int | None = None,
        cost: Cost = Cost.FREE,
        link_ack: bool = False,
    ) -> None:
        self.mtu = mtu
        self.cost = cost
        self.link_ack = link_ack
        self.latency = latency
        self.loss = loss
        self.rate = rate
        self._random = random.Random(seed)
        self._nodes: dict[str, MemoryTransport] = {}
        self._silent: dict[str, asyncio.Event] = {}  # set when the address speaks again
        self.delivered = 0
        self.lost = 0

    @classmethod
    def named(cls, name: str, **settings: Any) -> MemoryMedium:
        """The process-wide medium called ``name``, created with ``settings`` on first use."""
        medium = _MEDIA.get(name)
        if medium is None:
            medium = _MEDIA[name] = cls(**settings)
        return medium

    def attach(self, address: str, name: str = "memory") -> MemoryTransport:
        if address in self._nodes and not self._nodes[address].closed:
            raise ValueError(f"address {address!r} is already on this medium")
        node = MemoryTransport(self, address, name)
        self._nodes[address] = node
        return node

    def unplug(self, address: str) -> None:
        self._nodes[address].set_plugged(False)

    def plug(self, address: str) -> None:
        self._nodes[address].set_plugged(True)

    def silence(self, address: str) -> None:
        """From now on nothing reaches ``address`` and nothing tells its senders so (see the module)."""
        self._silent.setdefault(address, asyncio.Event())

    def unsilence(self, address: str) -> None:
        voice = self._silent.pop(address, None)
        if voice is not None:
            voice.set()

    async def answer(self, dest: str) -> None:
        """Return at once, or, while ``dest`` is silent, only once it speaks again."""
        voice = self._silent.get(dest)
        if voice is not None:
            await voice.wait()

    def _deliver(self, source: str, dest: str, data: bytes) -> None:
        targets = (
            [n for a, n in self._nodes.items() if a != source]
            if dest == BROADCAST_ADDRESS
            else [self._nodes[dest]]
        )
        for node in targets:
            if (
                not node.plugged
                or node.closed
                or node.address in self._silent
                or self._random.random() < self.loss
            ):
                self.lost += 1
                continue
            self.delivered += 1
            if self.latency:
                asyncio.get_running_loop().call_later(self.latency, node.inject, source, data)
            else:
                node.inject(source, data)

    def reachable(self, dest: str) -> bool:
        node = self._nodes.get(dest)
        return node is not None and node.plugged and not node.closed


class MemoryTransport:
    """One node's attachment to a ``MemoryMedium``."""

    def __init__(self, medium: MemoryMedium, address: str, name: str) -> None:
        self.name = name
        self.address = address
        self.capabilities = Capabilities(
            mtu=medium.mtu,
            link_ack=medium.link_ack,
            broadcast=True,
            bytes_per_second=medium.rate or 1_000_000.0,
            cost=medium.cost,
        )
        self._medium = medium
        self._air = asyncio.Lock()
        """One transmission at a time, as on a radio; only held when the medium has a ``rate``."""
        self.on_air = 0
        """Sends waiting for or holding the air (counted only on a medium with a ``rate``)."""
        self._queue: asyncio.Queue[TransportEvent | None] = asyncio.Queue(maxsize=10_000)
        self.plugged = True
        self.closed = False

    def set_plugged(self, plugged: bool) -> None:
        if plugged != self.plugged:
            self.plugged = plugged
            self._put(LinkChanged(up=plugged, reason="plugged in" if plugged else "unplugged"))

    def inject(self, source: str, data: bytes) -> None:
        self._put(Received(source=source, data=data))

    def _put(self, event: TransportEvent | None) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:  # a receiver that stopped reading loses frames, as a radio would
            self._medium.lost += 1

    async def send(self, dest: str, data: bytes, *, priority: int = 1) -> None:
        if self.closed:
            raise TransportClosed("send after close", transport=self.name, peer=dest)
        if len(data) > self.capabilities.mtu:
            raise FrameTooLarge(
                f"{len(data)} bytes > MTU {self.capabilities.mtu}", transport=self.name, peer=dest
            )
        if not self.plugged:
            raise LinkDown("unplugged", transport=self.name, peer=dest)
        if dest != BROADCAST_ADDRESS and not self._medium.reachable(dest):
            raise LinkDown("peer not on the medium", transport=self.name, peer=dest)
        if self._medium.rate is not None:
            self.on_air += 1
            try:
                async with self._air:
                    await asyncio.sleep(len(data) / self._medium.rate)
                    charge(AIRTIME, len(data) / self._medium.rate)  # a slow radio's time on air, metered
            finally:
                self.on_air -= 1
        self._medium._deliver(self.address, dest, data)

    async def events(self) -> AsyncIterator[TransportEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    async def probe(self, dest: str) -> None:
        if self.closed:
            raise TransportClosed("probe after close", transport=self.name, peer=dest)
        if not self.plugged or not self._medium.reachable(dest):
            raise LinkDown("peer unreachable", transport=self.name, peer=dest)
        await self._medium.answer(dest)

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)


async def open_transport(name: str, options: Mapping[str, Any], ctx: TransportContext) -> MemoryTransport:
    """``[links.<name>] kind = "memory"`` with ``medium`` (a shared name), ``address``, ``mtu``, ``latency``
    and ``loss``."""
    table = Options(options, f"links.{name}", known=("kind", "medium", "address", "mtu", "latency", "loss"))
    settings: dict[str, Any] = {}
    if "mtu" in table:
        settings["mtu"] = table.integer("mtu", 0, low=1)
    if "latency" in table:
        settings["latency"] = table.number("latency", 0.0, low=0)
    if "loss" in table:
        settings["loss"] = table.number("loss", 0.0, low=0, high=1)
    medium = MemoryMedium.named(table.text("medium", "default"), **settings)
    return medium.attach(table.text("address", ctx.node_id), name)
