"""The MQTT link against real Mosquitto brokers started by the tests on free ports.

Covers the transport contract, broker death with frames in flight, reconnection to a restarted broker,
failover between brokers, QoS 1 frames queued for an offline node, presence with the last will of a
SIGKILLed process, two sites federated by a Mosquitto bridge, outside publishers, ACL refusals, and
configuration errors; and the pure topic layout, with hypothesis properties.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import ipaddress
import itertools
import logging
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hub.core.errors import ConfigError, DeliveryRefused, LinkDown, ProtocolError, TransportClosed
from hub.core.transport import BROADCAST_ADDRESS, LinkChanged, Received, TransportContext, TransportEvent
from tests.mosquitto import Mosquitto, bridged_mosquittos, free_port, running_mosquitto
from tests.transports.contract import LinkPair, TransportContract, next_received
from transports.mqtt import MqttTransport, open_transport
from transports.mqtt_topics import Inbound, Presence, TopicLayout, parse_presence

REPO = Path(__file__).resolve().parents[2]
ACL_EXAMPLE = REPO / "deploy" / "mqtt" / "acl.example"


def new_id() -> str:
    return secrets.token_hex(8)


async def open_node(url: str | list[str], node: str, **options: Any) -> MqttTransport:
    brokers = [url] if isinstance(url, str) else url
    ctx = TransportContext(node_id=node, data_dir=Path("."), logger=logging.getLogger(f"test.mqtt.{node}"))
    return await open_transport("mqtt", {"kind": "mqtt", "brokers": brokers, **options}, ctx)


async def wait_event(
    transport: MqttTransport, wanted: Callable[[TransportEvent], bool], within: float = 10.0
) -> TransportEvent:
    """The first event ``wanted`` accepts, skipping others; fails after ``within`` seconds."""

    async def pull() -> TransportEvent:
        async for event in transport.events():
            if wanted(event):
                return event
        raise AssertionError("events ended")

    return await asyncio.wait_for(pull(), within)


def link_up(up: bool = True, peer: str | None = None) -> Callable[[TransportEvent], bool]:
    return lambda e: isinstance(e, LinkChanged) and e.up is up and e.peer == peer


async def connected_pair(url_a: str, url_b: str, **options: Any) -> tuple[MqttTransport, MqttTransport]:
    """Two nodes that each have seen the other's presence online."""
    ida, idb = new_id(), new_id()
    a = await open_node(url_a, ida, peers=[idb], **options)
    b = await open_node(url_b, idb, peers=[ida], **options)
    await wait_event(a, link_up(True, idb), 15)
    await wait_event(b, link_up(True, ida), 15)
    return a, b


@pytest.fixture(scope="module")
def shared_broker() -> Iterator[Mosquitto]:
    with running_mosquitto() as broker:
        yield broker


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with running_mosquitto() as broker:
        yield broker


class TestMqttContract(TransportContract):
    @pytest.fixture
    async def link_pair(self, shared_broker: Mosquitto) -> AsyncIterator[LinkPair]:
        a, b = await connected_pair(shared_broker.url, shared_broker.url)
        yield LinkPair(a, b, a.node_id, b.node_id)
        await a.aclose()
        await b.aclose()


async def test_broker_death_fails_frames_in_flight_and_the_link_comes_back(broker: Mosquitto) -> None:
    a, b = await connected_pair(broker.url, broker.url, reconnect_max=1.0)
    try:
        broker.freeze()  # the broker takes the frames but never acknowledges them
        sends = [asyncio.ensure_future(a.send(b.node_id, bytes([1, i]))) for i in range(5)]
        await asyncio.sleep(0.3)
        assert not any(s.done() for s in sends)
        started = time.monotonic()
        await asyncio.to_thread(broker.kill)
        results = await asyncio.wait_for(asyncio.gather(*sends, return_exceptions=True), 3)
        assert all(isinstance(r, LinkDown) and r.peer == b.node_id for r in results), results
        down = await wait_event(a, link_up(False), 3)
        assert time.monotonic() - started < 3.0, "link death took longer than the 3 s budget"
        assert isinstance(down, LinkChanged) and "disconnected" in down.reason
        with pytest.raises(LinkDown):
            await a.send(b.node_id, b"\x01while down")
        with pytest.raises(LinkDown):
            await a.probe(b.node_id)

        await asyncio.to_thread(broker.start)  # same port, same config
        await wait_event(a, link_up(True), 15)
        await wait_event(a, link_up(True, b.node_id), 15)  # presence is reported afresh after the gap
        await a.send(b.node_id, b"\x01after")
        got = await wait_event(b, lambda e: isinstance(e, Received) and e.data == b"\x01after", 15)
        assert isinstance(got, Received) and got.source == a.node_id
    finally:
        await a.aclose()
        await b.aclose()


