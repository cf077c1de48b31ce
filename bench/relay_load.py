"""Load generator for ``bench_relay.py``: a peer hub reduced to its wire, in a process of its own.

It signs every frame *before* the measured run, then POSTs them to the relay's internet link port
(``POST /v1/frames``, length-prefixed batches, ``X-Beredt-Reply-To`` naming its own URL), so the relay
pays for verifying, storing and forwarding each frame and the sender pays only for HTTP. Paced, the frames
go through a hub's own internet link (``transports.internet``, default options): each frame is handed to
it when it falls due, the link's pump makes the POSTs as it does in a hub (a frame arriving at an idle
pump waits ``batch_delay`` for company, one POST at a time, what queued meanwhile rides in the next).
Flooded, up to ``IN_FLIGHT`` POSTs of ``BATCH`` frames are outstanding at once, more than one link
sends, so that the relay, not the sender, is the limit. It answers the relay the way a hub does: it
serves ``/v1/probe``, takes the relay's hop acks, and hop-acks the end-to-end acks the relay brings
back (otherwise the relay would resend them and measure its own retries). Its stamps: ``sent_at``
when a frame fell due (paced: the start plus its place over the rate, so a generator running late counts
its lateness) or its POST began (flooded), ``taken_at`` when the relay
answered the POST carrying it.

Protocol with the benchmark: the generator prints ``ready`` once its frames are signed and its port
listens, sends on a ``go`` line on stdin, prints ``sent`` when the relay has taken every frame (2xx),
keeps answering until a ``stop`` line, then writes its report as JSON to ``--out``: the wall-clock time
each frame left (by id), when the relay answered the POST carrying it and when its hop ack came, the
POSTs the relay refused as busy (503, retried), and the ids it acked.

    python bench/relay_load.py --key a.key --to <C id> --relay http://127.0.0.1:8581 --port 8580 \\
        --count 10000 [--rate 500] --out result.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

from hub.core.frame import Kind, Priority, decode_frame
from hub.core.identity import Identity
from hub.core.transport import TransportContext
from hub.relay.acks import MAX_IDS_PER_ACK, decode_ids, encode_ids
from hub.relay.lanes import frame_rank
from transports.internet import (
    FRAMES_PATH,
    PROBE_PATH,
    REPLY_TO_HEADER,
    BatchDecoder,
    InternetOptions,
    InternetTransport,
    encode_batch,
)

BATCH = 64  # frames per POST, the internet link's default batch_max
IN_FLIGHT = 4  # POSTs outstanding at once when sending as fast as the relay takes them
TICK = 0.001  # paced mode hands the link what fell due every millisecond


class Generator:
    def __init__(self, args: argparse.Namespace) -> None:
        self.identity = Identity.load(Path(args.key))
        self.relay = args.relay.rstrip("/")
        self.relay_id = bytes.fromhex(args.relay_id)
        self.url = f"http://127.0.0.1:{args.port}"
        self.port = args.port
        self.rate = args.rate
        now = int(time.time())
        recipient = bytes.fromhex(args.to)
        self.frames = [
            self.identity.sign(
                Kind.TEXT, recipient, f"{args.tag} {i:07d}".encode(), created=now, ttl_minutes=60
            )
            for i in range(args.count)
        ]
        self.wire = [frame.encode() for frame in self.frames]
        self.sent_at: dict[str, float] = {}
        self.taken_at: dict[str, float] = {}  # when B answered the POST that carried the frame (2xx)
        self.hop_acked_at: dict[str, float] = {}  # when B's hop ack for the frame reached us
        self.busy = 0
        self.hop_acked: set[bytes] = set()
        self.e2e_acked: set[bytes] = set()
        self.session: aiohttp.ClientSession | None = None
        self.acking: set[asyncio.Task[None]] = set()
        self.headers = {REPLY_TO_HEADER: self.url, "Content-Type": "application/octet-stream"}

    # -- what the relay sends us ------------------------------------------------------------------

    async def frames_in(self, request: web.Request) -> web.Response:
        decoder = BatchDecoder()
        frames = decoder.receive_data(await request.read())
        decoder.end()
        acks: list[bytes] = []
        for data in frames:
            frame = decode_frame(data)
            if frame.kind is Kind.HOP_ACK:
                ids = decode_ids(frame.payload)
                self.hop_acked.update(ids)
                now = time.time()
                for message_id in ids:
                    self.hop_acked_at.setdefault(message_id.hex(), now)
            elif frame.kind is Kind.ACK:
                self.e2e_acked.update(decode_ids(frame.payload))
                acks.append(frame.id)
        if acks:  # answered after this response, as a hub's ack batcher would
            task = asyncio.get_running_loop().create_task(self.hop_ack(acks))
            self.acking.add(task)
            task.add_done_callback(self.acking.discard)
        return web.Response(status=204)

    async def probe(self, request: web.Request) -> web.Response:
        return web.Response(text=self.identity.node_id.hex())

    async def hop_ack(self, ids: list[bytes]) -> None:
        now = int(time.time())
        frames = [
            self.identity.sign(
                Kind.HOP_ACK, self.relay_id, encode_ids(ids[i : i + MAX_IDS_PER_ACK]), created=now,
                ttl_minutes=10, priority=Priority.NORMAL,
            ).encode()
            for i in range(0, len(ids), MAX_IDS_PER_ACK)
        ]  # fmt: skip
        await self.post(frames)

    # -- what we send -------------------------------------------------------------------------------

    async def post(self, frames: list[bytes]) -> None:
        """POST until the relay takes the batch (2xx); a 503 (its receive queue is full) is retried."""
        assert self.session is not None
        body = encode_batch(frames)
        while True:
            async with self.session.post(
                self.relay + FRAMES_PATH, data=body, headers=self.headers
            ) as response:
                if response.status < 300:
                    return
                if response.status != 503:
                    raise SystemExit(f"relay refused a batch: HTTP {response.status} {await response.text()}")
            self.busy += 1
            await asyncio.sleep(0.05)

    async def hand_to_link(self, link: InternetTransport, start: int, end: int, began: float) -> None:
        """Frames ``start:end`` handed to ``link`` at once, as a hub's router hands it a batch. Each is
        stamped at the moment it fell due (``began`` + its place / rate), not when this task got to run: a
        generator that falls behind adds its lateness to the latency instead of hiding it."""
        for index, frame in enumerate(self.frames[start:end], start):
            self.sent_at[frame.id.hex()] = began + index / self.rate
        errors = await link.send_batch(
            self.relay, [(data, int(Priority.NORMAL)) for data in self.wire[start:end]]
        )
        if any(errors):
            raise SystemExit(f"the link could not send to the relay: {next(e for e in errors if e)}")
        taken = time.time()
        for frame in self.frames[start:end]:
            self.taken_at[frame.id.hex()] = taken

    async def post_stamped(self, start: int, end: int) -> None:
        stamp = time.time()
        for frame in self.frames[start:end]:
            self.sent_at[frame.id.hex()] = stamp
        await self.post(self.wire[start:end])
        taken = time.time()
        for frame in self.frames[start:end]:
            self.taken_at[frame.id.hex()] = taken

    async def flood(self) -> None:
        """As fast as the relay takes them: up to ``IN_FLIGHT`` POSTs of ``BATCH`` frames outstanding."""
        batches = iter(range(0, len(self.wire), BATCH))

        async def worker() -> None:
            for start in batches:
                await self.post_stamped(start, min(start + BATCH, len(self.wire)))

        async with asyncio.TaskGroup() as group:
            for _ in range(IN_FLIGHT):
                group.create_task(worker())

    async def paced(self) -> None:
        """``rate`` frames per second, handed to a hub's internet link as they fall due (checked every
        ``TICK``); the link decides how they share POSTs."""
        context = TransportContext(
            self.identity.node_id.hex(), Path(), logging.getLogger("relay_load"), frame_rank=frame_rank
        )
        # Its own listener is not used: the reply-to names ours, where the relay's hop acks are counted.
        # A POST may take 30 s, as flooded: a hub would resend what failed, the benchmark would stop.
        options = InternetOptions("127.0.0.1", 0, public_url=self.url, timeout=30.0)
        link = InternetTransport("internet", options, context)
        await link.start()
        try:
            start, began = time.monotonic(), time.time()
            done = 0
            async with asyncio.TaskGroup() as group:
                while done < len(self.wire):
                    due = min(len(self.wire), int((time.monotonic() - start) * self.rate) + 1)
                    if due > done:
                        group.create_task(self.hand_to_link(link, done, due, began))
                        done = due
                    await asyncio.sleep(TICK)
        finally:
            await link.aclose()

    async def run(self, out: Path) -> None:
        app = web.Application()
        app.router.add_post(FRAMES_PATH, self.frames_in)
        app.router.add_get(PROBE_PATH, self.probe)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as self.session:
            print("ready", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)  # "go"
            await (self.paced() if self.rate else self.flood())
            print("sent", flush=True)
            await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
        await runner.cleanup()
        out.write_text(  # noqa: ASYNC240 - the run is over; nothing else waits on this loop
            json.dumps(
                {
                    "sent_at": self.sent_at,
                    "taken_at": self.taken_at,
                    "hop_acked_at": self.hop_acked_at,
                    "busy_refusals": self.busy,
                    "hop_acked": len(self.hop_acked & {f.id for f in self.frames}),
                    "e2e_acked": len(self.e2e_acked & {f.id for f in self.frames}),
                }
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--key", required=True, help="the sending node's identity key file")
    parser.add_argument("--to", required=True, help="recipient node id (16 hex digits)")
    parser.add_argument("--relay", required=True, help="the relay's internet link base URL")
    parser.add_argument("--relay-id", required=True, help="the relay's node id (hop acks are signed to it)")
    parser.add_argument("--port", type=int, required=True, help="port this generator listens on")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="frames per second; 0: as fast as taken")
    parser.add_argument("--tag", default="load", help="text put before each frame's number")
    parser.add_argument("--out", type=Path, required=True, help="where the JSON report goes")
    args = parser.parse_args()
    asyncio.run(Generator(args).run(args.out))


if __name__ == "__main__":
    main()
