"""Restart with a full queue: a `beredt run` process on a store of 100,000 queued messages, cold cache.

What is measured, on a real hub process (``python -m hub.cli run``) started from nothing:

- time to serving: from starting the process until its API answers ``/healthz`` with ``ok: true``, which
  the hub sets once its store is open and the first page of each next hop's queue is tracked (the rest is
  resumed a page at a time as those settle; it stays on disk until then). The store holds --messages
  accepted messages queued for one next hop whose link is down, written beforehand.
- the CPU the process used up to serving (user and system, from /proc): against the time to serving, it
  says whether a slow start was work or waiting for the machine;
- peak RSS (``VmHWM`` from /proc) when it starts serving, and again --settle seconds later while the
  resumed deliveries are being tried; the CPU the process used over those seconds (its link is down, so
  this is what waiting deliveries cost).

Before each start the page cache is dropped (``sync; echo 3 > /proc/sys/vm/drop_caches``, as root) so
Python, the libraries and the store are read from disk as after a reboot; if that is not allowed the
output says the cache was warm. The floor is the same process on an empty store, measured the same way
in the same run: what is left is the cost of the queue. Budgets: serving in <= 5 s, RSS <= 120 MB.
The machine is shared: figures are noisy.

    .venv/bin/python bench/bench_restart.py [--messages 100000] [--settle 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drill.topology import free_port
from hub.api import local
from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.relay.store import Store
from tests.hubproc import BEREDT, REPO, HubProcess


def drop_caches() -> bool:
    """Empty the page cache; False if this user may not."""
    subprocess.run(["sync"], check=True)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def vm_kilobytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def healthz(hub: HubProcess) -> dict[str, Any] | None:
    """``/healthz`` over the hub's CLI socket: the network port answers one address twice a second after a
    burst, which would round the time to serving up to half a second."""
    try:
        status, answer = local.request(hub.socket_path, "GET", "/healthz", timeout=2)
    except local.Unreachable:
        return None
    return answer if status == 200 and isinstance(answer, dict) else None


def hub_on_dead_link(folder: Path, far: Identity) -> HubProcess:
    """A hub whose only route is a peer nobody answers for: everything it holds stays queued."""
    hub = HubProcess.create(folder, "Aarhus krisestab", "staff")
    dead = f"http://127.0.0.1:{free_port()}"
    hub.config["peers"] = [{"node": far.node_id.hex(), "name": "Solgaarden", "links": {"internet": dead}}]
    hub.config["routes"] = {"default": [far.node_id.hex()]}
    hub.config["timing"] = {}
    hub.config["log"] = {"level": "WARNING"}
    hub.write_config()
    hub.cli("roster", "add", far.card.encode())
    return hub


async def fill(hub: HubProcess, far: Identity, count: int) -> float:
    """Accept ``count`` signed messages for ``far`` into the hub's store, as its API would have."""
    me = Identity.load(hub.dir / "data" / "identity.key")
    store = await Store.open(hub.dir / "data" / "store.db", max_messages=count + 10, max_bytes=2**31)
    start, now = time.perf_counter(), int(time.time())
    try:
        for chunk in range(0, count, 1000):
            frames = [
                me.sign(Kind.TEXT, far.node_id, f"status {i:07d}".encode(), created=now, ttl_minutes=24 * 60)
                for i in range(chunk, min(chunk + 1000, count))
            ]
            await asyncio.gather(
                *(
                    store.accept(f, f.encode(), hops=[far.node_id], local=True, for_me=False, via=None)
                    for f in frames
                )
            )
    finally:
        await store.close()
    return time.perf_counter() - start