async def test_failover_cycles_to_the_next_broker() -> None:
    with running_mosquitto() as first, running_mosquitto() as second:
        dead = f"mqtt://127.0.0.1:{free_port()}"
        node = await open_node(
            [dead, first.url, second.url], new_id(), reconnect_max=0.5, connect_timeout=1.0
        )
        try:
            up = await wait_event(node, link_up(True), 15)
            assert isinstance(up, LinkChanged) and first.url in up.reason
            await asyncio.to_thread(first.kill)
            await wait_event(node, link_up(False), 3)
            up = await wait_event(node, link_up(True), 15)
            assert isinstance(up, LinkChanged) and second.url in up.reason
        finally:
            await node.aclose()


async def test_no_broker_means_link_down_and_close_is_prompt() -> None:
    node = await open_node(f"mqtt://127.0.0.1:{free_port()}", new_id(), connect_timeout=1.0)
    with pytest.raises(LinkDown, match="not connected"):
        await node.send(new_id(), b"\x01x")
    with pytest.raises(LinkDown):
        await node.probe(new_id())
    started = time.monotonic()
    await node.aclose()
    assert time.monotonic() - started < 5
    with pytest.raises(TransportClosed):
        await node.probe(new_id())


async def test_frames_for_an_offline_node_wait_at_the_broker(broker: Mosquitto) -> None:
    a, b = await connected_pair(broker.url, broker.url)
    sleeper = b.node_id
    await b.aclose()  # a hub restart: its persistent session stays at the broker
    await wait_event(a, link_up(False, sleeper), 5)
    frames = [b"\x01queued-%d" % i for i in range(3)]
    for frame in frames:
        await a.send(sleeper, frame)  # PUBACK: the broker holds it for the sleeper
    with pytest.raises(LinkDown, match="offline"):
        await a.probe(sleeper)
    back = await open_node(broker.url, sleeper)
    try:
        got = [(await next_received(back, 10)).data for _ in frames]
        assert got == frames
        await wait_event(a, link_up(True, sleeper), 10)
        await a.probe(sleeper)
    finally:
        await back.aclose()
        await a.aclose()


async def test_queued_frames_survive_a_broker_restart(broker: Mosquitto) -> None:
    a, b = await connected_pair(broker.url, broker.url, reconnect_max=0.5)
    sleeper = b.node_id
    await b.aclose()
    frames = [b"\x01kept-%d" % i for i in range(3)]
    try:
        for frame in frames:
            await a.send(sleeper, frame)
        await asyncio.to_thread(broker.stop)  # orderly: mosquitto writes its persistence file
        await wait_event(a, link_up(False), 3)
        await asyncio.to_thread(broker.start)
        back = await open_node(broker.url, sleeper)
        try:
            assert [(await next_received(back, 10)).data for _ in frames] == frames
        finally:
            await back.aclose()
    finally:
        await a.aclose()


CHILD = """
import asyncio, logging, sys
from pathlib import Path
from hub.core.transport import LinkChanged, TransportContext
from transports.mqtt import open_transport

async def main() -> None:
    ctx = TransportContext(sys.argv[2], Path("."), logging.getLogger("child"))
    link = await open_transport("mqtt", {"brokers": [sys.argv[1]], "keepalive": 2}, ctx)
    async for event in link.events():
        if isinstance(event, LinkChanged) and event.peer is None and event.up:
            print("ready", flush=True)

asyncio.run(main())
"""


