"""A fake Meshtastic radio that the real ``meshtastic`` Python library can talk to, over TCP or a pty.

It speaks the device side of the stream protocol (``hardware.meshtastic_stream``) with the protobuf
classes the ``meshtastic`` package ships: it answers the config handshake (``want_config_id`` ->
``my_info``, ``metadata``, ``node_info``, config and module config parts, eight channels,
``config_complete_id``), confirms each packet from the host with ``queueStatus``, puts it on a shared
``RFMedium`` and reports the outcome of a ``want_ack`` direct message as the firmware does: a
``ROUTING_APP`` packet whose ``request_id`` is the packet id and whose ``error_reason`` is ``NONE``
(the far node's ACK), ``MAX_RETRANSMIT`` (lost after the retries, or unreachable) or ``DUTY_CYCLE_LIMIT``
(the node's rolling hour is spent). Packets heard on the medium for this node or for everybody are
passed to the host. ``unplug``/``plug`` pull and reinsert the cable (TCP server down, or the pty closed;
the pty, served by the shared ``simulators.pty_device``, is reached through a stable symlink
that comes back with the cable, as udev's ``/dev/serial/by-id`` names do).

Run a small mesh for demos: ``python -m simulators.meshtastic_radio --tcp 4403 --node-num 1
--count 3`` serves three radios on ports 4403-4405 that hear each other.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Callable
from pathlib import Path

from meshtastic.protobuf import channel_pb2, config_pb2, mesh_pb2, module_config_pb2, portnums_pb2

from hardware.meshtastic_stream import FramePayload, StreamDecoder, encode_frame
from hub.core.errors import ProtocolError
from hub.core.tasks import cancel_and_wait
from simulators.pty_device import PtyDevice
from simulators.rf_medium import RFMedium, RouteError

BROADCAST_NUM = 0xFFFFFFFF
TX_QUEUE_LEN = 16


class _HostSession:
    """One host connection (a TCP client or the pty): its decoder and how to write to it."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.decoder = StreamDecoder()
        self.write = write
        self.configured = False


