"""The three-day bench's flood (``bench_three_days.py``, phase 4), sent from a process of its own.

In the bench's process the 80 homes share one event loop with the homes' server, their hop acks and the
console client, so a flood from there is as fast as that process posts, not as fast as the hub takes.
Here the homes' keys are loaded from files, their statuses signed before the flood starts, and only the
POSTs run while it lasts:

1. saturation, ``saturate`` seconds: every home sends batches back to back; a 503 is waited out for its
   Retry-After and the batch sent again. The hub's receive queue takes a burst at first, so the saturation
   rate is what it took in the second half; with no refusal in it the homes, not the hub, set the pace
   and the rate is not a saturation rate.
2. the flood, ``seconds``: batches are offered at ``factor`` times the saturation rate, paced, or times
   what the hub took in the flood's last three seconds if that is more (back to back, with every
   refused home waiting a whole second, the first part can measure less than the hub takes). Each tick
   the batches that fell due go out from homes that are free (not waiting for an answer nor for a
   Retry-After); a refused home waits Retry-After and offers its batch again when next due, while the
   other homes keep offering, so the attempted rate holds whatever the hub refuses. A batch due with no
   home free is counted as missed: the attempted rate achieved is printed beside the target. The rates
   compared are those of the second half, the hub's receive queue at its high-water mark throughout.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from hub.core.frame import Kind, Priority
from hub.core.identity import Identity
from hub.core.kinds import encode_payload
from transports.internet import FRAMES_PATH, REPLY_TO_HEADER, encode_batch

BATCH = 64  # statuses a POST: a home's hub sends up to ``batch_max`` (64) frames when it has a queue
SOURCES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
"""The sender's connections come from addresses of their own, a third of the homes from each, as 80 homes
come from addresses of their own in the field: the hub allows 32 connections per source address
(``ConnectionLimits.per_source``), and the bench's process already holds 48 from 127.0.0.1 for the homes'
other traffic. From one address, 32 batches in flight held the flood below twice what the hub takes."""
PER_SOURCE = 32
WINDOW = 3.0  # seconds over which the flood follows what the hub takes
SIGN_RATE = 5000.0
"""Statuses a second signed beforehand, for the whole run: more than this hub has taken here. A home that
runs out signs more as it goes, and the count of those is printed (they cost the sender's CPU meanwhile)."""


@dataclass(frozen=True)
class Plan:
    hub_url: str
    hub_id: bytes
    keys: list[Path]  # each home's key file
    reply_to: list[str]  # each home's address
    saturate: float
    seconds: float
    factor: float


class Sender:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.ids = [Identity.load(path) for path in plan.keys]
        per_home = int(SIGN_RATE * (plan.saturate + plan.seconds) / len(self.ids)) + BATCH
        self.signed = [[self.status(i, n) for n in range(per_home)] for i in range(len(self.ids))]
        self.used = [0] * len(self.ids)
        self.signed_late = 0
        self.attempted = self.taken = self.refused = self.busy = self.errors = 0
        self.sessions = [
            aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=60),
                connector=aiohttp.TCPConnector(limit=PER_SOURCE, local_addr=(source, 0)),
            )
            for source in SOURCES
        ]

    def status(self, i: int, n: int) -> bytes:
        body = {"facility": "Normal", "power": "generator", "fuel_hours": 40 + n % 30}
        return (
            self.ids[i]
            .sign(
                Kind.STATUS,
                self.plan.hub_id,
                encode_payload(Kind.STATUS, body),
                created=int(time.time()),
                ttl_minutes=24 * 60,
                priority=Priority.NORMAL,
            )
            .encode()
        )

    def batch(self, i: int) -> bytes:
        first = self.used[i]
        frames = self.signed[i][first : first + BATCH]
        self.signed_late += BATCH - len(frames)
        frames += [self.status(i, n) for n in range(first + len(frames), first + BATCH)]
        self.used[i] += BATCH
        return encode_batch(frames)

    async def post(self, i: int, body: bytes) -> float | None:
        """One attempt: ``None`` when the hub took the batch, else the seconds to wait before the next."""
        headers = {REPLY_TO_HEADER: self.plan.reply_to[i], "Content-Type": "application/octet-stream"}
        self.attempted += BATCH
        try:
            session = self.sessions[i % len(self.sessions)]
            async with session.post(self.plan.hub_url + FRAMES_PATH, data=body, headers=headers) as r:
                if r.status < 300:
                    self.taken += BATCH
                    return None
                if r.status != 503:
                    raise SystemExit(f"hub refused a batch: HTTP {r.status} {await r.text()}")
                self.busy += 1
                self.refused += BATCH
                return float(r.headers.get("Retry-After", "1"))
        except aiohttp.ClientConnectionError:
            self.errors += 1  # a kept-alive connection the hub closed as it was reused: sent again
            return 0.1

    async def saturation(self) -> dict[str, Any]:
        start = time.monotonic()
        deadline = start + self.plan.saturate

        async def home(i: int) -> None:
            body = self.batch(i)
            while time.monotonic() < deadline:
                wait = await self.post(i, body)
                if wait is None:
                    body = self.batch(i)
                else:
                    await asyncio.sleep(wait)  # the same batch again after the hub's Retry-After

        homes = asyncio.gather(*(home(i) for i in range(len(self.ids))))
        await asyncio.sleep(self.plan.saturate / 2)  # the first half fills the hub's receive queue
        middle, taken, busy = time.monotonic(), self.taken, self.busy
        await homes
        end = time.monotonic()
        return {
            "rate": (self.taken - taken) / (end - middle),
            "busy": self.busy - busy,  # refusals in the second half: the hub, not the homes, set the pace
            "wall": end - start,
            "steady": end - middle,
        }

    async def flood(self, saturation: float) -> dict[str, Any]:
        """Offer ``factor`` times the saturation rate: the rate of the saturation part, or what the hub
        took in the last ``WINDOW`` seconds if that is more (it too is taken under overload)."""
        loop = asyncio.get_running_loop()
        attempted0, taken0, refused0, busy0 = self.attempted, self.taken, self.refused, self.busy
        free: deque[int] = deque(range(len(self.ids)))
        pending: dict[int, bytes] = {}  # a refused batch, offered again when its home is next due
        tasks: set[asyncio.Task[None]] = set()
        missed = 0

        async def send(i: int) -> None:
            body = pending.pop(i, None) or self.batch(i)
            wait = await self.post(i, body)
            if wait is None:
                free.append(i)
            else:
                pending[i] = body
                loop.call_later(wait, free.append, i)

        start = last = time.monotonic()
        owed = 1.0  # batches due and not yet sent
        rate = saturation
        window: deque[tuple[float, int]] = deque([(start, self.taken)])  # (time, taken), every 0.25 s
        middle: tuple[float, int, int] | None = None
        while (now := time.monotonic()) - start < self.plan.seconds:
            if middle is None and now - start >= self.plan.seconds / 2:
                middle = (now, self.attempted, self.taken)
            if now - window[-1][0] >= 0.25:
                window.append((now, self.taken))
                if now - window[0][0] > WINDOW:
                    then, taken = window.popleft()
                    rate = max(saturation, (self.taken - taken) / (now - then))
            owed += self.plan.factor * rate * (now - last) / BATCH
            last = now
            while owed >= 1:
                owed -= 1
                if not free:
                    missed += 1
                    continue
                task = loop.create_task(send(free.popleft()))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(0.002)
        end = time.monotonic()
        attempted, taken = self.attempted, self.taken
        await asyncio.gather(*tasks)
        assert middle is not None
        return {
            "load": rate,  # the saturation load offered against at the end
            "target": self.plan.factor * rate,
            "attempted": (attempted - attempted0) / (end - start),
            "taken": (taken - taken0) / (end - start),
            # the second half, the hub's receive queue at its high-water mark throughout
            "steady_attempted": (attempted - middle[1]) / (end - middle[0]),
            "steady_taken": (taken - middle[2]) / (end - middle[0]),
            "refused": self.refused - refused0,
            "busy": self.busy - busy0,
            "missed": missed * BATCH,
            "wall": end - start,
            "start": start,  # CLOCK_MONOTONIC, the same clock in every process here
        }

    async def run(self) -> dict[str, Any]:
        try:
            saturation = await self.saturation()
            cpu1, t1 = time.process_time(), time.monotonic()
            flood = await self.flood(saturation["rate"])  # flood() applies the factor
            flood["cpu"] = (time.process_time() - cpu1) / (time.monotonic() - t1)
        finally:
            for session in self.sessions:
                await session.close()
        return {
            "saturation": saturation,
            "flood": flood,
            "errors": self.errors,
            "signed_late": self.signed_late,
        }


def run(plan: Plan) -> dict[str, Any]:
    """The child process's entry: sign, saturate, flood; returns the figures."""

    async def main() -> dict[str, Any]:
        return await Sender(plan).run()

    return asyncio.run(main())