async def test_sigkilled_node_is_reported_offline_by_its_last_will(broker: Mosquitto) -> None:
    victim = new_id()
    watcher = await open_node(broker.url, new_id(), peers=[victim], keepalive=2)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, broker.url, victim,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 20) == b"ready\n"
        await wait_event(watcher, link_up(True, victim), 10)
        child.kill()
        started = time.monotonic()
        gone = await wait_event(watcher, link_up(False, victim), 10)
        assert isinstance(gone, LinkChanged) and "last will" in gone.reason
        assert time.monotonic() - started < 3.0, "the last will came later than the 3 s budget"
        with pytest.raises(LinkDown, match="offline"):
            await watcher.probe(victim)
    finally:
        if child.returncode is None:
            child.kill()
        await asyncio.wait_for(child.wait(), 10)
        await watcher.aclose()


async def test_bridged_brokers_carry_frames_between_sites() -> None:
    with bridged_mosquittos() as (site_one, site_two):
        a, b = await connected_pair(site_one.url, site_two.url)  # presence crossed the bridge both ways
        try:
            await a.send(b.node_id, b"\x01over the bridge")
            got = await next_received(b, 10)
            assert (got.source, got.data) == (a.node_id, b"\x01over the bridge")
            await b.send(got.source, b"\x01and back")
            back = await next_received(a, 10)
            assert (back.source, back.data) == (b.node_id, b"\x01and back")
        finally:
            await a.aclose()
            await b.aclose()


async def test_groups_and_broadcast_reach_members_but_not_the_sender(shared_broker: Mosquitto) -> None:
    a, b = await connected_pair(shared_broker.url, shared_broker.url, groups=["krisestab"])
    outsider = await open_node(shared_broker.url, new_id())
    try:
        await wait_event(outsider, link_up(True), 10)
        await a.send("group:krisestab", b"\x01to the staff")
        got = await next_received(b, 10)
        assert (got.source, got.data, got.meta["channel"]) == (
            a.node_id,
            b"\x01to the staff",
            "group:krisestab",
        )
        await a.send(BROADCAST_ADDRESS, b"\x01to everyone")
        for node in (b, outsider):
            got = await next_received(node, 10)
            assert (got.source, got.data, got.meta["channel"]) == (a.node_id, b"\x01to everyone", "all")
        await b.send(
            a.node_id, b"\x01marker"
        )  # a's next frame is this one: its own group/all copies never came
        assert (await next_received(a, 10)).data == b"\x01marker"
    finally:
        for node in (a, b, outsider):
            await node.aclose()


async def test_outside_publishers_arrive_as_plain_bytes_and_stray_topics_are_dropped(
    shared_broker: Mosquitto,
) -> None:
    node = await open_node(shared_broker.url, new_id())
    await wait_event(node, link_up(True), 10)
    forger = new_id()
    inbox = f"beredt/node/{node.node_id}/in"
    try:
        for topic, payload, retain in (
            (f"{inbox}/NOT-A-NODE-ID", b"\x01stray", False),  # matches our subscription, not the layout
            (f"beredt/node/{forger}/presence", b"maybe", True),  # not a presence value
            (f"{inbox}/{forger}", b"\xff\x00 not a frame", False),
        ):
            reason = await asyncio.to_thread(
                outside_publish, shared_broker.port, topic, payload, retain=retain
            )
            assert reason in ("Success", "No matching subscribers")
        await node.probe(BROADCAST_ADDRESS)
        with pytest.raises(LinkDown, match="unknown"):
            await node.probe(forger)  # subscribing now replays the bad retained presence, which is dropped
        got = await next_received(node, 10)
        assert (got.source, got.data) == (
            forger,
            b"\xff\x00 not a frame",
        )  # the hub, not the link, refuses it
        assert node.malformed == 2
    finally:
        await node.aclose()


async def test_bad_addresses_are_refused_for_good(shared_broker: Mosquitto) -> None:
    node = await open_node(shared_broker.url, new_id())
    try:
        await wait_event(node, link_up(True), 10)
        for dest in ("ABC", "0123456789ABCDEF", "group:", "group:a/b", "+/#"):
            with pytest.raises(DeliveryRefused, match=r"node id|group"):
                await node.send(dest, b"\x01x")
    finally:
        await node.aclose()


