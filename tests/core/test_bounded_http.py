"""ConnectionGuard on a real aiohttp server over loopback: caps, idle and slow connections, slow bodies."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from hub.core.bounded_http import ConnectionGuard, ConnectionLimits, GuardedSite, listen_tcp

LIMITS = ConnectionLimits(total=6, per_source=3, idle_timeout=0.5, body_timeout=0.5)
GET = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@dataclass
class Server:
    guard: ConnectionGuard
    port: int
    release: asyncio.Event


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    guard = ConnectionGuard(LIMITS)
    release = asyncio.Event()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def slow(request: web.Request) -> web.Response:
        await release.wait()  # a long-running handler (a live event stream) is not idle
        return web.Response(text="done")

    app = web.Application(middlewares=[guard.middleware])
    app.router.add_get("/hello", hello)
    app.router.add_post("/echo", echo)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    await GuardedSite(runner, listen_tcp("127.0.0.1", 0), guard).start()
    try:
        yield Server(guard, runner.addresses[0][1], release)
    finally:
        release.set()
        await runner.cleanup()


async def _connect(port: int, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def _answer(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(4096), 10)


async def _closed(reader: asyncio.StreamReader) -> bool:
    """True once the server closed the connection (within generous time on a loaded machine)."""
    with contextlib.suppress(ConnectionResetError):
        while await asyncio.wait_for(reader.read(4096), 10):
            pass
    return True


async def test_connections_over_the_per_source_cap_are_refused_and_others_still_served(
    server: Server,
) -> None:
    held = [await _connect(server.port) for _ in range(LIMITS.per_source)]
    reader, writer = await _connect(server.port)
    answer = await _answer(reader)
    assert answer.startswith(b"HTTP/1.1 503"), "the fourth from one source is refused"
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["code"] == "too_many_connections" and "prøv igen" in body["error"], body
    writer.close()
    other, other_writer = await _connect(server.port, "127.0.0.2")
    other_writer.write(GET)
    assert b"hello" in await _answer(other), "another source is still served"
    assert server.guard.refused["connections_over_source"] == 1
    for _, w in [*held, (other, other_writer)]:
        w.close()


async def test_the_total_cap_holds_across_sources(server: Server) -> None:
    held = [await _connect(server.port, f"127.0.0.{2 + i % 3}") for i in range(LIMITS.total)]
    reader, writer = await _connect(server.port, "127.0.0.9")
    assert (await _answer(reader)).startswith(b"HTTP/1.1 503")
    assert server.guard.refused["connections_over_total"] == 1
    for _, w in [*held, (reader, writer)]:
        w.close()


async def test_idle_and_slow_header_connections_are_closed_and_counted(server: Server) -> None:
    idle_reader, idle_writer = await _connect(server.port)
    slow_reader, slow_writer = await _connect(server.port)
    slow_writer.write(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finished
    assert await _closed(idle_reader) and await _closed(slow_reader)
    idle_writer.close()
    slow_writer.close()
    assert server.guard.refused["no_request_in_time"] == 2
    assert server.guard.open_connections == 0, "closed connections no longer count against the caps"


async def test_a_kept_alive_connection_closes_quietly_after_serving(server: Server) -> None:
    reader, writer = await _connect(server.port)
    writer.write(GET)
    assert b"hello" in await _answer(reader)
    assert await _closed(reader)
    writer.close()
    assert "no_request_in_time" not in server.guard.refused, "a served connection going idle is no attack"


async def test_a_body_that_does_not_arrive_is_408(server: Server) -> None:
    reader, writer = await _connect(server.port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nonly a few bytes")
    answer = await _answer(reader)
    assert answer.startswith(b"HTTP/1.1 408")
    assert "Indholdet kom ikke frem" in answer.decode()
    assert server.guard.refused["body_timeout"] == 1
    writer.close()


async def test_a_long_request_is_not_idle(server: Server) -> None:
    reader, writer = await _connect(server.port)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await asyncio.sleep(LIMITS.idle_timeout * 3)
    server.release.set()
    assert b"done" in await _answer(reader)
    writer.close()
