"""How long a lone send over the internet link takes: frames one at a time with a pause between them, so
every one reaches an idle pump. A routine or normal frame waits there up to ``batch_delay`` for company,
an urgent one does not. Two links in this process over loopback (default options), 200-byte frames;
each send is timed from the call to the answer of the POST that carried it.

    python bench/bench_internet_send.py [--count 500] [--every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.core.frame import Priority
from hub.core.transport import TransportContext
from transports.internet import InternetOptions, InternetTransport

FRAME = 200  # bytes


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drain(link: InternetTransport) -> None:
    async for _ in link.events():
        pass


async def lone_sends(
    a: InternetTransport, url: str, priority: Priority, count: int, every: float
) -> list[float]:
    """Milliseconds each of ``count`` sends took, one every ``every`` seconds at most."""
    took = []
    for n in range(count):
        data = n.to_bytes(4, "big") + os.urandom(FRAME - 4)
        start = time.perf_counter()
        await a.send(url, data, priority=int(priority))
        took.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(every)
    return took


async def measure(count: int, every: float) -> None:
    with tempfile.TemporaryDirectory() as folder:
        links = [
            InternetTransport(
                "internet",
                InternetOptions("127.0.0.1", 0),
                TransportContext(f"{n:016x}", Path(folder), logging.getLogger("bench.internet")),
            )
            for n in (1, 2)
        ]
        for link in links:
            await link.start()
        a, b = links
        reader = asyncio.create_task(drain(b))
        try:
            await lone_sends(a, b.public_url, Priority.NORMAL, 20, every)  # connection set up, code warm
            print(f"{count} lone {FRAME}-byte sends per priority, one every {every * 1000:g} ms or more;"
                  f" batch_delay {InternetOptions('127.0.0.1', 0).batch_delay * 1000:g} ms;"
                  f" load average {os.getloadavg()[0]:.1f}")  # fmt: skip
            for priority in (Priority.ROUTINE, Priority.NORMAL, Priority.URGENT, Priority.LIFE_SAFETY):
                took = await lone_sends(a, b.public_url, priority, count, every)
                print(
                    f"  {priority.name.lower():<12} median {statistics.median(took):5.1f} ms,"
                    f" p99 {percentile(took, 0.99):5.1f} ms, max {max(took):5.1f} ms"
                )
            print(f"POSTs {a.stats.posts_sent} for {a.stats.frames_sent} frames;"
                  f" load average after {os.getloadavg()[0]:.1f}")  # fmt: skip
        finally:
            reader.cancel()
            for link in links:
                await link.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=500, help="sends per priority")
    parser.add_argument("--every", type=float, default=10.0, help="milliseconds between two sends")
    args = parser.parse_args()
    asyncio.run(measure(args.count, args.every / 1000))


if __name__ == "__main__":
    main()