async def test_acl_example_lets_nodes_talk_and_refuses_forged_senders() -> None:
    with running_mosquitto(f"acl_file {ACL_EXAMPLE}\n") as broker:
        ida, idb = new_id(), new_id()
        a = await open_node(broker.url, ida, peers=[idb], username=ida)
        b = await open_node(broker.url, idb, peers=[ida], username=idb)
        try:
            await wait_event(a, link_up(True, idb), 10)
            await a.send(idb, b"\x01allowed")
            assert (await next_received(b, 10)).data == b"\x01allowed"
            with pytest.raises(DeliveryRefused, match="Not authorized"):  # not a member of that group
                await a.send("group:krisestab", b"\x01not mine")
            # an outside client claiming to be a is refused by the broker, and b never sees the frame
            forged = f"beredt/node/{idb}/in/{ida}"
            refused = await asyncio.to_thread(
                outside_publish, broker.port, forged, b"\x01forged", username=new_id()
            )
            assert refused == "Not authorized"
            await a.send(idb, b"\x01marker")
            assert (await next_received(b, 10)).data == b"\x01marker"
        finally:
            await a.aclose()
            await b.aclose()


def outside_publish(
    port: int, topic: str, payload: bytes, *, retain: bool = False, username: str | None = None
) -> str:
    """Publish one QoS 1 message as a plain MQTT v5 client (not Beredt) and return the PUBACK's reason."""
    client = paho.mqtt.client.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    if username is not None:
        client.username_pw_set(username)
    reasons: list[str] = []
    client.on_publish = lambda c, userdata, mid, reason, props: reasons.append(str(reason))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
        return reasons[0]
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize(
    ("options", "key", "says"),
    [
        ({}, "links.m.brokers", "mindst én broker-adresse"),
        ({"brokers": "mqtt://h:1"}, "links.m.brokers", "en liste af broker-adresser"),
        ({"brokers": ["http://h:1"]}, "links.m.brokers", "mqtt://vært:port"),
        ({"brokers": ["mqtt://h:99999"]}, "links.m.brokers", "mqtt://vært:port"),
        ({"brokers": ["mqtt://h:1"], "keepalive": 0}, "links.m.keepalive", "fra 1 til 65535"),
        ({"brokers": ["mqtt://h:1"], "keepalive": "15"}, "links.m.keepalive", "heltal"),
        ({"brokers": ["mqtt://h:1"], "mtu": 10}, "links.m.mtu", "fra 64"),
        ({"brokers": ["mqtt://h:1"], "keepalive": 2.5}, "links.m.keepalive", "et heltal fra 1"),
        ({"brokers": ["mqtt://h:1"], "peers": ["xyz"]}, "links.m.peers", "node-id'er"),
        ({"brokers": ["mqtt://h:1"], "groups": ["a/b"]}, "links.m.groups", "gruppenavne"),
        ({"brokers": ["mqtt://h:1"], "prefix": "a/+"}, "links.m.prefix", "emneniveauer"),
        ({"brokers": ["mqtt://h:1"], "password": "x"}, "links.m.username", "kræver et brugernavn"),
        ({"brokers": ["mqtts://h:1"], "tls_cert": "c.pem"}, "links.m.tls_cert", "hører sammen"),
        ({"brokers": ["mqtt://h:1"], "tls_ca": "ca.pem"}, "links.m.brokers", "ingen broker bruger mqtts"),
        ({"brokers": ["mqtt://h:1"], "qos": 2}, "links.m.qos", "ukendt nøgle"),
    ],
)
async def test_bad_options_name_the_key(options: dict[str, Any], key: str, says: str) -> None:
    ctx = TransportContext(node_id=new_id(), data_dir=Path("."), logger=logging.getLogger("test"))
    with pytest.raises(ConfigError, match=says) as caught:
        await open_transport("m", options, ctx)
    assert caught.value.key == key


async def test_a_slow_hub_pauses_reading_and_loses_nothing(shared_broker: Mosquitto) -> None:
    a, b = await connected_pair(shared_broker.url, shared_broker.url, receive_queue=16)
    try:
        frames = [b"\x01frame-%03d" % i for i in range(200)]
        for frame in frames:  # nobody reads b's events meanwhile
            await a.send(b.node_id, frame)
        got = [(await next_received(b, 10)).data for _ in frames]
        assert got == frames  # all of them, in order: the broker held what b did not read
        assert b.paused_reads >= 1
    finally:
        await a.aclose()
        await b.aclose()


