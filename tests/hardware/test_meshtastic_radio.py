"""The fake Meshtastic radio and its RF medium, spoken to byte by byte as a host would (no library)."""

from __future__ import annotations

import asyncio
import os
import select
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from meshtastic.protobuf import admin_pb2, channel_pb2, config_pb2, mesh_pb2, portnums_pb2, telemetry_pb2

from simulators.meshtastic_framing import FrameReader, frame
from simulators.meshtastic_radio import FakeMeshtasticRadio
from simulators.rf_medium import RFMedium

A, B, C, D, E, F = 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6
WAKE_UP = b"\xc3" * 32
"""What a host sends first to wake the device and reset its parser (client API doc)."""
Error = mesh_pb2.Routing.Error


class Host:
    """The host end of the stream protocol over TCP, written against the protocol, not the library."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frames = FrameReader()
        self.received: list[bytes] = []

    @classmethod
    async def connect(cls, port: int) -> Host:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, message: mesh_pb2.ToRadio) -> None:
        await self.write(frame(message.SerializeToString()))

    async def recv(self, within: float = 5.0) -> mesh_pb2.FromRadio:
        async with asyncio.timeout(within):
            while not self.received:
                data = await self.reader.read(4096)
                assert data, "radio closed the connection"
                self.received += self.frames.feed(data)
            return mesh_pb2.FromRadio.FromString(self.received.pop(0))

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
    assert kinds[:3] == ["my_info", "node_info", "metadata"]  # PhoneAPI's order
    assert kinds[-1] == "config_complete_id" and answers[-1].config_complete_id == 4242
    assert answers[0].my_info.my_node_num == A
    assert answers[1].node_info.user.id == "!000000a1"
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
    request = WAKE_UP + frame(mesh_pb2.ToRadio(want_config_id=9).SerializeToString())
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


async def test_a_pki_direct_message_must_fit_one_lora_packet_with_its_overhead(net: Net) -> None:
    """``perhapsEncode``: Data{portnum 256 (3 bytes), bitfield (2), payload (3 + n)} + 16-byte header +
    12 bytes of PKI tag and nonce <= 255, so 219 payload bytes fit a direct message and 220 do not,
    though both are under the 233-byte payload limit; Beredt's 216-byte LoRa MTU leaves 3 spare."""
    a, b = await net.host(A), await net.host(B)
    await a.send(dm(B, b"\x01" * 219, packet_id=1))
    assert len((await b.packet()).decoded.payload) == 219
    assert routing_error(await a.packet()) == Error.NONE  # B's ACK
    await a.send(dm(B, b"\x01" * 220, packet_id=2))
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
    implicit, real = await hosts[A].packet(), await hosts[A].packet()
    assert (getattr(implicit, "from"), routing_error(implicit)) == (A, Error.NONE)  # B heard repeating it
    assert (getattr(real, "from"), routing_error(real), real.decoded.request_id) == (E, Error.NONE, 1)
    packet_air = net.medium.airtime_used(A)
    assert net.medium.airtime_used(B) > packet_air  # B relayed the packet and the ACK
    with pytest.raises(TimeoutError):
        await hosts[F].packet(
            within=0.2
        )  # F heard only the flooded ACK (and relayed it): nothing for its host
    # Beyond the hop limit: B still repeats it, so the radio reports an implicit ACK and stops
    # retransmitting; no ACK and no NAK follow (the firmware cannot know the packet died at D).
    await hosts[A].send(dm(F, b"\x01too far", packet_id=2))
    implicit = await hosts[A].packet()
    assert (getattr(implicit, "from"), routing_error(implicit), implicit.decoded.request_id) == (A, 0, 2)
    with pytest.raises(TimeoutError):
        await hosts[A].packet(within=0.3)


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
        os.write(fd, WAKE_UP + frame(mesh_pb2.ToRadio(want_config_id=5).SerializeToString()))
        frames = FrameReader()
        async with asyncio.timeout(5):
            while True:
                for payload in frames.feed(await asyncio.to_thread(_read_pty, fd, 0.5)):
                    message = mesh_pb2.FromRadio.FromString(payload)
                    if message.HasField("my_info"):
                        return int(message.my_info.my_node_num)
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


