"""A fake Meshtastic radio that the real ``meshtastic`` library and CLI can talk to, over TCP or a pty.

It speaks the device side of the client API (``simulators.meshtastic_framing``, one
``simulators.meshtastic_host`` session per connection) with the protobuf classes the ``meshtastic``
package ships, makes its own packets as the firmware does (``simulators.meshtastic_packets``), and
behaves as the firmware's routers and modules do:

* the config handshake in ``PhoneAPI`` order: ``my_info``, own ``node_info``, ``metadata``, eight
  channels, config, module config, the other nodes, ``config_complete_id``;
* each packet from the host is confirmed with ``queueStatus``; a packet for the radio itself (the
  library's admin requests) is answered locally and never goes on the air (``AdminModule``);
* ``ReliableRouter``: a ``want_ack`` packet is retransmitted (three times) until an answer comes; a
  neighbour heard rebroadcasting it stops the retransmissions and the host gets an *implicit ACK* (a
  routing packet with ``error_reason`` NONE whose ``from`` is this radio); the destination's real ACK
  (``from`` the destination) follows when it arrives; after the last retry ``MAX_RETRANSMIT``;
* the destination of a ``want_ack`` packet ACKs it (again for a repeat, since the first ACK may have been
  lost), unless a module replies, since a reply carrying ``request_id`` is the ACK;
* requests with ``want_response`` are answered (traceroute, position, telemetry, node info); relays
  record themselves in a traceroute;
* ``DUTY_CYCLE_LIMIT`` with the firmware's notice when the node's rolling hour is spent, ``TOO_LARGE``
  above the 233-byte ``Data`` payload, or when the encoded ``Data`` with the header (and PKI's 12 bytes)
  does not fit one 255-byte LoRa packet (``perhapsEncode``).

``mute`` hangs the radio with its cable in (a hung firmware, or a dead PA as far as the mesh can tell):
the TCP connection or the pty stays open and every byte from the host is read, but nothing is acted
on, nothing goes on the air, nothing heard is passed on and nothing at all comes back to the host
(no ``queueStatus``, no routing answer, no config), until ``mute`` is cleared.

``unplug``/``plug`` pull and reinsert the cable (TCP server down, or the pty closed; the pty, served by
the shared ``simulators.pty_device``, is reached through a stable symlink that comes back with the
cable, as udev's ``/dev/serial/by-id`` names do).

Run a small mesh for demos: ``python -m simulators.meshtastic_radio --tcp 4403 --node-num 1
--count 3`` serves three radios on ports 4403-4405 that hear each other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
from collections import deque
from collections.abc import Callable
from pathlib import Path

from meshtastic.protobuf import admin_pb2, mesh_pb2

from hub.core.tasks import cancel_and_wait
from simulators.meshtastic_framing import frame
from simulators.meshtastic_host import HostCable, HostSession
from simulators.meshtastic_node import ANSWERED_PORTS, NodeSettings, record_hop
from simulators.meshtastic_packets import (
    BROADCAST_NUM,
    PortNum,
    duty_cycle_notice,
    node_info,
    own_position,
    reply,
    routing,
    routing_to_host,
)
from simulators.meshtastic_pki import (
    forged_dm,
    mark_bitfield,
    new_public_key,
    open_incoming,
    seal_outgoing,
    too_large,
)
from simulators.rf_medium import RFMedium

TX_QUEUE_LEN = 16
RETRANSMISSIONS = 3
"""``NUM_RELIABLE_RETX`` less the first transmission."""
QUIET_WAIT = 2.0
"""Longest a radio waits for the air to fall quiet before it decides an answer is not coming."""
RouteError = mesh_pb2.Routing.Error


class FakeMeshtasticRadio:
    """One fake radio, numbered ``node_num`` on ``medium``."""

    def __init__(
        self,
        node_num: int,
        medium: RFMedium,
        *,
        long_name: str | None = None,
        hop_limit: int = 3,
        pki: bool = True,
    ) -> None:
        if not 0 < node_num < BROADCAST_NUM:
            raise ValueError(f"node number must be 1..0xfffffffe, not {node_num}")
        self.node_num = node_num
        self.medium = medium
        self.settings = NodeSettings(
            node_num, long_name or f"Beredt sim {node_num:08x}", preset=medium.preset, hop_limit=hop_limit
        )
        self.public_key = new_public_key() if pki else None
        """This node's PKI public key (``simulators.meshtastic_pki``); None: firmware without PKI."""
        if self.public_key is not None:
            self.settings.owner.public_key = self.public_key
        self.node_keys: dict[int, bytes] = {}
        """Keys this node's database holds that differ from the nodes' own (a stale or planted key)."""
        self.from_host: list[mesh_pb2.MeshPacket] = []
        """Every packet the host asked this radio to put on the air, in order (for test assertions)."""
        self.on_air: dict[int, int] = {}
        """How many times each packet id from the host went on the air (retransmissions show here)."""
        self.implicit_acks = 0
        """Implicit ACKs this radio generated for its host (a neighbour heard repeating our packet)."""
        self.config_delay = 0.0
        """Seconds the radio takes to answer the config handshake (a big node DB makes it slow)."""
        self._ids = random.Random(node_num)
        self._watchers: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._seen: deque[tuple[int, int]] = deque(maxlen=256)
        self._local_ids: deque[int] = deque(maxlen=TX_QUEUE_LEN)
        self._pending: dict[int, asyncio.Event] = {}
        """Our ``want_ack`` packets waiting for an answer, by id (the firmware's retransmission list)."""
        self._tx_queue: asyncio.Queue[mesh_pb2.MeshPacket] = asyncio.Queue(maxsize=TX_QUEUE_LEN)
        self._tx_task: asyncio.Task[None] | None = None
        self.cable = HostCable(self._on_host_bytes, self._changed)
        self.mute = False
        """Hung with the cable in: reads everything, does and says nothing (see the module)."""
        medium.join(self)

    @property
    def user_id(self) -> str:
        return f"!{self.node_num:08x}"

    @property
    def long_name(self) -> str:
        return str(self.settings.owner.long_name)

    @property
    def hop_limit(self) -> int:
        return self.settings.hop_limit

    @property
    def plugged(self) -> bool:
        return self.cable.plugged

    @property
    def host_connections(self) -> int:
        """Host connections open now (TCP clients, or 1 for a plugged pty)."""
        return len(self.cable.sessions)

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds after a host connects, disconnects or sends (caller bounds it)."""
        if condition():
            return
        entry = (condition, asyncio.get_running_loop().create_future())
        self._watchers.append(entry)
        try:
            await entry[1]
        finally:
            self._watchers.remove(entry)

    async def packets_from_host(self, count: int) -> list[mesh_pb2.MeshPacket]:
        """Wait until the host has handed over ``count`` packets (the caller bounds the wait)."""
        await self.wait_until(lambda: len(self.from_host) >= count)
        return self.from_host[:count]

    def reboot(self) -> None:
        """Tell the hosts the radio rebooted, as the firmware does after a crash or a config change."""
        message = frame(mesh_pb2.FromRadio(rebooted=True).SerializeToString())
        for session in self.cable.sessions:
            session.configured = False
            session.write(message)

    def _changed(self) -> None:
        for condition, future in self._watchers:
            if not future.done() and condition():
                future.set_result(None)

    # -- serving ----------------------------------------------------------------------------------

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve the stream protocol on TCP like a network radio; returns the bound port."""
        port = await self.cable.start_tcp(host, port)
        self._start_tx()
        return port

    async def start_pty(self, link: Path) -> Path:
        """Serve over a new pty reachable as the symlink ``link`` (what the host opens); returns it."""
        self.cable.start_pty(link)
        self._start_tx()
        return link

    async def unplug(self) -> None:
        """Pull the cable: the TCP server and its connections close, or the pty goes away."""
        await self.cable.unplug()

    async def plug(self) -> None:
        """Put the cable back: the same TCP port or the same symlink path serves again."""
        await self.cable.plug()

    async def aclose(self) -> None:
        """Unplug for good and stop the transmitter; idempotent."""
        await self.unplug()
        await cancel_and_wait(self._tx_task)
        self._tx_task = None
        self.medium.leave(self.node_num)

    def _start_tx(self) -> None:
        if self._tx_task is None:
            self._tx_task = asyncio.create_task(self._transmitter(), name=f"fake-radio-tx-{self.user_id}")

    # -- host protocol ------------------------------------------------------------------------------

    def _on_host_bytes(self, session: HostSession, data: bytes) -> None:
        if self.mute:
            return  # read off the wire and lost
        for payload in session.reader.feed(data):
            self._on_to_radio(session, payload)

    def _on_to_radio(self, session: HostSession, payload: bytes) -> None:
        to_radio = mesh_pb2.ToRadio()
        try:
            to_radio.ParseFromString(payload)
        except Exception:  # protobuf raises its own DecodeError; a radio ignores garbage
            return
        match to_radio.WhichOneof("payload_variant"):
            case "want_config_id":
                self._send_config(session, to_radio.want_config_id)
            case "packet":
                self._accept_packet(session, to_radio.packet)
            case "disconnect":
                session.configured = False
            case _:
                pass  # heartbeats and the rest need no answer

    def _send_config(self, session: HostSession, config_id: int) -> None:
        settings = self.settings
        out: list[mesh_pb2.FromRadio] = [
            mesh_pb2.FromRadio(my_info=mesh_pb2.MyNodeInfo(my_node_num=self.node_num, min_app_version=30200)),
            mesh_pb2.FromRadio(node_info=settings.node_info()),
            mesh_pb2.FromRadio(metadata=settings.metadata()),
            *settings.handshake_parts(),
        ]
        # Like a radio that has been on the air a while, it knows the other nodes of the mesh.
        out += [
            mesh_pb2.FromRadio(node_info=node_info(num, f"Beredt sim {num:08x}", self.known_key(num)))
            for num in self.medium.node_nums()
            if num != self.node_num
        ]
        out.append(mesh_pb2.FromRadio(config_complete_id=config_id))
        frames = b"".join(frame(message.SerializeToString()) for message in out)
        if self.config_delay > 0:
            asyncio.get_running_loop().call_later(self.config_delay, self._answer_config, session, frames)
        else:
            self._answer_config(session, frames)

    def _answer_config(self, session: HostSession, frames: bytes) -> None:
        if session in self.cable.sessions:  # the host may have given up waiting and gone
            session.configured = True
            session.write(frames)

    def _accept_packet(self, session: HostSession, packet: mesh_pb2.MeshPacket) -> None:
        # The library resends a packet whose queueStatus it has not seen yet: send each id once.
        local = packet.to == self.node_num
        recent = self._local_ids if local else [p.id for p in self.from_host[-TX_QUEUE_LEN:]]
        duplicate = packet.id in recent
        queued = duplicate or local or self._enqueue(packet)
        status = mesh_pb2.QueueStatus(
            res=0 if queued else 1,
            free=TX_QUEUE_LEN - self._tx_queue.qsize(),
            maxlen=TX_QUEUE_LEN,
            mesh_packet_id=packet.id,
        )
        session.write(frame(mesh_pb2.FromRadio(queueStatus=status).SerializeToString()))
        if local and not duplicate:
            self._local_ids.append(packet.id)
            self._handle_local(packet)

    def _handle_local(self, packet: mesh_pb2.MeshPacket) -> None:
        """A packet from the host to this very node (the library's admin requests): answered here."""
        setattr(packet, "from", self.node_num)
        answer = None
        if packet.decoded.portnum == PortNum.ADMIN_APP:
            with contextlib.suppress(Exception):  # a malformed admin message is ignored, as the firmware does
                answer = self.settings.admin(admin_pb2.AdminMessage.FromString(packet.decoded.payload))
        if answer is not None:
            admin = answer.SerializeToString()
            self._to_host(reply(packet, self.node_num, self._new_id(), PortNum.ADMIN_APP, admin, hops=0))
        elif packet.want_ack:
            self._routing_to_host(packet.id, RouteError.NONE)

    def known_key(self, node_num: int) -> bytes | None:
        """The public key this node's database holds for ``node_num`` (learnt from its node info)."""
        if node_num in self.node_keys:
            return self.node_keys[node_num]
        return getattr(self.medium.node(node_num), "public_key", None)

    def send_forged(self, claimed_from: int, to: int, port: int, payload: bytes) -> None:
        """Put on the air a direct message that claims to come from ``claimed_from`` (a spoofer)."""
        assert self.public_key is not None, "a forger needs a key pair of its own"
        self.medium.launch(self.node_num, forged_dm(claimed_from, to, port, payload, self.public_key))

    def _enqueue(self, packet: mesh_pb2.MeshPacket) -> bool:
        setattr(packet, "from", self.node_num)
        seal_outgoing(packet, self.public_key, self.known_key(packet.to))
        mark_bitfield(packet)
        packet.hop_limit = packet.hop_limit or self.hop_limit
        if packet.want_ack and packet.to == BROADCAST_NUM:
            # Someone must rebroadcast a broadcast for its implicit ACK (ReliableRouter::send).
            packet.hop_limit = max(packet.hop_limit, 1)
        packet.hop_start = packet.hop_limit
        try:
            self._tx_queue.put_nowait(packet)
        except asyncio.QueueFull:
            return False
        self.from_host.append(packet)
        self._changed()
        return True

    # -- ReliableRouter ---------------------------------------------------------------------------

    async def _transmitter(self) -> None:
        while True:
            packet = await self._tx_queue.get()
            if self.mute:
                continue  # queued before the hang: never goes on the air, never reported
            if len(packet.decoded.payload) > mesh_pb2.Constants.DATA_PAYLOAD_LEN or too_large(packet):
                self._report(packet, RouteError.TOO_LARGE)
                continue
            await self._send_reliably(packet)

    async def _send_reliably(self, packet: mesh_pb2.MeshPacket) -> None:
        """Transmit, and for ``want_ack`` retransmit until answered; tell the host how it ended."""
        if not packet.want_ack:
            if await self.medium.flood(self.node_num, packet) is None:
                self._refuse_for_duty_cycle(packet)
            return
        answered = self._pending[packet.id] = asyncio.Event()
        try:
            for attempt in range(1 + RETRANSMISSIONS):
                if attempt:
                    await asyncio.sleep(self.medium.retry_delay)
                if answered.is_set() or self.mute:
                    return
                self.on_air[packet.id] = self.on_air.get(packet.id, 0) + 1
                if await self.medium.flood(self.node_num, packet) is None:
                    self._refuse_for_duty_cycle(packet)
                    return
                # Whatever our packet set off (relays, the ACK, a reply) is over once the air is quiet.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(QUIET_WAIT):
                        await self.medium.quiet()
            if not answered.is_set():
                self._report(packet, RouteError.MAX_RETRANSMIT)
        finally:
            self._pending.pop(packet.id, None)

    def _refuse_for_duty_cycle(self, packet: mesh_pb2.MeshPacket) -> None:
        minutes = self.medium.silent_minutes(self.node_num, packet)
        self._to_host_message(duty_cycle_notice(packet.id, minutes))
        if packet.want_ack:
            self._report(packet, RouteError.DUTY_CYCLE_LIMIT)

    def _report(self, packet: mesh_pb2.MeshPacket, error: int) -> None:
        """Tell the host that ``packet`` failed with ``error``, as a locally generated routing NAK."""
        self._routing_to_host(packet.id, error)

    def _routing_to_host(self, request_id: int, error: int) -> None:
        """A routing ACK/NAK generated by this radio for its own host (``from`` is this radio)."""
        self._to_host(routing_to_host(self.node_num, self._new_id(), request_id, error))

    def report_position(self, unix_time: int, latitude: float = 56.1572, longitude: float = 10.2107) -> None:
        """Pass the host a position of this radio's own GPS, as the firmware does with a fix."""
        self._to_host(own_position(self.node_num, unix_time, latitude, longitude))

    # -- medium side --------------------------------------------------------------------------------

    def hear(self, packet: mesh_pb2.MeshPacket) -> None:
        """A packet reached this radio over the air (never while mute: the medium passes it by)."""
        sender = getattr(packet, "from")
        if sender == self.node_num:
            # A neighbour repeats our own packet (ReliableRouter::shouldFilterReceived): stop
            # retransmitting and give the host an implicit ACK. The real ACK may follow.
            answered = self._pending.get(packet.id)
            if answered is not None and not answered.is_set():
                answered.set()
                self.implicit_acks += 1
                self._routing_to_host(packet.id, RouteError.NONE)
            return
        if packet.to not in (self.node_num, BROADCAST_NUM):
            return
        if not open_incoming(packet, self.node_num, self.known_key(sender)):
            return  # PKI decryption failed: the firmware drops it, unanswered
        to_us = packet.to == self.node_num
        repeat = (sender, packet.id) in self._seen
        replies = to_us and packet.decoded.want_response and packet.decoded.portnum in ANSWERED_PORTS
        if to_us and packet.want_ack and (repeat or not replies):
            self._answer(packet, PortNum.ROUTING_APP, routing(RouteError.NONE))
        if repeat:
            return
        self._seen.append((sender, packet.id))
        if to_us and packet.decoded.request_id in self._pending:
            self._pending[packet.decoded.request_id].set()  # an ACK, a NAK or a reply to our packet
        if to_us:
            record_hop(packet, self.node_num, snr_only=True)
        self._to_host(packet)
        if replies and (answer := self.settings.answer(packet)) is not None:
            self._answer(packet, *answer)

    def relay(self, packet: mesh_pb2.MeshPacket) -> mesh_pb2.MeshPacket:
        """What this radio rebroadcasts of a packet it heard (FloodingRouter, TraceRouteModule)."""
        onward = mesh_pb2.MeshPacket()
        onward.CopyFrom(packet)
        onward.hop_limit = packet.hop_limit - 1
        record_hop(onward, self.node_num, snr_only=False)
        for heard_only in ("rx_snr", "rx_rssi", "rx_time"):
            onward.ClearField(heard_only)
        return onward

    def _answer(self, request: mesh_pb2.MeshPacket, port: int, payload: bytes) -> None:
        """Put an ACK or a module's reply to ``request`` on the air."""
        hops = self.settings.response_hop_limit(request)
        self.medium.launch(
            self.node_num, reply(request, self.node_num, self._new_id(), port, payload, hops=hops)
        )

    def _new_id(self) -> int:
        return self._ids.getrandbits(32) or 1

    def _to_host(self, packet: mesh_pb2.MeshPacket) -> None:
        self._to_host_message(mesh_pb2.FromRadio(packet=packet))

    def _to_host_message(self, message: mesh_pb2.FromRadio) -> None:
        if self.mute:
            return
        data = frame(message.SerializeToString())
        for session in self.cable.sessions:
            if session.configured:
                session.write(data)


async def _serve_demo(args: argparse.Namespace) -> None:
    medium = RFMedium(loss=args.loss)
    radios = [FakeMeshtasticRadio(args.node_num + i, medium) for i in range(args.count)]
    for i, radio in enumerate(radios):
        if args.pty:
            link = await radio.start_pty(Path(f"{args.pty}{i}"))
            print(f"{radio.user_id} on {link} -> {os.readlink(link)}", flush=True)
        else:
            port = await radio.start_tcp(args.host, args.tcp + i if args.tcp else 0)
            print(f"{radio.user_id} on tcp {args.host}:{port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for radio in radios:
            await radio.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Meshtastic radios on a simulated LoRa mesh")
    parser.add_argument("--tcp", type=int, default=0, help="first TCP port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pty", help="serve over ptys reachable as PREFIX0, PREFIX1, ... instead of TCP")
    parser.add_argument("--node-num", type=lambda s: int(s, 0), default=1, help="first node number")
    parser.add_argument("--count", type=int, default=1, help="how many radios share the mesh")
    parser.add_argument("--loss", type=float, default=0.0, help="loss probability per reception")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_demo(parser.parse_args()))


if __name__ == "__main__":
    main()