class FakeMeshtasticRadio:
    """One fake radio, numbered ``node_num`` on ``medium``."""

    def __init__(
        self,
        node_num: int,
        medium: RFMedium,
        *,
        long_name: str | None = None,
        hop_limit: int = 3,
    ) -> None:
        if not 0 < node_num < BROADCAST_NUM:
            raise ValueError(f"node number must be 1..0xfffffffe, not {node_num}")
        self.node_num = node_num
        self.medium = medium
        self.long_name = long_name or f"Beredt sim {node_num:08x}"
        self.hop_limit = hop_limit
        self.from_host: list[mesh_pb2.MeshPacket] = []
        """Every packet the host asked this radio to send, in order (for test assertions)."""
        self.config_delay = 0.0
        """Seconds the radio takes to answer the config handshake (a big node DB makes it slow)."""
        self._watchers: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        self._sessions: list[_HostSession] = []
        self._seen: deque[tuple[int, int]] = deque(maxlen=256)
        self._tx_queue: asyncio.Queue[mesh_pb2.MeshPacket] = asyncio.Queue(maxsize=TX_QUEUE_LEN)
        self._tx_task: asyncio.Task[None] | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tcp_host = "127.0.0.1"
        self._tcp_port = 0
        self._client_tasks: set[asyncio.Task[None]] = set()
        self._pty: PtyDevice | None = None
        self._pty_host = _PtyHost(self)
        self.plugged = False
        medium.join(self)

    @property
    def user_id(self) -> str:
        return f"!{self.node_num:08x}"

    @property
    def host_connections(self) -> int:
        """Host connections open now (TCP clients, or 1 for a plugged pty)."""
        return len(self._sessions)

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
        frame = encode_frame(mesh_pb2.FromRadio(rebooted=True).SerializeToString())
        for session in self._sessions:
            session.configured = False
            session.write(frame)

    def _changed(self) -> None:
        for condition, future in self._watchers:
            if not future.done() and condition():
                future.set_result(None)

    # -- serving ----------------------------------------------------------------------------------

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Serve the stream protocol on TCP like a network radio; returns the bound port."""
        self._tcp_host, self._tcp_port = host, port
        await self._open_tcp()
        self._start_tx()
        return self._tcp_port

    async def start_pty(self, link: Path) -> Path:
        """Serve over a new pty reachable as the symlink ``link`` (what the host opens); returns it."""
        self._pty = PtyDevice(self._pty_host, link)
        self._open_pty()
        self._start_tx()
        return link

    async def unplug(self) -> None:
        """Pull the cable: the TCP server and its connections close, or the pty goes away."""
        self.plugged = False
        if self._server is not None:
            self._server.close()
            for session_task in list(self._client_tasks):
                session_task.cancel()
            await asyncio.gather(*self._client_tasks, return_exceptions=True)
            self._server = None
        if self._pty is not None:
            self._pty.unplug()
        self._sessions.clear()
        self._changed()

    async def plug(self) -> None:
        """Put the cable back: the same TCP port or the same symlink path serves again."""
        if self.plugged:
            return
        if self._pty is not None:
            self._open_pty()
        else:
            await self._open_tcp()

    async def aclose(self) -> None:
        """Unplug for good and stop the transmitter; idempotent."""
        await self.unplug()
        await cancel_and_wait(self._tx_task)
        self._tx_task = None
        self.medium.leave(self.node_num)

    def _start_tx(self) -> None:
        if self._tx_task is None:
            self._tx_task = asyncio.create_task(self._transmitter(), name=f"fake-radio-tx-{self.user_id}")

    async def _open_tcp(self) -> None:
        self._server = await asyncio.start_server(self._serve_client, self._tcp_host, self._tcp_port)
        self._tcp_port = self._server.sockets[0].getsockname()[1]
        self.plugged = True

    def _open_pty(self) -> None:
        assert self._pty is not None
        self._sessions.append(self._pty_host.new_session())
        self._pty.start()
        self._changed()
        self.plugged = True

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._client_tasks.add(task)
        session = _HostSession(writer.write)
        self._sessions.append(session)
        self._changed()
        try:
            while data := await reader.read(4096):
                self._on_host_bytes(session, data)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._client_tasks.discard(task)
            with contextlib.suppress(ValueError):
                self._sessions.remove(session)
            self._changed()
            writer.transport.abort()

    # -- host protocol ------------------------------------------------------------------------------

    def _on_host_bytes(self, session: _HostSession, data: bytes) -> None:
        session.decoder.receive_data(data)
        while True:
            try:
                event = session.decoder.next_event()
            except ProtocolError:
                continue  # the decoder has resynchronised; a real radio just drops the bad header
            if event is None:
                return
            if isinstance(event, FramePayload):
                self._on_to_radio(session, event.payload)

    def _on_to_radio(self, session: _HostSession, payload: bytes) -> None:
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

    def _send_config(self, session: _HostSession, config_id: int) -> None:
        out: list[mesh_pb2.FromRadio] = [
            mesh_pb2.FromRadio(my_info=mesh_pb2.MyNodeInfo(my_node_num=self.node_num, min_app_version=30200)),
            mesh_pb2.FromRadio(metadata=mesh_pb2.DeviceMetadata(firmware_version="2.5.20.beredt-sim")),
            mesh_pb2.FromRadio(node_info=_node_info(self.node_num, self.long_name)),
        ]
        # Like a radio that has been on the air a while, it knows the other nodes of the mesh.
        out += [
            mesh_pb2.FromRadio(node_info=_node_info(num, f"Beredt sim {num:08x}"))
            for num in self.medium.node_nums()
            if num != self.node_num
        ]
        lora = config_pb2.Config.LoRaConfig(
            use_preset=True,
            modem_preset=config_pb2.Config.LoRaConfig.ModemPreset.Value(self.medium.preset.name),
            region=config_pb2.Config.LoRaConfig.RegionCode.EU_868,
            hop_limit=self.hop_limit,
            tx_enabled=True,
        )
        for part in ("device", "position", "power", "network", "display", "bluetooth", "security"):
            config = config_pb2.Config()
            getattr(config, part).SetInParent()
            out.append(mesh_pb2.FromRadio(config=config))
        out.append(mesh_pb2.FromRadio(config=config_pb2.Config(lora=lora)))
        for part in ("mqtt", "serial", "store_forward", "telemetry", "neighbor_info"):
            module = module_config_pb2.ModuleConfig()
            getattr(module, part).SetInParent()
            out.append(mesh_pb2.FromRadio(moduleConfig=module))
        for index in range(8):
            role = channel_pb2.Channel.Role.PRIMARY if index == 0 else channel_pb2.Channel.Role.DISABLED
            settings = (
                channel_pb2.ChannelSettings(psk=b"\x01") if index == 0 else channel_pb2.ChannelSettings()
            )
            out.append(
                mesh_pb2.FromRadio(channel=channel_pb2.Channel(index=index, role=role, settings=settings))
            )
        out.append(mesh_pb2.FromRadio(config_complete_id=config_id))
        frames = b"".join(encode_frame(message.SerializeToString()) for message in out)
        if self.config_delay > 0:
            asyncio.get_running_loop().call_later(self.config_delay, self._answer_config, session, frames)
        else:
            self._answer_config(session, frames)

    def _answer_config(self, session: _HostSession, frames: bytes) -> None:
        if session in self._sessions:  # the host may have given up waiting and gone
            session.configured = True
            session.write(frames)

    def _accept_packet(self, session: _HostSession, packet: mesh_pb2.MeshPacket) -> None:
        # The library resends a packet whose queueStatus it has not seen yet: send each id once.
        duplicate = any(p.id == packet.id for p in self.from_host[-TX_QUEUE_LEN:])
        queued = duplicate or self._enqueue(packet)
        status = mesh_pb2.QueueStatus(
            res=0 if queued else 1,
            free=TX_QUEUE_LEN - self._tx_queue.qsize(),
            maxlen=TX_QUEUE_LEN,
            mesh_packet_id=packet.id,
        )
        session.write(encode_frame(mesh_pb2.FromRadio(queueStatus=status).SerializeToString()))

    def _enqueue(self, packet: mesh_pb2.MeshPacket) -> bool:
        setattr(packet, "from", self.node_num)
        packet.hop_limit = packet.hop_limit or self.hop_limit
        packet.hop_start = packet.hop_limit
        try:
            self._tx_queue.put_nowait(packet)
        except asyncio.QueueFull:
            return False
        self.from_host.append(packet)
        self._changed()
        return True

    async def _transmitter(self) -> None:
        while True:
            packet = await self._tx_queue.get()
            if len(packet.decoded.payload) > mesh_pb2.Constants.DATA_PAYLOAD_LEN:
                self._report(packet, RouteError.TOO_LARGE)
                continue
            outcome = await self.medium.transmit(self.node_num, packet)
            if outcome == RouteError.DUTY_CYCLE_LIMIT:
                # The firmware explains a duty-cycle refusal before it NAKs (Router.cpp).
                minutes = self.medium.silent_minutes(self.node_num, packet)
                notice = mesh_pb2.ClientNotification(
                    reply_id=packet.id,
                    level=mesh_pb2.LogRecord.Level.WARNING,
                    message=f"Duty cycle limit exceeded. You can send again in {minutes} mins",
                )
                self._to_host_message(mesh_pb2.FromRadio(clientNotification=notice))
            if outcome != RouteError.NONE and packet.want_ack:
                self._report(packet, outcome)

    def _report(self, packet: mesh_pb2.MeshPacket, error: int) -> None:
        """Tell the host that ``packet`` failed with ``error``, as a locally generated routing NAK."""
        nak = mesh_pb2.MeshPacket()
        setattr(nak, "from", self.node_num)
        nak.to = self.node_num
        nak.id = (packet.id ^ 0x5A5A5A5A) or 1
        nak.decoded.portnum = portnums_pb2.PortNum.ROUTING_APP
        nak.decoded.request_id = packet.id
        nak.decoded.payload = mesh_pb2.Routing(error_reason=error).SerializeToString()
        self._to_host(nak)

    def report_position(self, unix_time: int, latitude: float = 56.1572, longitude: float = 10.2107) -> None:
        """Pass the host a position of this radio's own GPS, as the firmware does with a fix."""
        packet = mesh_pb2.MeshPacket(to=BROADCAST_NUM, id=(unix_time & 0xFFFFFF) or 1)
        setattr(packet, "from", self.node_num)
        packet.decoded.portnum = portnums_pb2.PortNum.POSITION_APP
        position = mesh_pb2.Position(
            latitude_i=round(latitude * 1e7), longitude_i=round(longitude * 1e7), time=unix_time
        )
        packet.decoded.payload = position.SerializeToString()
        self._to_host(packet)

    # -- medium side --------------------------------------------------------------------------------

    def hear(self, packet: mesh_pb2.MeshPacket) -> None:
        """A packet reached this radio over the air; pass it on if it is for us (once per packet)."""
        if packet.to not in (self.node_num, BROADCAST_NUM):
            return
        key = (getattr(packet, "from"), packet.id)
        if key in self._seen:
            return
        self._seen.append(key)
        self._to_host(packet)

    def _to_host(self, packet: mesh_pb2.MeshPacket) -> None:
        self._to_host_message(mesh_pb2.FromRadio(packet=packet))

    def _to_host_message(self, message: mesh_pb2.FromRadio) -> None:
        frame = encode_frame(message.SerializeToString())
        for session in self._sessions:
            if session.configured:
                session.write(frame)


def _node_info(num: int, long_name: str) -> mesh_pb2.NodeInfo:
    user = mesh_pb2.User(id=f"!{num:08x}", long_name=long_name, short_name=f"{num & 0xFFFF:04x}")
    return mesh_pb2.NodeInfo(num=num, user=user)


class _PtyHost:
    """The radio's side of its pty, as the sans-IO device model that the shared ``PtyDevice`` serves."""

    def __init__(self, radio: FakeMeshtasticRadio) -> None:
        self.wakeup: Callable[[], None] | None = None
        self._radio = radio
        self._out = bytearray()
        self._session = self.new_session()

    def new_session(self) -> _HostSession:
        """A fresh parser for a freshly plugged cable; output still queued for the old one is lost."""
        self._out.clear()
        self._session = _HostSession(self._queue)
        return self._session

    def receive_data(self, data: bytes) -> None:
        self._radio._on_host_bytes(self._session, data)

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def _queue(self, data: bytes) -> None:
        self._out += data
        if self.wakeup is not None:
            self.wakeup()


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