# -- literal transcripts: the bytes of the Meshtastic client API, written out by hand ------------


async def test_transcript_of_a_handshake_and_a_queued_packet(net: Net) -> None:
    await net.host(B)
    radio = net.radios[A] = FakeMeshtasticRadio(A, net.medium)
    reader, writer = await asyncio.open_connection("127.0.0.1", await radio.start_tcp())
    try:
        # 32 wake-up bytes, then ToRadio{want_config_id: 4242}: field 3 varint 0x92 0x21.
        writer.write(b"\xc3" * 32 + b"\x94\xc3\x00\x03\x18\x92\x21")
        # FromRadio{my_info{my_node_num: 0xa1, min_app_version: 30200}} comes first.
        first = await asyncio.wait_for(reader.readexactly(13), 5)
        assert first == b"\x94\xc3\x00\x09\x1a\x07\x08\xa1\x01\x58\xf8\xeb\x01"
        rest = b""
        while not rest.endswith(b"\x38\x92\x21"):  # ... config_complete_id (field 7) = 4242 ends it
            rest += await asyncio.wait_for(reader.read(4096), 5)
        # ToRadio{packet{to: 0xb2, decoded{portnum: 256, payload: 01 'hi'}, id: 0xbeef, hop_limit: 3,
        # want_ack}}; the radio confirms with FromRadio{queueStatus{free: 15, maxlen: 16, id: 0xbeef}}.
        writer.write(
            b"\x94\xc3\x00\x1a\x0a\x18\x15\xb2\x00\x00\x00\x22\x08\x08\x80\x02\x12\x03\x01hi"
            b"\x35\xef\xbe\x00\x00\x48\x03\x50\x01"
        )
        status = await asyncio.wait_for(reader.readexactly(14), 5)
        assert status == b"\x94\xc3\x00\x0a\x5a\x08\x10\x0f\x18\x10\x20\xef\xfd\x02"
        (packet,) = await asyncio.wait_for(radio.packets_from_host(1), 5)
        assert (packet.to, packet.id, packet.decoded.payload) == (B, 0xBEEF, b"\x01hi")
    finally:
        writer.close()


async def test_transcript_of_an_admin_request_answered_by_the_radio_itself(net: Net) -> None:
    radio = net.radios[A] = FakeMeshtasticRadio(A, net.medium, hop_limit=4)
    host = net.hosts[A] = await Host.connect(await radio.start_tcp())
    await host.handshake()
    # ToRadio{packet{to: 0xa1 (the radio itself), decoded{portnum: ADMIN_APP (6),
    # payload: AdminMessage{get_config_request: LORA_CONFIG (5)}, want_response}, id: 0x77, want_ack}}
    await host.write(
        b"\x94\xc3\x00\x18\x0a\x16\x15\xa1\x00\x00\x00\x22\x08\x08\x06\x12\x02\x28\x05\x18\x01"
        b"\x35\x77\x00\x00\x00\x50\x01"
    )
    answer = await host.packet()
    assert (getattr(answer, "from"), answer.to, answer.decoded.request_id) == (A, A, 0x77)
    assert answer.decoded.portnum == portnums_pb2.PortNum.ADMIN_APP
    lora = admin_pb2.AdminMessage.FromString(answer.decoded.payload).get_config_response.lora
    assert (lora.hop_limit, lora.region) == (4, config_pb2.Config.LoRaConfig.RegionCode.EU_868)
    assert net.medium.transmissions == 0  # answered locally, never on the air


# -- what the firmware's routers and modules do --------------------------------------------------


async def test_a_relay_repeating_our_dm_is_an_implicit_ack_and_stops_the_retransmissions(net: Net) -> None:
    a, b, c = await net.host(A), await net.host(B), await net.host(C)
    net.medium.connect([(A, B), (B, C)])
    await a.send(dm(C, b"\x01via b", packet_id=0x42))
    implicit = await a.packet()
    assert (getattr(implicit, "from"), implicit.to, implicit.decoded.request_id) == (A, A, 0x42)
    assert routing_error(implicit) == Error.NONE
    real = await a.packet()
    assert (getattr(real, "from"), real.decoded.request_id, routing_error(real)) == (C, 0x42, Error.NONE)
    assert (await c.packet()).decoded.payload == b"\x01via b"
    with pytest.raises(TimeoutError):
        await c.packet(within=0.3)  # delivered once
    with pytest.raises(TimeoutError):
        await b.packet(within=0.1)  # the relay's host sees nothing: it was not for it
    # A's packet, B's relay of it, C's ACK, B's relay of the ACK: no retransmission.
    assert net.medium.transmissions == 4
    assert net.radios[A].implicit_acks == 1


