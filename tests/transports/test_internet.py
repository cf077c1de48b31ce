"""The internet transport against itself on loopback: real aiohttp servers and clients on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import logging
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from hub.core.errors import (
    ConfigError,
    DeliveryRefused,
    FrameTooLarge,
    LinkDown,
    ProtocolError,
    TransportClosed,
)
from hub.core.frame import Kind, Priority
from hub.core.ranked import FrameRank, unranked
from hub.core.transport import LinkChanged, Received, TransportContext, TransportEvent
from hub.relay.lanes import frame_rank
from tests.hubproc import HubProcess
from tests.inproc import eventually
from tests.transports.contract import LinkPair, TransportContract, next_received
from transports.internet import REPLY_TO_HEADER, InternetOptions, InternetTransport, open_transport
from transports.internet_codec import MAX_MTU, BatchDecoder, encode_batch
from transports.internet_settings import answer_address

NODE_A, NODE_B = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"


def context(tmp_path: Path, node_id: str = NODE_A, frame_rank: FrameRank = unranked) -> TransportContext:
    return TransportContext(
        node_id=node_id,
        data_dir=tmp_path / "data",
        logger=logging.getLogger("test.internet"),
        frame_rank=frame_rank,
    )


@contextlib.asynccontextmanager
async def hub_link(
    tmp_path: Path, node_id: str = NODE_A, frame_rank: FrameRank = unranked, **options: Any
) -> AsyncIterator[InternetTransport]:
    transport = await open_transport(
        "internet", {"listen": "127.0.0.1:0", **options}, context(tmp_path, node_id, frame_rank)
    )
    try:
        yield transport
    finally:
        await transport.aclose()


async def next_event(stream: AsyncIterator[TransportEvent]) -> TransportEvent:
    return await asyncio.wait_for(anext(stream), 10.0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def raw_post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, str]:
    sent = {REPLY_TO_HEADER: "http://127.0.0.1:9"} if headers is None else headers
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/frames", data=body, headers=sent) as resp,
    ):
        return resp.status, await resp.text()


# --- the POST body codec ----------------------------------------------------------------------------

FRAMES = [b"\x01first", b"\x01" + bytes(range(256)) * 3, b"x"]


def test_batch_decodes_whole_body() -> None:
    decoder = BatchDecoder()
    assert decoder.receive_data(encode_batch(FRAMES)) == FRAMES
    decoder.end()


def test_batch_decodes_one_byte_at_a_time() -> None:
    decoder = BatchDecoder()
    got = [frame for byte in encode_batch(FRAMES) for frame in decoder.receive_data(bytes([byte]))]
    assert got == FRAMES
    decoder.end()


@pytest.mark.parametrize("trailing", [b"\x00", b"\x00\x05", b"\x00\x05abc"])
def test_batch_with_trailing_bytes_is_malformed(trailing: bytes) -> None:
    decoder = BatchDecoder()
    assert decoder.receive_data(encode_batch(FRAMES) + trailing) == FRAMES
    with pytest.raises(ProtocolError, match="ends inside a frame"):
        decoder.end()


def test_empty_body_and_zero_length_frame_are_malformed() -> None:
    with pytest.raises(ProtocolError, match="empty body"):
        BatchDecoder().end()
    with pytest.raises(ProtocolError, match="length zero"):
        BatchDecoder().receive_data(encode_batch([b"ok"]) + b"\x00\x00")


def test_oversize_frame_is_refused_as_soon_as_its_length_is_read() -> None:
    decoder = BatchDecoder(max_frame=100)
    with pytest.raises(FrameTooLarge, match="101 bytes exceeds MTU 100"):
        decoder.receive_data(b"\x00\x65")


def test_encoder_refuses_frames_it_cannot_length_prefix() -> None:
    with pytest.raises(ValueError, match="outside"):
        encode_batch([b""])
    with pytest.raises(ValueError, match="outside"):
        encode_batch([b"x" * (MAX_MTU + 1)])


@given(st.binary(max_size=600), st.integers(min_value=1, max_value=64))
def test_any_bytes_decode_or_raise_protocol_error(body: bytes, chunk: int) -> None:
    decoder = BatchDecoder()
    try:
        for at in range(0, len(body), chunk):
            decoder.receive_data(body[at : at + chunk])
        decoder.end()
    except ProtocolError:
        pass


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8), st.integers(1, 97))
def test_any_batch_round_trips_in_any_chunking(frames: list[bytes], chunk: int) -> None:
    body = encode_batch(frames)
    decoder = BatchDecoder()
    got = [
        frame for at in range(0, len(body), chunk) for frame in decoder.receive_data(body[at : at + chunk])
    ]
    decoder.end()
    assert got == frames


# --- the contract -----------------------------------------------------------------------------------


class TestInternetContract(TransportContract):
    @pytest.fixture
    async def link_pair(self, tmp_path: Path) -> AsyncIterator[LinkPair]:
        async with hub_link(tmp_path, NODE_A) as a, hub_link(tmp_path, NODE_B) as b:
            yield LinkPair(a, b, a.public_url, b.public_url)


# --- batching and priority --------------------------------------------------------------------------


async def test_concurrent_sends_share_few_posts_and_all_arrive(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_A) as a, hub_link(tmp_path, NODE_B) as b:
        sent = {b"\x01" + i.to_bytes(2, "big") * 20 for i in range(200)}
        await asyncio.gather(*(a.send(b.public_url, data) for data in sent))
        got = {(await next_received(b, 10)).data for _ in sent}
        assert got == sent
        assert a.stats.frames_sent == 200
        assert a.stats.posts_sent <= 8, f"200 concurrent sends took {a.stats.posts_sent} POSTs"
        assert b.stats.posts_received == a.stats.posts_sent


async def test_batches_respect_batch_max(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_A, batch_max=10) as a, hub_link(tmp_path, NODE_B) as b:
        await asyncio.gather(*(a.send(b.public_url, bytes([1, i])) for i in range(50)))
        assert b.stats.frames_received == 50
        assert b.stats.largest_batch_received == 10
        assert a.stats.posts_sent == 5


async def test_a_batch_goes_in_one_post_under_one_deadline_and_reports_each_frame(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_A, mtu=1000) as a, hub_link(tmp_path, NODE_B, mtu=500) as b:
        good = [bytes([1, i]) * 10 for i in range(40)]
        outcomes = await a.send_batch(b.public_url, [(data, 1) for data in good])
        assert outcomes == [None] * 40 and a.stats.posts_sent == 1
        assert {(await next_received(b, 10)).data for _ in good} == set(good)

        mixed = [(b"\x01first", 1), (b"", 1), (b"\x01" * 2000, 1), (b"\x01" * 700, 3), (b"\x01last", 0)]
        first, empty, above_ours, above_peers, last = await a.send_batch(b.public_url, mixed)
        assert first is None and last is None
        assert isinstance(empty, DeliveryRefused) and isinstance(above_ours, FrameTooLarge)
        assert isinstance(above_peers, FrameTooLarge) and "413" in str(above_peers)
        assert {(await next_received(b, 10)).data for _ in range(2)} == {b"\x01first", b"\x01last"}
        assert await a.send_batch(b.public_url, []) == []

    port = free_port()
    async with hub_link(tmp_path, NODE_A) as a:
        down = await a.send_batch(f"http://127.0.0.1:{port}", [(b"\x01one", 1), (b"\x01two", 1)])
        assert all(isinstance(error, LinkDown) for error in down) and down[0] is not down[1]
        refused = await a.send_batch("ftp://nowhere", [(b"\x01one", 1)])
        assert isinstance(refused[0], DeliveryRefused)


async def test_higher_priority_goes_first(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_A, batch_max=1) as a, hub_link(tmp_path, NODE_B) as b:
        sends = [a.send(b.public_url, bytes([1, i]), priority=0) for i in range(5)]
        sends.append(a.send(b.public_url, b"\x01flash", priority=3))
        await asyncio.gather(*sends)
        assert (await next_received(b, 10)).data == b"\x01flash"


@contextlib.asynccontextmanager
async def patient_link(tmp_path: Path, rank: FrameRank = unranked) -> AsyncIterator[InternetTransport]:
    """A link whose lone routine frame waits a minute for company (longer than options allow): whatever
    goes out sooner did not wait."""
    options = InternetOptions("127.0.0.1", 0, batch_delay=60.0)
    transport = InternetTransport("internet", options, context(tmp_path, NODE_A, rank))
    await transport.start()
    try:
        yield transport
    finally:
        await transport.aclose()


@pytest.mark.parametrize("priority", [Priority.URGENT, Priority.LIFE_SAFETY])
async def test_routine_frames_wait_for_company_and_an_urgent_one_ends_the_wait(
    tmp_path: Path, priority: Priority
) -> None:
    async with patient_link(tmp_path) as a, hub_link(tmp_path, NODE_B) as b:
        waiting = [
            asyncio.create_task(a.send(b.public_url, bytes([1, p]), priority=p))
            for p in (Priority.ROUTINE, Priority.NORMAL)
        ]
        await asyncio.sleep(0.05)  # the pump waits for company (were it later, the result is the same)
        assert not any(task.done() for task in waiting)
        await asyncio.wait_for(a.send(b.public_url, b"\x01flash", priority=int(priority)), 10)
        await asyncio.wait_for(asyncio.gather(*waiting), 10)
        assert a.stats.posts_sent == 1
        assert {(await next_received(b, 10)).data for _ in range(3)} == {
            b"\x01\x00",
            b"\x01\x01",
            b"\x01flash",
        }


async def test_a_full_post_of_routine_frames_goes_without_waiting_for_company(tmp_path: Path) -> None:
    async with patient_link(tmp_path) as a, hub_link(tmp_path, NODE_B) as b:
        full = InternetOptions("127.0.0.1", 0).batch_max  # patient_link keeps the default
        # A full POST's worth handed to the idle pump at once: no room for company, no wait.
        first = [(bytes([1, 0, n]), int(Priority.ROUTINE)) for n in range(full)]
        assert await asyncio.wait_for(a.send_batch(b.public_url, first), 10) == [None] * full
        # A lone frame waits for company until the frames sent after it fill its POST.
        lone = asyncio.create_task(a.send(b.public_url, b"\x01lone", priority=int(Priority.ROUTINE)))
        await asyncio.sleep(0.05)  # the pump waits for company (were it later, the result is the same)
        assert not lone.done()
        rest = [(bytes([1, 1, n]), int(Priority.ROUTINE)) for n in range(full - 1)]
        assert await asyncio.wait_for(a.send_batch(b.public_url, rest), 10) == [None] * (full - 1)
        await asyncio.wait_for(lone, 10)
        assert a.stats.posts_sent == 2
        got = {(await next_received(b, 10)).data for _ in range(2 * full)}
        assert got == {data for data, _ in first + rest} | {b"\x01lone"}


async def test_an_ack_goes_without_waiting_for_company(tmp_path: Path) -> None:
    ack = bytes([1, 0, 0, Kind.HOP_ACK]) + b"ack"  # ranked by its kind byte alone
    async with patient_link(tmp_path, frame_rank) as a, hub_link(tmp_path, NODE_B) as b:
        await asyncio.wait_for(a.send(b.public_url, ack, priority=0), 10)
        assert (await next_received(b, 10)).data == ack


# --- what the server refuses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "reason", "counted"),
    [
        (b"", None, "empty body", "bad_batch"),
        (b"\x00\x05abc", None, "ends inside a frame", "bad_batch"),
        (b"\x00\x02ok\x00", None, "ends inside a frame", "bad_batch"),
        (b"\x00\x00", None, "length zero", "bad_batch"),
        (b"\x00\x02ok", {}, REPLY_TO_HEADER, "bad_reply_to"),
        (b"\x00\x02ok", {REPLY_TO_HEADER: "ftp://somewhere"}, REPLY_TO_HEADER, "bad_reply_to"),
    ],
)
async def test_malformed_post_is_400_counted_and_delivers_nothing(
    tmp_path: Path, body: bytes, headers: dict[str, str] | None, reason: str, counted: str
) -> None:
    async with hub_link(tmp_path, NODE_B) as b:
        status, text = await raw_post(b.public_url, body, headers)
        assert (status, reason in text) == (400, True), text
        assert b.guard.refused == {counted: 1}
        assert await raw_post(b.public_url, encode_batch([b"\x01good"])) == (204, "")
        assert (await next_received(b, 10)).data == b"\x01good"
        assert b.stats.frames_received == 1


PARTIAL_POST = (
    b"POST /v1/frames HTTP/1.1\r\nHost: hub\r\nX-Beredt-Reply-To: http://127.0.0.1:9\r\n"
    b"Content-Length: 100\r\n\r\n\x00\x05ab"
)


async def test_sender_stalling_mid_body_gets_408_and_delivers_nothing(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_B, timeout=0.5) as b:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(b.bound_url.rsplit(":", 1)[1]))
        try:
            writer.write(PARTIAL_POST)
            answer = await asyncio.wait_for(reader.read(500), 10)
        finally:
            writer.close()
            await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"body not received within 0.5 s" in answer
        assert b.stats.frames_received == 0
        assert b.guard.refused["body_timeout"] == 1


async def test_sender_vanishing_mid_body_delivers_nothing_and_the_server_lives_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with hub_link(tmp_path, NODE_B) as b:
        _, writer = await asyncio.open_connection("127.0.0.1", int(b.bound_url.rsplit(":", 1)[1]))
        writer.write(PARTIAL_POST)
        await writer.drain()
        writer.transport.abort()
        assert await raw_post(b.public_url, encode_batch([b"\x01after"])) == (204, "")
        assert (await next_received(b, 10)).data == b"\x01after"
        assert b.stats.frames_received == 1
    assert "Error handling request" not in caplog.text


async def test_oversize_frame_and_oversize_body_are_413(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_B, mtu=1000) as b:
        status, text = await raw_post(b.public_url, encode_batch([b"x" * 1001]))
        assert status == 413
        assert "exceeds MTU 1000" in text
        status, text = await raw_post(b.public_url, encode_batch([b"y" * 900] * 80))
        assert status == 413
        assert "body" in text
        assert b.stats.frames_received == 0
        assert b.guard.refused == {"frame_too_large": 1, "body_too_large": 1}


async def test_frame_above_peer_mtu_raises_frame_too_large_and_spares_its_batch(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_A) as a, hub_link(tmp_path, NODE_B, mtu=1000) as b:
        results = await asyncio.gather(
            a.send(b.public_url, b"\x01small"),
            a.send(b.public_url, b"\x01" * 2000),
            a.send(b.public_url, b"\x01also small"),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], FrameTooLarge)
        assert "413" in str(results[1])
        assert {(await next_received(b, 10)).data for _ in range(2)} == {b"\x01small", b"\x01also small"}


async def test_client_errors_are_refusals_and_bad_addresses_too(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_A) as a, hub_link(tmp_path, NODE_B) as b:
        with pytest.raises(DeliveryRefused, match="HTTP 404") as refused:
            await a.send(f"{b.public_url}/not-a-hub", b"\x01x")
        assert refused.value.reason == "http-404"
        with pytest.raises(DeliveryRefused, match="not an http"):
            await a.send("!0badbeef", b"\x01x")
        with pytest.raises(LinkDown, match="HTTP 404"):
            await a.probe(f"{b.public_url}/not-a-hub")


@contextlib.asynccontextmanager
async def peer_answering(status: int) -> AsyncIterator[str]:
    """A web server that answers every POST with ``status``: a misbehaving or overloaded peer or proxy."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, text="as configured", headers={"Location": "http://127.0.0.1:9/"})

    app = web.Application()
    app.router.add_post("/v1/frames", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (302, DeliveryRefused),
        (403, DeliveryRefused),
        (408, LinkDown),
        (429, LinkDown),
        (500, LinkDown),
        (502, LinkDown),
    ],
)
async def test_http_status_maps_to_the_right_error(
    tmp_path: Path, status: int, error: type[Exception]
) -> None:
    async with peer_answering(status) as dest, hub_link(tmp_path, NODE_A) as a:
        with pytest.raises(error, match=f"HTTP {status}: as configured"):
            await a.send(dest, b"\x01x")


