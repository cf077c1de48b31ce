"""The fake Meshtastic radio and its RF medium, spoken to byte by byte as a host would (no library)."""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from meshtastic.protobuf import channel_pb2, config_pb2, mesh_pb2, portnums_pb2

from hardware.meshtastic_stream import WAKE_UP, FramePayload, StreamDecoder, encode_frame
from simulators.meshtastic_radio import FakeMeshtasticRadio
from simulators.rf_medium import RFMedium

A, B, C, D, E, F = 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6
Error = mesh_pb2.Routing.Error


class Host:
    """The host end of the stream protocol over TCP, written against the protocol, not the library."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = StreamDecoder()

    @classmethod
    async def connect(cls, port: int) -> Host:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, message: mesh_pb2.ToRadio) -> None:
        await self.write(encode_frame(message.SerializeToString()))

    async def recv(self, within: float = 5.0) -> mesh_pb2.FromRadio:
        async with asyncio.timeout(within):
            while True:
                event = self.decoder.next_event()
                if isinstance(event, FramePayload):
                    return mesh_pb2.FromRadio.FromString(event.payload)
                if event is None:
                    data = await self.reader.read(4096)
                    assert data, "radio closed the connection"
                    self.decoder.receive_data(data)

    async def handshake(self, config_id: int = 77) -> list[mesh_pb2.FromRadio]:
        await self.write(WAKE_UP)
        await self.send(mesh_pb2.ToRadio(want_config_id=config_id))
        answers = [await self.recv()]
        while answers[-1].WhichOneof("payload_variant") != "config_complete_id":
            answers.append(await self.recv())
        return answers

    async def packet(self, within: float = 5.0) -> mesh_pb2.MeshPacket:
        """The next MeshPacket the radio passes up, skipping queue reports."""
        while True:
            message = await self.recv(within)
            if message.HasField("packet"):
                return message.packet

    def close(self) -> None:
        self.writer.close()


def dm(to: int, payload: bytes, *, packet_id: int = 0x1234, want_ack: bool = True) -> mesh_pb2.ToRadio:
    packet = mesh_pb2.MeshPacket(to=to, id=packet_id, want_ack=want_ack, hop_limit=3)
    packet.decoded.portnum = portnums_pb2.PortNum.PRIVATE_APP
    packet.decoded.payload = payload
    return mesh_pb2.ToRadio(packet=packet)


def routing_error(packet: mesh_pb2.MeshPacket) -> int:
    assert packet.decoded.portnum == portnums_pb2.PortNum.ROUTING_APP
    return mesh_pb2.Routing.FromString(packet.decoded.payload).error_reason


class Net:
    def __init__(self, medium: RFMedium) -> None:
        self.medium = medium
        self.radios: dict[int, FakeMeshtasticRadio] = {}
        self.hosts: dict[int, Host] = {}

    async def host(self, num: int) -> Host:
        radio = self.radios[num] = FakeMeshtasticRadio(num, self.medium)
        host = self.hosts[num] = await Host.connect(await radio.start_tcp())
        await host.handshake()
        return host

    async def aclose(self) -> None:
        for host in self.hosts.values():
            host.close()
        for radio in self.radios.values():
            await radio.aclose()


@pytest.fixture
async def net() -> AsyncIterator[Net]:
    net = Net(RFMedium(seed=3))
    yield net
    await net.aclose()


async def test_handshake_answers_like_a_device(net: Net) -> None:
    await net.host(B)
    radio = net.radios[A] = FakeMeshtasticRadio(A, net.medium)
    host = net.hosts[A] = await Host.connect(await radio.start_tcp())
    answers = await host.handshake(config_id=4242)
    kinds = [m.WhichOneof("payload_variant") for m in answers]
    assert kinds[:3] == ["my_info", "metadata", "node_info"]
    assert kinds[-1] == "config_complete_id" and answers[-1].config_complete_id == 4242
    assert answers[0].my_info.my_node_num == A
    assert answers[2].node_info.user.id == "!000000a1"
    assert [m.node_info.user.id for m in answers if m.HasField("node_info")] == ["!000000a1", "!000000b2"]
    lora = next(m.config.lora for m in answers if m.config.HasField("lora"))
    assert lora.region == config_pb2.Config.LoRaConfig.RegionCode.EU_868 and lora.hop_limit == 3
    channels = [m.channel for m in answers if m.HasField("channel")]
    assert [c.index for c in channels] == list(range(8))
    assert channels[0].role == channel_pb2.Channel.Role.PRIMARY
    assert "moduleConfig" in kinds


async def test_request_split_into_single_bytes_and_garbage_before_it_still_works(net: Net) -> None:
    radio = net.radios[A] = FakeMeshtasticRadio(A, net.medium)
    host = net.hosts[A] = await Host.connect(await radio.start_tcp())
    junk = b"\x00\xff\x94\x94\xc3\x7f\xff" + bytes([0x94, 0xC3, 0x02, 0x01])  # includes a 513-byte header
    request = WAKE_UP + encode_frame(mesh_pb2.ToRadio(want_config_id=9).SerializeToString())
    for byte in junk + b"\x00" * 4 + request:
        await host.write(bytes([byte]))
    answers = [await host.recv()]
    while not answers[-1].HasField("config_complete_id"):
        answers.append(await host.recv())
    assert answers[-1].config_complete_id == 9


async def test_dm_is_queued_delivered_and_acknowledged(net: Net) -> None:
    a, b = await net.host(A), await net.host(B)
    await a.send(dm(B, b"\x01hello", packet_id=0xBEEF))
    status = (await a.recv()).queueStatus
    assert (status.res, status.mesh_packet_id, status.maxlen) == (0, 0xBEEF, 16)
    ack = await a.packet()
    assert (ack.decoded.request_id, getattr(ack, "from"), routing_error(ack)) == (0xBEEF, B, Error.NONE)
    got = await b.packet()
    assert (getattr(got, "from"), got.decoded.payload, got.hop_start, got.hop_limit) == (
        A,
        b"\x01hello",
        3,
        3,
    )
    assert got.rx_snr != 0 and got.rx_rssi < 0
    assert net.medium.transmissions == 2  # the packet and its ACK, nobody else to relay


async def test_unreachable_node_is_naked_after_three_retransmissions(net: Net) -> None:
    a, _ = await net.host(A), await net.host(B)
    net.medium.partition([A], [B])
    await a.send(dm(B, b"\x01x"))
    nak = await a.packet()
    assert (routing_error(nak), nak.decoded.request_id, getattr(nak, "from")) == (
        Error.MAX_RETRANSMIT,
        0x1234,
        A,
    )
    assert net.medium.transmissions == 4


async def test_duty_cycle_limit_is_naked_without_transmitting(net: Net) -> None:
    a, _ = await net.host(A), await net.host(B)
    net.medium.charge(A, 359.99)
    await a.send(dm(B, b"\x01x"))
    notice = await a.recv()
    while not notice.HasField("clientNotification"):
        notice = await a.recv()
    assert notice.clientNotification.message == "Duty cycle limit exceeded. You can send again in 60 mins"
    assert notice.clientNotification.reply_id == 0x1234
    assert routing_error(await a.packet()) == Error.DUTY_CYCLE_LIMIT
    assert net.medium.transmissions == 0
    assert net.medium.airtime_used(A) == pytest.approx(359.99)


async def test_oversize_payload_is_naked_too_large(net: Net) -> None:
    a, _ = await net.host(A), await net.host(B)
    await a.send(dm(B, b"\x01" * 240))
    assert routing_error(await a.packet()) == Error.TOO_LARGE


async def test_resent_packet_id_goes_on_air_once(net: Net) -> None:
    a, b = await net.host(A), await net.host(B)
    await a.send(dm(B, b"\x01once", packet_id=5))
    await a.send(dm(B, b"\x01once", packet_id=5))
    assert (await b.packet()).decoded.payload == b"\x01once"
    assert len(net.radios[A].from_host) == 1
    with pytest.raises(TimeoutError):
        await b.packet(within=0.3)


async def test_relays_extend_reach_up_to_the_hop_limit_and_spend_their_own_airtime(net: Net) -> None:
    hosts = {n: await net.host(n) for n in (A, B, C, D, E, F)}
    net.medium.connect([(A, B), (B, C), (C, D), (D, E), (E, F)])
    await hosts[A].send(dm(E, b"\x01far", packet_id=1))
    got = await hosts[E].packet()
    assert got.hop_start - got.hop_limit == 3  # three relays: B, C, D
    assert routing_error(await hosts[A].packet()) == Error.NONE
    packet_air = net.medium.airtime_used(A)
    assert net.medium.airtime_used(B) > packet_air  # B relayed the packet and the ACK
    with pytest.raises(TimeoutError):
        await hosts[F].packet(
            within=0.2
        )  # F heard only the flooded ACK (and relayed it): nothing for its host
    await hosts[A].send(dm(F, b"\x01too far", packet_id=2))
    assert routing_error(await hosts[A].packet()) == Error.MAX_RETRANSMIT


async def test_broadcast_reaches_all_and_gets_no_routing_answer(net: Net) -> None:
    a, b, c = await net.host(A), await net.host(B), await net.host(C)
    await a.send(dm(0xFFFFFFFF, b"\x01all", want_ack=False))
    assert (await b.packet()).decoded.payload == b"\x01all"
    assert (await c.packet()).decoded.payload == b"\x01all"
    with pytest.raises(TimeoutError):
        await a.packet(within=0.3)


async def test_loss_is_random_per_reception_and_counted() -> None:
    medium = RFMedium(loss=0.5, seed=11, retry_delay=0.0)
    net = Net(medium)
    try:
        a, _ = await net.host(A), await net.host(B)
        outcomes = []
        for packet_id in range(1, 21):
            await a.send(dm(B, b"\x01p", packet_id=packet_id))
            outcomes.append(routing_error(await a.packet()))
        assert outcomes.count(Error.NONE) + outcomes.count(Error.MAX_RETRANSMIT) == 20
        assert 0 < outcomes.count(Error.MAX_RETRANSMIT) < 20
        assert medium.lost > 10
    finally:
        await net.aclose()


def _read_pty(fd: int, within: float) -> bytes:
    ready, _, _ = select.select([fd], [], [], within)
    return os.read(fd, 4096) if ready else b""


async def pty_handshake(path: Path) -> int:
    """Open the pty like a serial port, handshake, return the node number the radio reports."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, WAKE_UP + encode_frame(mesh_pb2.ToRadio(want_config_id=5).SerializeToString()))
        decoder = StreamDecoder()
        async with asyncio.timeout(5):
            while True:
                decoder.receive_data(await asyncio.to_thread(_read_pty, fd, 0.5))
                while (event := decoder.next_event()) is not None:
                    if isinstance(event, FramePayload):
                        message = mesh_pb2.FromRadio.FromString(event.payload)
                        if message.HasField("my_info"):
                            return message.my_info.my_node_num
    finally:
        os.close(fd)


async def test_pty_keeps_its_path_across_unplug_and_replug(tmp_path: Path) -> None:
    radio = FakeMeshtasticRadio(A, RFMedium())
    link = await radio.start_pty(tmp_path / "ttyMESH")
    try:
        first_target = os.readlink(link)
        assert await pty_handshake(link) == A
        await radio.unplug()
        with pytest.raises(OSError):
            os.open(first_target, os.O_RDWR | os.O_NOCTTY)  # the old device node is gone
        await radio.plug()
        assert await pty_handshake(link) == A
    finally:
        await radio.aclose()


def test_node_numbers_are_checked() -> None:
    with pytest.raises(ValueError):
        FakeMeshtasticRadio(0xFFFFFFFF, RFMedium())