async def test_a_broadcast_with_want_ack_gets_an_implicit_ack_from_whoever_repeats_it(net: Net) -> None:
    a, b = await net.host(A), await net.host(B)
    await a.send(dm(0xFFFFFFFF, b"\x01all", packet_id=0x51))
    implicit = await a.packet()
    assert (getattr(implicit, "from"), implicit.decoded.request_id, routing_error(implicit)) == (
        A,
        0x51,
        Error.NONE,
    )
    assert (await b.packet()).decoded.payload == b"\x01all"


async def test_admin_set_takes_effect_in_the_getter_and_the_next_handshake(net: Net) -> None:
    a = await net.host(A)
    request = admin_pb2.AdminMessage()
    request.set_config.lora.CopyFrom(net.radios[A].settings.config.lora)
    request.set_config.lora.hop_limit = 5
    await a.send(admin(A, request, packet_id=0x61))
    ack = await a.packet()
    assert (ack.decoded.request_id, routing_error(ack)) == (0x61, Error.NONE)
    await a.send(admin(A, admin_pb2.AdminMessage(get_config_request=5), packet_id=0x62))
    answer = admin_pb2.AdminMessage.FromString((await a.packet()).decoded.payload)
    assert answer.get_config_response.lora.hop_limit == 5
    again = await Host.connect(net.radios[A].cable.tcp_port)
    try:
        lora = next(m.config.lora for m in await again.handshake() if m.config.HasField("lora"))
        assert lora.hop_limit == 5
    finally:
        again.close()


async def test_traceroute_records_the_relay_both_ways(net: Net) -> None:
    a, _, _ = await net.host(A), await net.host(B), await net.host(C)
    net.medium.connect([(A, B), (B, C)])
    request = mesh_pb2.MeshPacket(to=C, id=0x71, hop_limit=3)
    request.decoded.portnum = portnums_pb2.PortNum.TRACEROUTE_APP
    request.decoded.want_response = True
    await a.send(mesh_pb2.ToRadio(packet=request))
    reply = await a.packet()
    assert (getattr(reply, "from"), reply.decoded.request_id) == (C, 0x71)
    route = mesh_pb2.RouteDiscovery.FromString(reply.decoded.payload)
    assert list(route.route) == [B] and list(route.route_back) == [B]
    assert len(route.snr_towards) == 2 and len(route.snr_back) == 2  # each hop and the end add an SNR
    assert reply.hop_start > 0


@pytest.mark.parametrize(
    ("port", "request_payload"),
    [
        (portnums_pb2.PortNum.POSITION_APP, mesh_pb2.Position().SerializeToString()),
        (
            portnums_pb2.PortNum.TELEMETRY_APP,
            telemetry_pb2.Telemetry(device_metrics=telemetry_pb2.DeviceMetrics()).SerializeToString(),
        ),
    ],
    ids=["position", "telemetry"],
)
async def test_position_and_telemetry_requests_are_answered(
    net: Net, port: int, request_payload: bytes
) -> None:
    a, _ = await net.host(A), await net.host(B)
    request = mesh_pb2.MeshPacket(to=B, id=0x81, hop_limit=3, want_ack=True)
    request.decoded.portnum = port  # type: ignore[assignment]
    request.decoded.payload = request_payload
    request.decoded.want_response = True
    await a.send(mesh_pb2.ToRadio(packet=request))
    reply = await a.packet()
    assert (getattr(reply, "from"), reply.decoded.request_id, reply.decoded.portnum) == (B, 0x81, port)
    if port == portnums_pb2.PortNum.POSITION_APP:
        position = mesh_pb2.Position.FromString(reply.decoded.payload)
        assert round(position.latitude_i / 1e7, 2) == 56.16
    else:
        metrics = telemetry_pb2.Telemetry.FromString(reply.decoded.payload).device_metrics
        assert metrics.battery_level == 101 and metrics.voltage > 0
    with pytest.raises(TimeoutError):
        await a.packet(within=0.3)  # the reply was the ACK: no separate routing ACK follows