async def test_peer_dying_while_a_refused_batch_is_split_fails_the_rest_at_once(tmp_path: Path) -> None:
    posts = 0

    async def refuse_then_die(request: web.Request) -> web.Response:
        nonlocal posts
        posts += 1
        await request.read()
        if posts == 1:
            return web.Response(status=413, text="a frame is above my MTU")
        assert request.transport is not None
        request.transport.abort()  # the peer's process dies while the frames are retried one by one
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/v1/frames", refuse_then_die)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        async with hub_link(tmp_path, NODE_A) as a:
            dest = f"http://127.0.0.1:{runner.addresses[0][1]}"
            results = await asyncio.gather(
                *(a.send(dest, bytes([1, i])) for i in range(3)), return_exceptions=True
            )
            assert all(isinstance(result, LinkDown) for result in results), results
            # Leftover one-by-one retries would follow within milliseconds; allow them ample time to show.
            await asyncio.sleep(0.5)
            assert posts == 2, (
                "after the first single POST failed, the other frames were not tried one by one"
            )
    finally:
        await runner.cleanup()


# --- peers failing and coming back ------------------------------------------------------------------


async def test_peer_down_raises_link_down_reports_once_and_recovers(tmp_path: Path) -> None:
    port = free_port()
    dest = f"http://127.0.0.1:{port}"
    async with hub_link(tmp_path, NODE_A) as a:
        stream = a.events()
        for _ in range(3):
            with pytest.raises(LinkDown, match="POST failed"):
                await a.send(dest, b"\x01x")
        with pytest.raises(LinkDown):
            await a.probe(dest)
        down = await next_event(stream)
        assert isinstance(down, LinkChanged) and not down.up and down.peer == dest
        assert "POST failed" in down.reason
        async with hub_link(tmp_path, NODE_B, listen=f"127.0.0.1:{port}") as b:
            await a.send(dest, b"\x01back")
            # The very next event is the recovery: the three failures and the probe reported "down" once.
            assert await next_event(stream) == LinkChanged(up=True, reason="POST accepted", peer=dest)
            assert (await next_received(b, 10)).data == b"\x01back"
            await a.send(dest, b"\x01again")
        assert a.stats.frames_sent == 2


