"""Restart with a large queue: how long until a hub serves again with 100,000 messages pending.

Fills a store with N accepted messages queued for one next hop whose link is down, then measures opening
the hub on it (integrity check, dedup index, resuming every delivery) until it is ready, as `beredt run`
would after a power cut. Budget: serving again within 5 s at 100,000 queued messages.

    .venv/bin/python bench/bench_restart.py [--messages 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.relay.roster import Role
from hub.relay.settings import LinkConfig, PeerConfig
from hub.relay.store import Store
from hub.service.assembly import open_hub
from hub.service.config import HubConfig


async def fill(path: Path, identity: Identity, hop: bytes, count: int) -> float:
    store = await Store.open(path, max_messages=count + 10)
    start = time.perf_counter()
    now = int(time.time())
    for chunk in range(0, count, 1000):
        frames = [
            identity.sign(Kind.TEXT, hop, f"status {i:07d}".encode(), created=now, ttl_minutes=24 * 60)
            for i in range(chunk, min(chunk + 1000, count))
        ]
        await asyncio.gather(
            *(store.accept(f, f.encode(), hops=[hop], local=True, for_me=False, via=None) for f in frames)
        )
    await store.close()
    return time.perf_counter() - start


async def run(count: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="beredt-restart-"))
    me = Identity.generate("Aarhus", "staff")
    far = Identity.generate("Solgaarden", "care-home")
    print(f"filling a store with {count:,} queued messages ...", flush=True)
    filled = await fill(work / "store.db", me, far.node_id, count)
    size = sum(p.stat().st_size for p in work.glob("store.db*"))  # noqa: ASYNC240 - a benchmark report
    print(f"  {filled:.1f} s ({count / filled:,.0f} accepted/s), database {size / 1e6:.0f} MB")

    config = HubConfig(
        name="Aarhus",
        role=Role.STAFF,
        data_dir=work,
        links=(LinkConfig("memory", "memory", {"kind": "memory", "medium": "bench", "address": "a"}),),
        peers=(PeerConfig(far.node_id, "Solgaarden", {"memory": "nobody-home"}),),
        default_route=(far.node_id,),
        max_messages=count + 10,
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    async with open_hub(config, me) as hub:
        task = asyncio.create_task(hub.run())
        await hub.ready.wait()
        ready = time.perf_counter() - start
        resumed = hub.router.open_count()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print()
    print(f"{'figure':<46}{'measured':>12}{'budget':>12}")
    print(f"{'serving again after restart, s':<46}{ready:>12.2f}{'<= 5':>12}")
    print(f"{'deliveries resumed':<46}{resumed:>12,}{count:>12,}")
    print(f"{'peak RSS growth while resuming, MB':<46}{(rss_after - rss_before) / 1024:>12.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    asyncio.run(run(parser.parse_args().messages))


if __name__ == "__main__":
    main()