async def test_hung_broker_is_given_up_after_the_publish_deadline(broker: Mosquitto) -> None:
    a, b = await connected_pair(broker.url, broker.url, publish_timeout=1.0, reconnect_max=0.5)
    try:
        broker.freeze()
        started = time.monotonic()
        with pytest.raises(LinkDown, match="no PUBACK within 1 s"):
            await a.send(b.node_id, b"\x01into the void")
        await wait_event(a, link_up(False), 3)
        assert time.monotonic() - started < 3.0
        broker.thaw()
        await wait_event(a, link_up(True), 15)
        await a.send(b.node_id, b"\x01thawed")
    finally:
        broker.thaw()
        await a.aclose()
        await b.aclose()


# --- the pure topic layout ---------------------------------------------------------------------------

ME, PEER = "00112233aabbccdd", "ffeeddcc99887766"


@pytest.mark.parametrize("prefix", ["beredt", "dk/region-midt/beredt"])
def test_topics_round_trip_between_sender_and_receiver(prefix: str) -> None:
    sender, receiver = TopicLayout(prefix, PEER), TopicLayout(prefix, ME)
    assert receiver.parse(sender.publish_topic(ME)) == Inbound(PEER, "direct")
    assert receiver.parse(sender.publish_topic(BROADCAST_ADDRESS)) == Inbound(PEER, "all")
    assert receiver.parse(sender.publish_topic("group:krisestab")) == Inbound(PEER, "group:krisestab")
    assert receiver.parse(sender.presence(PEER)) == Presence(PEER)
    assert sender.publish_topic(ME) == f"{prefix}/node/{ME}/in/{PEER}"
    assert receiver.inbox_filter() == f"{prefix}/node/{ME}/in/+"


@pytest.mark.parametrize(
    "topic",
    [
        f"other/node/{ME}/in/{PEER}",  # another prefix
        f"beredt/node/{PEER}/in/{ME}",  # someone else's inbox
        f"beredt/node/{ME}/in/{PEER}/extra",
        f"beredt/node/{ME}/in/{PEER.upper()}",  # node ids are lowercase on the wire
        f"beredt/node/{ME}/in/",
        "beredt/all",
        f"beredt/group/a+b/{PEER}",
        "beredt",
        "",
    ],
)
def test_topics_outside_the_layout_are_protocol_errors(topic: str) -> None:
    with pytest.raises(ProtocolError):
        TopicLayout("beredt", ME).parse(topic)


def test_presence_payloads() -> None:
    assert parse_presence(b"online") is True
    assert parse_presence(b"offline") is False
    assert parse_presence(b"") is False  # a cleared retained presence: the node is gone
    with pytest.raises(ProtocolError):
        parse_presence(b"Online")


@given(st.text(max_size=120))
def test_any_topic_parses_or_raises_protocol_error(topic: str) -> None:
    with contextlib.suppress(ProtocolError):
        assert isinstance(TopicLayout("beredt", ME).parse(topic), Inbound | Presence)