async def test_busy_receiver_answers_503_retry_after_and_the_sender_waits_without_reporting_down(
    tmp_path: Path,
) -> None:
    async with hub_link(tmp_path, NODE_A) as a, hub_link(tmp_path, NODE_B, receive_queue=2) as b:
        a_events = a.events()
        await asyncio.gather(a.send(b.public_url, b"\x01one"), a.send(b.public_url, b"\x01two"))
        third = asyncio.create_task(a.send(b.public_url, b"\x01three"))
        await eventually(lambda: a.stats.busy_answers >= 1)  # refused while the hub side has not read
        assert not third.done() and b.stats.refused_busy >= 1
        assert b.guard.refused["receive_queue_full"] == b.stats.refused_busy
        received = [(await next_received(b, 10)).data for _ in range(3)]
        assert received == [b"\x01one", b"\x01two", b"\x01three"]
        await asyncio.wait_for(third, 30)  # retried after Retry-After, not failed
        await a.aclose()
        seen = [event async for event in a_events]
        assert not [e for e in seen if isinstance(e, LinkChanged) and not e.up]


async def test_busy_receiver_still_takes_batches_with_acks_and_hands_acks_out_first(tmp_path: Path) -> None:
    hop_ack = bytes([1, 0, 0, Kind.HOP_ACK]) + b"ack"
    life_safety = bytes([1, 0, int(Priority.LIFE_SAFETY), Kind.ALERT]) + b"alert"
    routine = [bytes([1, 0, int(Priority.ROUTINE), Kind.TEXT, n]) for n in range(4)]
    async with hub_link(tmp_path, NODE_B, frame_rank=frame_rank, receive_queue=6) as b:
        for frame in routine[:3]:  # one per POST, up to the high-water mark (half the queue)
            assert (await raw_post(b.bound_url, encode_batch([frame])))[0] == 204
        status, _ = await raw_post(b.bound_url, encode_batch([routine[3]]))
        assert status == 503  # data only, over the mark
        status, _ = await raw_post(b.bound_url, encode_batch([routine[3], life_safety, hop_ack]))
        assert status == 204  # it carries an ack: taken whole, up to the full queue
        received = [(await next_received(b, 10)).data for _ in range(6)]
        assert received == [hop_ack, life_safety, *routine]


