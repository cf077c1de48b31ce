"""A hub killed while it works batches of frames loses nothing it hop-acked: a hop ack leaves only after
the commit that holds its frame. A sender streams signed frames into a real ``beredt run`` process over
its internet link, the process is SIGKILLed mid-stream, and its store must hold every frame it acked;
after a restart the sender resends everything and each frame is stored exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from drill.topology import free_port
from hub.core.frame import Frame, Kind, decode_frame
from hub.core.identity import Identity
from hub.relay.acks import decode_ids
from tests.hubproc import HubProcess
from tests.inproc import eventually
from transports.internet import FRAMES_PATH, PROBE_PATH, REPLY_TO_HEADER, BatchDecoder, encode_batch

FRAMES = 12000  # enough that a hub answering fast still has most of the stream ahead of it at the kill
BATCH = 64
KILL_AFTER = 300  # hop-acked frames before the kill: the hub is busy with the rest when it dies


class Sender:
    """A peer hub reduced to its wire: posts frames, takes the hop acks that come back."""

    def __init__(self, identity: Identity, port: int, hub: HubProcess) -> None:
        self.identity, self.port, self.hub = identity, port, hub
        self.acked: set[bytes] = set()
        self.headers = {
            REPLY_TO_HEADER: f"http://127.0.0.1:{port}",
            "Content-Type": "application/octet-stream",
        }

    async def frames_in(self, request: web.Request) -> web.Response:
        decoder = BatchDecoder()
        for data in decoder.receive_data(await request.read()):
            frame = decode_frame(data)
            if frame.kind is Kind.HOP_ACK:
                self.acked.update(decode_ids(frame.payload))
        decoder.end()
        return web.Response(status=204)

    async def probe(self, request: web.Request) -> web.Response:
        return web.Response(text=self.identity.node_id.hex())

    async def serve(self) -> web.AppRunner:
        """Listen on ``port`` for the hub's hop acks and probes; the caller cleans the runner up."""
        app = web.Application()
        app.router.add_post(FRAMES_PATH, self.frames_in)
        app.router.add_get(PROBE_PATH, self.probe)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner

    async def post_all(self, session: aiohttp.ClientSession, wires: list[bytes], stop: asyncio.Event) -> None:
        """Four POSTs of ``BATCH`` frames in flight, each retried while the hub is busy, until ``stop``."""
        batches = iter(range(0, len(wires), BATCH))

        async def worker() -> None:
            for start in batches:
                body = encode_batch(wires[start : start + BATCH])
                while not stop.is_set():
                    try:
                        async with session.post(
                            self.hub.internet_url + FRAMES_PATH, data=body, headers=self.headers
                        ) as response:
                            if response.status < 300:
                                break
                    except aiohttp.ClientError:
                        pass  # the hub is dead or restarting: try again
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(worker() for _ in range(4)))


def stored_from(hub: HubProcess, sender: Identity) -> list[bytes]:
    """Read from a stopped (or killed) hub's store: a running hub holds it for itself alone."""
    # closed at once: a connection left to the garbage collector would keep the hub from starting again
    with contextlib.closing(sqlite3.connect(hub.dir / "data" / "store.db")) as db:
        return [row[0] for row in db.execute("SELECT id FROM messages WHERE sender=?", (sender.node_id,))]


async def test_a_hub_killed_mid_batch_keeps_every_frame_it_acked(tmp_path: Path) -> None:
    source = Identity.generate("Kilde", "staff")
    port = free_port()
    hub = HubProcess.create(tmp_path / "hub", "Aarhus krisestab", "staff")
    hub.config["peers"] = [
        {"node": source.node_id.hex(), "name": "Kilde", "links": {"internet": f"http://127.0.0.1:{port}"}}
    ]
    hub.write_config()
    hub.cli("roster", "add", source.card.encode())
    recipient = bytes.fromhex(hub.node_id)
    now = int(time.time())
    frames: list[Frame] = [
        source.sign(Kind.TEXT, recipient, f"besked {i:05d}".encode(), created=now, ttl_minutes=60)
        for i in range(FRAMES)
    ]
    wires = [frame.encode() for frame in frames]
    sender = Sender(source, port, hub)
    runner = await sender.serve()
    await asyncio.to_thread(hub.start)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            stop = asyncio.Event()
            streaming = asyncio.create_task(sender.post_all(session, wires, stop))
            await eventually(lambda: len(sender.acked) >= KILL_AFTER, timeout=120)
            await asyncio.to_thread(hub.kill)
            acked_before_kill = set(sender.acked)
            stop.set()
            await streaming
            stored = set(await asyncio.to_thread(stored_from, hub, source))
            assert acked_before_kill <= stored, f"{len(acked_before_kill - stored)} acked frames lost"
            assert len(stored) < FRAMES, "the hub died before it had taken the whole stream"

            await asyncio.to_thread(hub.start)
            await sender.post_all(session, wires, asyncio.Event())
            await eventually(lambda: len(sender.acked) == FRAMES, timeout=120)
        await asyncio.to_thread(hub.stop)
        after = await asyncio.to_thread(stored_from, hub, source)
        assert sorted(after) == sorted(frame.id for frame in frames), "every frame stored exactly once"
    finally:
        await asyncio.to_thread(hub.kill)
        await runner.cleanup()