def admin(to: int, message: admin_pb2.AdminMessage, *, packet_id: int) -> mesh_pb2.ToRadio:
    packet = mesh_pb2.MeshPacket(to=to, id=packet_id, want_ack=True)
    packet.decoded.portnum = portnums_pb2.PortNum.ADMIN_APP
    packet.decoded.payload = message.SerializeToString()
    packet.decoded.want_response = True
    return mesh_pb2.ToRadio(packet=packet)


async def test_transcript_of_a_pki_direct_message_as_the_destination_hands_it_over(net: Net) -> None:
    """Router.cpp: a DM to a node whose key is known goes out PKI-encrypted on channel hash 0; the
    destination passes it up marked ``pki_encrypted`` with the key it decrypted it with, channel index 0."""
    key = bytes(range(32))
    hub = await net.host(B)
    radio = net.radios[A] = FakeMeshtasticRadio(A, net.medium)
    radio.public_key = radio.settings.owner.public_key = key  # a fixed key, for a literal transcript
    host = net.hosts[A] = await Host.connect(await radio.start_tcp())
    await host.handshake()
    # ToRadio{packet{to: 0xb2, decoded{portnum: TEXT_MESSAGE_APP (1), payload: 'HJ'}, id: 0xbeef,
    # hop_limit: 3, want_ack}}: what the library sends for sendText("HJ", "!000000b2", wantAck=True).
    await host.write(
        b"\x94\xc3\x00\x18\x0a\x16\x15\xb2\x00\x00\x00\x22\x06\x08\x01\x12\x02HJ"
        b"\x35\xef\xbe\x00\x00\x48\x03\x50\x01"
    )
    packet = await hub.packet()
    for heard_only in ("rx_time", "rx_snr", "rx_rssi"):  # the air's own values: not part of the transcript
        packet.ClearField(heard_only)
    # MeshPacket{from: 0xa1, to: 0xb2, decoded{portnum: 1, payload: 'HJ', bitfield (field 9): 0, which the
    # sender's perhapsEncode adds}, id: 0xbeef, hop_limit: 3,
    # want_ack, hop_start: 3, public_key (field 16): the sender's key, pki_encrypted (field 17): true};
    # no channel field: index 0, the default.
    assert packet.SerializeToString() == (
        b"\x0d\xa1\x00\x00\x00\x15\xb2\x00\x00\x00\x22\x08\x08\x01\x12\x02HJ\x48\x00\x35\xef\xbe\x00\x00"
        b"\x48\x03\x50\x01\x78\x03\x82\x01\x20" + key + b"\x88\x01\x01"
    )
    # The host's own copy went to the air marked the same way, and the radio still ACKed it.
    assert net.radios[A].from_host[0].pki_encrypted and net.radios[A].from_host[0].channel == 0
    ack = await host.packet()
    assert (getattr(ack, "from"), ack.decoded.request_id, routing_error(ack)) == (B, 0xBEEF, Error.NONE)


async def test_a_pki_dm_the_destination_cannot_decrypt_is_dropped_unanswered(net: Net) -> None:
    """A node database holding another key for the sender (a swapped handheld, a forged sender id):
    decryption fails, so the firmware drops the packet: no ACK, nothing to the host."""
    hub = await net.host(B)
    sender = await net.host(A)
    net.radios[B].node_keys[A] = b"\x07" * 32
    await sender.send(dm(B, b"\x01hi", packet_id=0xD00D))
    nak = await sender.packet(within=15)
    assert (nak.decoded.request_id, routing_error(nak)) == (0xD00D, Error.MAX_RETRANSMIT)
    assert net.radios[A].on_air[0xD00D] == 4
    with pytest.raises(TimeoutError):
        await hub.packet(within=0.5)