@contextlib.asynccontextmanager
async def stalling_server() -> AsyncIterator[str]:
    """A TCP server that accepts and reads but never answers, like a peer behind a dead route."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def test_stalled_peer_times_out_as_link_down(tmp_path: Path) -> None:
    async with stalling_server() as dest, hub_link(tmp_path, NODE_A, timeout=0.5) as a:
        with pytest.raises(LinkDown, match=r"no answer within 0\.5 s"):
            await a.send(dest, b"\x01x")


async def test_close_fails_pending_sends_with_transport_closed(tmp_path: Path) -> None:
    async with stalling_server() as dest, hub_link(tmp_path, NODE_A, timeout=30) as a:
        pending = [asyncio.create_task(a.send(dest, bytes([1, i]))) for i in range(3)]
        await asyncio.sleep(0.1)
        await asyncio.wait_for(a.aclose(), 10)
        for task in pending:
            with pytest.raises(TransportClosed):
                await task
        with pytest.raises(TransportClosed):
            await a.probe(dest)


async def test_probe_answers_with_the_node_id(tmp_path: Path) -> None:
    async with (
        hub_link(tmp_path, NODE_B) as b,
        aiohttp.ClientSession() as session,
        session.get(f"{b.public_url}/v1/probe") as response,
    ):
        assert (response.status, await response.text()) == (200, NODE_B)


async def test_public_url_is_the_source_peers_answer_to(tmp_path: Path) -> None:
    async with (
        hub_link(tmp_path, NODE_A, public_url="http://aarhus.example:8471") as a,
        hub_link(tmp_path, NODE_B) as b,
    ):
        await a.send(b.public_url, b"\x01hi")
        got = await next_received(b, 10)
        assert isinstance(got, Received) and got.source == "http://aarhus.example:8471"
        assert got.meta["remote"] == "127.0.0.1"


async def test_wildcard_listen_without_public_url_is_answered_at_the_connections_source(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with hub_link(tmp_path, NODE_A, listen="0.0.0.0:0") as a, hub_link(tmp_path, NODE_B) as b:
        port = a.bound_url.rsplit(":", 1)[1]
        assert a.public_url == f"http://0.0.0.0:{port}"  # what a says: "my connection's address"
        await a.send(b.public_url, b"\x01hi")
        got = await next_received(b, 10)
        assert isinstance(got, Received) and got.source == f"http://127.0.0.1:{port}"
        await b.send(got.source, b"\x01answer")  # the hop ack's path
        assert (await next_received(a, 10)).data == b"\x01answer"
    assert "peers answer to the address our connections come from" in caplog.text


@pytest.mark.parametrize(
    ("reply_to", "remote", "answer"),
    [
        ("http://0.0.0.0:8471", "192.0.2.7", "http://192.0.2.7:8471"),
        ("https://0.0.0.0:8471/beredt", "192.0.2.7", "https://192.0.2.7:8471/beredt"),
        ("http://[::]:8471", "fd00::7", "http://[fd00::7]:8471"),
        ("http://[::]:8471", "::ffff:192.0.2.7", "http://192.0.2.7:8471"),  # IPv4 on a dual-stack socket
        ("http://relay.example:8471", "192.0.2.7", "http://relay.example:8471"),  # named: used as given
        ("http://0.0.0.0:8471", None, "http://0.0.0.0:8471"),  # no TCP peer known: nothing to substitute
        ("relay.example", "192.0.2.7", None),
    ],
)
def test_answer_address_takes_only_a_wildcard_host_from_the_connection(
    reply_to: str, remote: str | None, answer: str | None
) -> None:
    assert answer_address(reply_to, remote) == answer


@pytest.mark.parametrize(
    ("listen", "public_url"),
    [
        ("0.0.0.0:8471", "http://0.0.0.0:8471"),
        ("[::]:8471", "http://[::]:8471"),
        ("127.0.0.1:0", "http://0.0.0.0:8471"),
        ("0.0.0.0:8471", "http://127.0.0.1:8471"),  # other machines would answer to themselves
        ("0.0.0.0:8471", "http://localhost:8471"),
    ],
)
async def test_an_unreachable_public_url_stops_the_hub_and_says_how_to_fix_it(
    tmp_path: Path, listen: str, public_url: str
) -> None:
    with pytest.raises(ConfigError) as error:
        await open_transport("net", {"listen": listen, "public_url": public_url}, context(tmp_path))
    assert error.value.key == "links.net.public_url"
    assert "er ikke en adresse, andre hubber kan nå" in str(error.value)
    assert "udelad public_url" in str(error.value)


# --- HTTPS ------------------------------------------------------------------------------------------


@pytest.fixture
def pki(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it, as PEM files."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Beredt test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = {"tls_ca": ca, "tls_cert": cert}
    paths = {}
    for option, certificate in files.items():
        path = tmp_path / f"{option}.pem"
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        paths[option] = str(path)
    key_path = tmp_path / "tls_key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    paths["tls_key"] = str(key_path)
    yield paths


async def test_https_with_a_private_ca(tmp_path: Path, pki: dict[str, str]) -> None:
    server = {"tls_cert": pki["tls_cert"], "tls_key": pki["tls_key"]}
    async with (
        hub_link(tmp_path, NODE_B, **server) as b,
        hub_link(tmp_path, NODE_A, tls_ca=pki["tls_ca"]) as trusting,
        hub_link(tmp_path, NODE_A) as system_trust,
        hub_link(tmp_path, NODE_A, tls_verify=False) as careless,
    ):
        assert b.public_url.startswith("https://127.0.0.1:")
        await trusting.send(b.public_url, b"\x01sealed in tls")
        assert (await next_received(b, 10)).data == b"\x01sealed in tls"
        await trusting.probe(b.public_url)
        with pytest.raises(LinkDown, match="certificate"):
            await system_trust.send(b.public_url, b"\x01refused")
        await careless.send(b.public_url, b"\x01unverified")
        assert (await next_received(b, 10)).data == b"\x01unverified"


# --- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key", "words"),
    [
        ({"listen": "127.0.0.1:0", "listne": "x"}, "links.net.listne", "ukendt nøgle; mente du 'listen'?"),
        ({}, "links.net.listen", "mangler; forventede 'vært:port'"),
        ({"listen": 8471}, "links.net.listen", ", ikke 8471"),
        ({"listen": "localhost"}, "links.net.listen", "forventede 'vært:port'"),
        ({"listen": "127.0.0.1:99999"}, "links.net.listen", "port 0..65535"),
        ({"listen": "127.0.0.1:0", "timeout": "5"}, "links.net.timeout", "forventede sekunder > 0, ikke '5'"),
        ({"listen": "127.0.0.1:0", "timeout": 0}, "links.net.timeout", "forventede sekunder > 0"),
        (
            {"listen": "127.0.0.1:0", "batch_max": 2.5},
            "links.net.batch_max",
            "forventede et heltal fra 1 til 10000",
        ),
        ({"listen": "127.0.0.1:0", "mtu": 70000}, "links.net.mtu", "forventede et heltal fra 64 til 65535"),
        (
            {"listen": "127.0.0.1:0", "tls_verify": "no"},
            "links.net.tls_verify",
            "forventede true eller false",
        ),
        ({"listen": "127.0.0.1:0", "public_url": "beredt.dk"}, "links.net.public_url", "http(s)-adresse"),
        ({"listen": "127.0.0.1:0", "tls_ca": "missing.pem"}, "links.net.tls_ca", "missing.pem findes ikke"),
    ],
)
async def test_config_errors_name_the_key_and_what_is_expected(
    tmp_path: Path, options: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as error:
        await open_transport("net", options, context(tmp_path))
    assert error.value.key == key
    assert words in str(error.value)


async def test_tls_cert_without_key_and_garbage_pem_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    ctx = context(tmp_path)  # relative paths resolve from the data directory's folder
    with pytest.raises(ConfigError, match="hører sammen") as error:
        await open_transport("net", {"listen": "127.0.0.1:0", "tls_cert": "cert.pem"}, ctx)
    assert error.value.key == "links.net.tls_cert"
    with pytest.raises(ConfigError, match="kan ikke indlæse certifikatet") as error:
        await open_transport(
            "net", {"listen": "127.0.0.1:0", "tls_cert": "cert.pem", "tls_key": "key.pem"}, ctx
        )
    assert error.value.key == "links.net.tls_cert"


async def test_port_in_use_is_a_config_error(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_A) as a:
        port = a.bound_url.rsplit(":", 1)[1]
        with pytest.raises(ConfigError, match=r"kan ikke lytte på 127\.0\.0\.1") as error:
            await open_transport("net", {"listen": f"127.0.0.1:{port}"}, context(tmp_path))
        assert error.value.key == "links.net.listen"


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_listen_address_gives_a_bracketed_url(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_A, listen="[::1]:0") as a, hub_link(tmp_path, NODE_B) as b:
        assert a.public_url.startswith("http://[::1]:")
        await a.send(b.public_url, b"\x01from v6")
        got = await next_received(b, 10)
        await b.send(got.source, b"\x01back to v6")
        assert (await next_received(a, 10)).data == b"\x01back to v6"


async def test_peer_dropping_the_connection_mid_post_is_link_down(tmp_path: Path) -> None:
    async def drop_after_some_bytes(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(40)  # part of the request line and headers, then the cable is pulled
        writer.transport.abort()

    server = await asyncio.start_server(drop_after_some_bytes, "127.0.0.1", 0)
    dest = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with hub_link(tmp_path, NODE_A) as a:
            stream = a.events()
            results = await asyncio.gather(
                *(a.send(dest, bytes([1, i]) * 100) for i in range(3)), return_exceptions=True
            )
            assert all(isinstance(result, LinkDown) for result in results), results
            down = await next_event(stream)
            assert isinstance(down, LinkChanged) and not down.up and "POST failed" in down.reason
    finally:
        server.close()


async def test_a_cancelled_send_that_has_not_left_is_never_sent(tmp_path: Path) -> None:
    async with hub_link(tmp_path, NODE_A, batch_delay=0.5) as a, hub_link(tmp_path, NODE_B) as b:
        doomed = asyncio.create_task(a.send(b.public_url, b"\x01doomed"))
        await asyncio.sleep(0.05)
        doomed.cancel()
        await asyncio.gather(doomed, return_exceptions=True)
        await a.send(b.public_url, b"\x01kept")
        assert (await next_received(b, 10)).data == b"\x01kept"
        assert (a.stats.frames_sent, b.stats.frames_received) == (1, 1)


# --- real hubs ----------------------------------------------------------------------------------------


def link_state(hub: HubProcess, peer: HubProcess) -> str:
    state: str = next(
        entry["state"] for entry in hub.get("/v1/links")["links"] if entry["peer"] == peer.node_id
    )
    return state


@pytest.fixture
def tls_pair(tmp_path: Path, pki: dict[str, str]) -> Iterator[tuple[HubProcess, HubProcess]]:
    """Two real hubs talking HTTPS; the PEM files sit next to each config and are named by relative path."""
    hubs = [
        HubProcess.create(tmp_path / name, name, role) for name, role in (("a", "staff"), ("b", "care-home"))
    ]
    for hub in hubs:
        (hub.dir / "tls").mkdir()
        for source in pki.values():
            shutil.copy(source, hub.dir / "tls" / Path(source).name)
        options = {option: f"tls/{Path(source).name}" for option, source in pki.items()}
        hub.add_link("internet", {**hub.config["links"]["internet"], **options})
    a, b = hubs
    a.add_peer(b, {"internet": f"https://127.0.0.1:{b.link_port}"})
    b.add_peer(a, {"internet": f"https://127.0.0.1:{a.link_port}"})
    a.set_default_route([b])
    b.set_default_route([a])
    a.trust(b)
    b.trust(a)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.kill()
        b.kill()


def test_real_hubs_relay_over_https_and_see_a_dead_peer_come_back(
    tls_pair: tuple[HubProcess, HubProcess],
) -> None:
    a, b = tls_pair
    first = a.send(b.node_id, "text", "over TLS")
    b.wait_for("the first message", lambda: any(m["id"] == first for m in b.inbox()))
    a.wait_for("the hop ack", lambda: a.message(first)["hops"][0]["state"] == "hop-acked")
    assert a.message(first)["hops"][0]["link"] == "internet"

    b.kill()
    a.wait_for("the internet link to b reported down", lambda: link_state(a, b) == "down", timeout=15)
    second = a.send(b.node_id, "text", "stored while b was away")
    b.start()
    b.wait_for("the stored message", lambda: any(m["id"] == second for m in b.inbox()), timeout=30)
    a.wait_for("the internet link to b back up", lambda: link_state(a, b) == "up", timeout=15)
    reply = b.send(a.node_id, "text", "tak")
    a.wait_for("the reply", lambda: any(m["id"] == reply for m in a.inbox()))