@given(st.binary(max_size=64))
def test_any_presence_payload_parses_or_raises_protocol_error(payload: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        assert isinstance(parse_presence(payload), bool)


@given(st.text(max_size=40))
def test_any_address_gives_a_topic_in_the_layout_or_a_protocol_error(dest: str) -> None:
    sender = TopicLayout("beredt", PEER)
    try:
        topic = sender.publish_topic(dest)
    except ProtocolError:
        return
    assert "+" not in topic and "#" not in topic
    meaning = TopicLayout("beredt", dest if dest != BROADCAST_ADDRESS and "group:" not in dest else ME).parse(
        topic
    )
    assert isinstance(meaning, Inbound) and meaning.sender == PEER


# --- TLS with a private CA and client certificates -----------------------------------------------------


def write_pki(folder: Path) -> dict[str, Path]:
    """A private CA, a broker certificate for 127.0.0.1 and a hub client certificate, as PEM files."""

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def cert(
        subject: str,
        public: ec.EllipticCurvePublicKey,
        signer: ec.EllipticCurvePrivateKey,
        issuer: str,
        ca: bool,
    ) -> x509.Certificate:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    def write(name: str, item: x509.Certificate | ec.EllipticCurvePrivateKey) -> Path:
        path = folder / name
        if isinstance(item, x509.Certificate):
            path.write_bytes(item.public_bytes(serialization.Encoding.PEM))
        else:
            path.write_bytes(
                item.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return path

    ca_key, broker_key, hub_key = key(), key(), key()
    ca = cert("Beredt test CA", ca_key.public_key(), ca_key, "Beredt test CA", True)
    return {
        "ca": write("ca.pem", ca),
        "broker_cert": write(
            "broker.pem", cert("broker", broker_key.public_key(), ca_key, "Beredt test CA", False)
        ),
        "broker_key": write("broker.key", broker_key),
        "hub_cert": write("hub.pem", cert("hub", hub_key.public_key(), ca_key, "Beredt test CA", False)),
        "hub_key": write("hub.key", hub_key),
        "stranger_ca": write("stranger.pem", cert("Stranger", ca_key.public_key(), key(), "Stranger", True)),
    }


async def test_tls_with_a_private_ca_and_client_certificates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pki = write_pki(tmp_path)
    tls = (
        f"cafile {pki['ca']}\ncertfile {pki['broker_cert']}\nkeyfile {pki['broker_key']}\n"
        "require_certificate true\n"
    )
    with running_mosquitto(tls) as broker:
        url = f"mqtts://127.0.0.1:{broker.port}"
        client_tls = {
            "tls_ca": str(pki["ca"]),
            "tls_cert": str(pki["hub_cert"]),
            "tls_key": str(pki["hub_key"]),
        }
        a, b = await connected_pair(url, url, **client_tls)
        try:
            await a.send(b.node_id, b"\x01sealed in TLS")
            assert (await next_received(b, 10)).data == b"\x01sealed in TLS"
        finally:
            await a.aclose()
            await b.aclose()

        # a broker whose certificate our CA did not sign is never used
        refused = asyncio.Event()

        class Spy(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "certificate verify failed" in record.getMessage():
                    refused.set()

        stranger = new_id()
        logging.getLogger(f"test.mqtt.{stranger}").addHandler(Spy())
        wrong = await open_node(url, stranger, tls_ca=str(pki["stranger_ca"]), connect_timeout=1.0)
        try:
            await asyncio.wait_for(refused.wait(), 10)
            with pytest.raises(LinkDown, match="not connected"):
                await wrong.send(new_id(), b"\x01x")
        finally:
            await wrong.aclose()


async def test_tls_files_are_found_next_to_the_config_or_named_as_missing(tmp_path: Path) -> None:
    write_pki(tmp_path)
    ctx = TransportContext(new_id(), tmp_path / "data", logging.getLogger("test"), config_dir=tmp_path)
    options = {"brokers": [f"mqtts://127.0.0.1:{free_port()}"], "tls_ca": "ca.pem", "connect_timeout": 1.0}
    link = await open_transport("m", options, ctx)  # relative to the config file's folder
    try:
        assert isinstance(link, MqttTransport) and link.options.tls_ca == tmp_path / "ca.pem"
    finally:
        await link.aclose()
    with pytest.raises(ConfigError, match="findes ikke") as caught:
        await open_transport("m", {**options, "tls_ca": "nope.pem"}, ctx)
    assert caught.value.key == "links.m.tls_ca" and str(tmp_path / "nope.pem") in str(caught.value)


async def test_close_during_a_stuck_tls_handshake_releases_the_socket(tmp_path: Path) -> None:
    pki = write_pki(tmp_path)
    with socket.socket() as silent:  # accepts TCP (kernel backlog) but never speaks TLS
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"mqtts://127.0.0.1:{silent.getsockname()[1]}"
        node = await open_node(url, new_id(), tls_ca=str(pki["ca"]), connect_timeout=1.0)
        await asyncio.sleep(0.3)  # the worker thread is now inside the TLS handshake
        started = time.monotonic()
        await node.aclose()
        assert time.monotonic() - started < 4.0
    gc.collect()  # an unclosed socket would surface here as an unraisable ResourceWarning (an error)


async def test_close_while_waiting_for_connack_closes_the_socket() -> None:
    with socket.socket() as silent:  # a "broker" that accepts TCP and never answers CONNECT
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        node = await open_node(f"mqtt://127.0.0.1:{silent.getsockname()[1]}", new_id(), connect_timeout=5.0)
        silent.settimeout(5)
        peer, _ = await asyncio.to_thread(silent.accept)
        with peer:
            assert await asyncio.to_thread(peer.recv, 1) == b"\x10"  # CONNECT: the link waits for CONNACK
            await node.aclose()
            peer.settimeout(3)
            while await asyncio.to_thread(peer.recv, 4096):  # the rest of CONNECT, then EOF: closed
                pass


async def test_a_broker_refusing_us_is_reported_and_retried() -> None:
    with running_mosquitto("allow_anonymous false\n") as broker:  # no password file: nobody gets in
        refusals: list[str] = []
        seen = asyncio.Event()

        class Spy(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if "refused" in record.getMessage():
                    refusals.append(record.getMessage())
                    if len(refusals) >= 2:
                        seen.set()

        node_id = new_id()
        logging.getLogger(f"test.mqtt.{node_id}").addHandler(Spy())
        node = await open_node(broker.url, node_id, username=node_id, password="wrong", reconnect_max=0.5)
        try:
            await asyncio.wait_for(seen.wait(), 10)  # refused, backed off, tried again, refused again
            assert "Not authorized" in refusals[0]
            with pytest.raises(LinkDown, match="not connected"):
                await node.send(new_id(), b"\x01x")
        finally:
            await node.aclose()


@pytest.mark.parametrize(
    "restarts", [pytest.param(3, id="short"), pytest.param(30, id="soak", marks=pytest.mark.soak)]
)
async def test_every_acknowledged_frame_arrives_while_the_broker_restarts(
    broker: Mosquitto, restarts: int
) -> None:
    a, b = await connected_pair(broker.url, broker.url, reconnect_max=0.5)
    sent: set[bytes] = set()
    acked: set[bytes] = set()
    arrived: set[bytes] = set()
    stop, caught_up = asyncio.Event(), asyncio.Event()

    async def sender() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            frame = b"\x01seq-%06d" % n
            sent.add(frame)
            try:
                await a.send(b.node_id, frame)
                acked.add(frame)
            except LinkDown:
                await asyncio.sleep(0.05)  # the link is down; the hub would try another one meanwhile

    def check() -> None:
        if stop.is_set() and acked <= arrived:
            caught_up.set()

    async def receiver() -> None:
        async for event in b.events():
            if isinstance(event, Received):
                arrived.add(event.data)
                check()

    try:
        async with asyncio.TaskGroup() as group:
            sending = group.create_task(sender())
            reading = group.create_task(receiver())
            for _ in range(restarts):
                await asyncio.sleep(0.3)
                await asyncio.to_thread(broker.stop)  # orderly, so the broker keeps what it acknowledged
                await asyncio.to_thread(broker.start)
                await wait_event(a, link_up(True), 15)
            stop.set()
            await sending
            check()
            await asyncio.wait_for(caught_up.wait(), 15)  # every PUBACKed frame reached b
            reading.cancel()
        assert len(acked) > restarts * 10
        assert arrived <= sent  # nothing but what a sent, byte for byte
    finally:
        await a.aclose()
        await b.aclose()


class SilentPath:
    """A TCP relay to the broker that can start swallowing bytes both ways, like a dead radio path
    where no RST or FIN ever comes: only the MQTT keepalive can notice it."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.silent = False
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.relays: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"mqtt://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:  # EOF for every copy loop, which ends its relay
            writer.close()
        if self.relays:
            await asyncio.wait(self.relays, timeout=5)
        await self.server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.relays.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        self.writers += [writer, up_writer]

        async def copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(4096):
                    if not self.silent:
                        sink.write(data)
                        await sink.drain()
            sink.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))


async def test_a_silently_dead_path_is_noticed_by_the_keepalive(broker: Mosquitto) -> None:
    path = SilentPath(broker.port)
    async with path as url:
        ida, idb = new_id(), new_id()
        a = await open_node(url, ida, peers=[idb], keepalive=1)
        b = await open_node(broker.url, idb, peers=[ida])
        try:
            await wait_event(a, link_up(True, idb), 10)
            await wait_event(b, link_up(True, ida), 10)
            path.silent = True
            started = time.monotonic()
            await wait_event(a, link_up(False), 6)  # no PINGRESP: paho gives up on the connection
            assert time.monotonic() - started < 4.5
            gone = await wait_event(
                b, link_up(False, ida), 6
            )  # and the broker, hearing nothing, sends the will
            assert isinstance(gone, LinkChanged) and "last will" in gone.reason
        finally:
            await a.aclose()
            await b.aclose()


def set_acl(broker: Mosquitto, acl: Path, rules: str) -> None:
    """Rewrite the broker's ACL file and make it reread it (SIGHUP), sessions untouched."""
    acl.write_text(rules)
    assert broker.process is not None
    broker.process.send_signal(signal.SIGHUP)


async def probe_until(node: MqttTransport, peer: str, *, fails: bool, within: float = 30.0) -> str:
    """Probe until the probe fails (``fails``) or passes; the LinkDown's text, or "" for a pass."""
    deadline = time.monotonic() + within
    while True:
        try:
            await node.probe(peer)
            outcome = ""
        except LinkDown as exc:
            outcome = str(exc)
        if bool(outcome) is fails:
            return outcome
        assert time.monotonic() < deadline, f"probe still {'passes' if fails else 'fails'}: {outcome}"
        await asyncio.sleep(0.1)


async def test_a_broker_that_acknowledges_and_delivers_nothing_fails_the_probe(tmp_path: Path) -> None:
    """A wedged broker (here: an ACL that lets everyone publish and nobody read) keeps every session and
    acknowledges every frame; the peer's retained presence still says online. Only the probe's echo
    through the broker shows that nothing arrives anywhere."""
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite #\n")
    with running_mosquitto(f"acl_file {acl}\n") as broker:
        a, b = await connected_pair(broker.url, broker.url)
        try:
            assert await probe_until(a, b.node_id, fails=False) == ""
            set_acl(broker, acl, "topic write #\n")
            why = await probe_until(a, b.node_id, fails=True)
            assert "the broker passes nothing: our own echo did not come back" in why
            await a.send(b.node_id, b"\x01swallowed")  # still acknowledged: only the echo tells
            set_acl(broker, acl, "topic readwrite #\n")
            assert await probe_until(a, b.node_id, fails=False) == ""
            await a.send(b.node_id, b"\x01heard again")
            assert (await next_received(b, 10)).data == b"\x01heard again"
        finally:
            await a.aclose()
            await b.aclose()


async def test_an_acl_without_the_echo_leaves_probes_to_presence(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stricter ACL than the example (no node may write its own inbox) refuses the echo: the probe
    says so once in the log and still answers from presence, rather than calling a working link down."""
    ida, idb = new_id(), new_id()
    acl = tmp_path / "acl"
    acl.write_text("".join(
        f"user {me}\ntopic write beredt/node/{other}/in/{me}\ntopic read beredt/node/{me}/in/+\n"
        f"topic readwrite beredt/node/{me}/presence\ntopic read beredt/node/+/presence\n"
        for me, other in ((ida, idb), (idb, ida))
    ))  # fmt: skip
    with running_mosquitto(f"acl_file {acl}\n") as broker:
        a = await open_node(broker.url, ida, peers=[idb], username=ida)
        b = await open_node(broker.url, idb, peers=[ida], username=idb)
        try:
            await wait_event(a, link_up(True, idb), 10)
            with caplog.at_level(logging.WARNING, logger=f"test.mqtt.{ida}"):
                await a.probe(idb)
                await a.probe(idb)
            refusals = [r for r in caplog.records if "refuses our echo" in r.getMessage()]
            assert len(refusals) == 1
            await a.send(idb, b"\x01still flows")
            assert (await next_received(b, 10)).data == b"\x01still flows"
        finally:
            await a.aclose()
            await b.aclose()
