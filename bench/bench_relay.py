"""Relay throughput and latency through one hub over the internet link, with the durable store.

    A (here: signs, stores, routes) --internet--> B (relay, `beredt run`) --internet--> C (`beredt run`)

Phase 1 offers messages as fast as A can submit them and reports what arrives at C per second.
Phase 2 paces 500 messages/s and reports the latency from A's submit to C's durable commit (read from
C's own store after the run, so measuring adds no load). The crypto floor (Ed25519 sign + verify alone,
one core) is printed beside, so the relay rate can be read as a fraction of it.

    .venv/bin/python bench/bench_relay.py [--messages 10000] [--rate 500] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.relay.settings import LinkConfig, PeerConfig, Timing
from hub.service.assembly import open_hub
from hub.service.config import load
from tests.hubproc import HubProcess, free_port


def crypto_floor(seconds: float = 1.0) -> tuple[float, float]:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = b"x" * 120
    signature = key.sign(message)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        key.sign(message)
        count += 1
    signs = count / (time.perf_counter() - start)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        public.verify(signature, message)
        count += 1
    return signs, count / (time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def arrivals(db: Path) -> dict[str, float]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return {
            row[0].hex(): row[1]
            for row in conn.execute("SELECT id, accepted_at FROM messages WHERE for_me=1")
        }


async def wait_all(db: Path, ids: set[str], timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        seen = arrivals(db)
        if ids <= seen.keys() or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.25)


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="beredt-bench-"))
    b = HubProcess.create(work / "b", "Relay", "relay")
    c = HubProcess.create(work / "c", "Sink", "care-home")
    a_identity = Identity.generate("Source", "staff")
    a_port = free_port()
    a_url = f"http://127.0.0.1:{a_port}"
    b.config["peers"] = [
        {"node": a_identity.node_id.hex(), "name": "Source", "links": {"internet": a_url}},
        {"node": c.node_id, "name": "Sink", "links": {"internet": c.internet_url}},
    ]
    b.config["routes"] = {a_identity.node_id.hex(): [a_identity.node_id.hex()], "default": [c.node_id]}
    b.config["log"] = {"level": "WARNING"}
    b.write_config()
    c.add_peer(b, {"internet": b.internet_url})
    c.set_default_route([b])
    c.config["log"] = {"level": "WARNING"}
    c.write_config()
    for hub in (b, c):
        hub.cli("roster", "add", a_identity.card.encode())
    b.trust(c)
    c.trust(b)
    (work / "a").mkdir()
    base = load(b.config_path)
    a_config = type(base)(
        name="Source",
        role=base.role,
        data_dir=work / "a",
        links=(LinkConfig("internet", "internet", {"kind": "internet", "listen": f"127.0.0.1:{a_port}"}),),
        peers=(PeerConfig(bytes.fromhex(b.node_id), "Relay", {"internet": b.internet_url}),),
        default_route=(bytes.fromhex(b.node_id),),
        timing=Timing(e2e_ack_delay=0.05),
    )
    b.start()
    c.start()
    try:
        async with open_hub(a_config, a_identity) as a:
            a.roster.add(Identity.load(b.dir / "data" / "identity.key").card)
            a.roster.add(Identity.load(c.dir / "data" / "identity.key").card)
            runner = asyncio.create_task(a.run())
            await a.ready.wait()
            recipient = bytes.fromhex(c.node_id)
            db = c.dir / "data" / "store.db"
            assert b.process is not None

            # Phase 1: saturation.
            print(f"phase 1: {args.messages} messages offered as fast as possible ...", flush=True)
            sent: dict[str, float] = {}
            cpu_before, start = cpu_seconds(b.process.pid), time.time()

            async def submit(i: int) -> None:
                t = time.time()
                message_id = await a.submit(Kind.TEXT, recipient, f"status {i:06d}".encode())
                sent[message_id.hex()] = t

            for chunk in range(0, args.messages, 200):
                await asyncio.gather(*(submit(i) for i in range(chunk, min(chunk + 200, args.messages))))
            seen = await wait_all(db, set(sent), timeout=120)
            got = [seen[i] for i in sent if i in seen]
            elapsed = max(got) - start
            relay_cpu = cpu_seconds(b.process.pid) - cpu_before
            print(
                f"  delivered {len(got)}/{len(sent)} in {elapsed:.2f} s"
                f" -> {len(got) / elapsed:,.0f} messages/s"
                f" through the relay (relay CPU {relay_cpu:.1f} s = {relay_cpu / elapsed:.0%} of one core)"
            )

            # Phase 2: paced latency.
            total = int(args.rate * args.seconds)
            print(f"phase 2: {total} messages paced at {args.rate}/s ...", flush=True)
            paced: dict[str, float] = {}
            interval = 1.0 / args.rate
            t0 = time.monotonic()
            pending: set[asyncio.Task[None]] = set()

            async def submit_paced(i: int) -> None:
                t = time.time()
                message_id = await a.submit(Kind.TEXT, recipient, f"paced {i:06d}".encode())
                paced[message_id.hex()] = t

            for i in range(total):
                delay = t0 + i * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(submit_paced(i))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)
            seen = await wait_all(db, set(paced), timeout=60)
            latencies = sorted((seen[i] - t) * 1000 for i, t in paced.items() if i in seen)
            p50 = statistics.median(latencies)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(
                f"  delivered {len(latencies)}/{total}; latency A submit -> C stored: p50 {p50:.1f} ms,"
                f" p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
            )
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
    finally:
        b.stop()
        c.stop()

    signs, verifies = crypto_floor()
    rate = len(got) / elapsed
    print()
    print(f"{'figure':<44}{'measured':>14}{'budget':>14}")
    print(f"{'relay throughput, messages/s':<44}{rate:>14,.0f}{'>= 2,000':>14}")
    print(f"{'p99 latency at ' + str(args.rate) + '/s, ms':<44}{p99:>14.1f}{'<= 50':>14}")
    print(f"{'p50 latency at ' + str(args.rate) + '/s, ms':<44}{p50:>14.1f}{'':>14}")
    print(f"{'crypto floor: Ed25519 sign/s (one core)':<44}{signs:>14,.0f}")
    print(f"{'crypto floor: Ed25519 verify/s (one core)':<44}{verifies:>14,.0f}")
    print(f"{'relay rate / verify floor':<44}{rate / verifies:>14.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