def start_and_measure(hub: HubProcess, settle: float) -> dict[str, Any]:
    """Start ``beredt run`` on ``hub`` from a dropped cache; time it to serving; read its peak RSS."""
    cold = drop_caches()
    log = (hub.dir / "hub.log").open("ab")
    start = time.perf_counter()
    process = subprocess.Popen(
        [*BEREDT, "run", "--config", str(hub.config_path)], cwd=REPO, stdout=log, stderr=log
    )
    log.close()
    try:
        while (answer := healthz(hub)) is None or not answer["ok"]:
            if process.poll() is not None:
                raise SystemExit(f"beredt run exited with {process.returncode}:\n{hub.log_tail()}")
            if time.perf_counter() - start > 120:
                raise SystemExit(f"not serving after 120 s:\n{hub.log_tail()}")
            time.sleep(0.01)
        serving = time.perf_counter() - start
        peak_at_ready = vm_kilobytes(process.pid, "VmHWM")
        cpu_at_ready = cpu_seconds(process.pid)
        time.sleep(settle)
        return {
            "cpu_at_ready": cpu_at_ready,
            "cpu_settled": (cpu_seconds(process.pid) - cpu_at_ready) / settle,
            "cold": cold,
            "serving": serving,
            "open": answer["open_deliveries"],
            "peak_at_ready": peak_at_ready / 1024,
            "peak_settled": vm_kilobytes(process.pid, "VmHWM") / 1024,
            "rss_settled": vm_kilobytes(process.pid, "VmRSS") / 1024,
        }
    finally:
        process.terminate()
        process.wait(30)


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="beredt-bench-restart-", ignore_cleanup_errors=True) as folder:
        await measure(args, Path(folder))


async def measure(args: argparse.Namespace, work: Path) -> None:
    far = Identity.generate("Solgaarden", "care-home")
    empty = hub_on_dead_link(work / "empty", far)
    full = hub_on_dead_link(work / "full", far)
    print(f"filling a store with {args.messages:,} queued messages ...", flush=True)
    filled = await fill(full, far, args.messages)
    size = sum(p.stat().st_size for p in (full.dir / "data").glob("store.db*"))
    print(
        f"  {filled:.1f} s ({args.messages / filled:,.0f} accepted/s), store {size / 1e6:.0f} MB", flush=True
    )
    print("starting `beredt run` on an empty store (the floor) ...", flush=True)
    floor = await asyncio.to_thread(start_and_measure, empty, args.settle)
    print(f"starting `beredt run` on {args.messages:,} queued messages ...", flush=True)
    loaded = await asyncio.to_thread(start_and_measure, full, args.settle)
    print()
    for name, figures in (("empty store", floor), ("full store", loaded)):
        cache = "cold (dropped before the start)" if figures["cold"] else "WARM: dropping it was not allowed"
        print(f"{name}: page cache {cache}; open deliveries when serving {figures['open']:,}")
    print()
    settle = f"{args.settle:g} s later"
    print(f"{'figure':<52}{'floor':>10}{'measured':>10}{'budget':>10}")
    serving, ready = (floor["serving"], loaded["serving"]), (floor["peak_at_ready"], loaded["peak_at_ready"])
    print(f"{'process start to API serving, s':<52}{serving[0]:>10.2f}{serving[1]:>10.2f}{'<= 5':>10}")
    label = "CPU from process start to serving, s"
    print(f"{label:<52}{floor['cpu_at_ready']:>10.2f}{loaded['cpu_at_ready']:>10.2f}")
    print(f"{'peak RSS when serving starts, MB':<52}{ready[0]:>10.0f}{ready[1]:>10.0f}")
    label = f"peak RSS {settle} (resumed deliveries being tried), MB"
    print(f"{label:<52}{floor['peak_settled']:>10.0f}{loaded['peak_settled']:>10.0f}{'<= 120':>10}")
    label = f"CPU over those {args.settle:g} s, share of a core"
    print(f"{label:<52}{floor['cpu_settled']:>10.0%}{loaded['cpu_settled']:>10.0%}")
    print(f"{'RSS ' + settle + ', MB':<52}{floor['rss_settled']:>10.0f}{loaded['rss_settled']:>10.0f}")
    print(f"{'queued messages':<52}{0:>10,}{args.messages:>10,}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000, help="queued messages in the store")
    parser.add_argument(
        "--settle", type=float, default=3.0, help="seconds of serving before RSS is read again"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
