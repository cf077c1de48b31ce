"""What one relay hub sustains, and how long a message takes through it, in three processes:

    A  load generator (bench/relay_load.py, its own process): frames signed before the run, POSTed to
       B's internet link port (paced: through a hub's own internet link, which makes the POSTs as in a
       hub), B's hop acks taken, C's end-to-end acks hop-acked
    B  the relay: a real `beredt run` process, durable store; the hub being measured
    C  the recipient: a hub in this process, so its commit can be timed where it happens

Figures, each against what it is compared with:

- relay throughput: messages B delivers to C per second while A offers them all at once (B holds what
  it has not handled yet in its link's receive queue and answers 503 when that is full; A retries),
  counted as C commits them. Compared with the Ed25519 verify floor (signature checks per second on one
  core of this machine) measured in the same run, just before and just after: relaying a message costs B
  at least one verify, so the ratio says how close B gets to its crypto bound. Budget >= 30 %. The same
  ratio per CPU second (messages per second of B's CPU time, verifies per second of CPU time) is printed
  too: it does not depend on how much of a core the shared machine gave B.
- latency: A paces messages at --rate per second; each is timed from the moment it falls due at A
  (start + its place / rate, so a generator that runs late counts its lateness) and is handed to A's own
  internet link (whose pump may hold a normal-priority frame up to ``batch_delay`` for company and POSTs
  one batch at a time to B's link port) to C's ``MessageReceived`` event, which the hub publishes only
  after C's store has committed the message (synchronous=FULL). Budget p99 <= 50 ms at 500 messages/s.
- commit floor: how long one durable commit of one small row takes on the disk the stores are on
  (SQLite, WAL, synchronous=FULL, as the store commits), measured just before and just after phase 2. A
  message is committed twice on its way (at B and at C) and group commit makes a frame that arrives
  during a commit wait for the next one, so the latency cannot be below about two of these on this disk
  at this moment; the disk is shared with the other load on the machine.
- CPU used by B (from /proc, user + system) over the measured window, as a share of one core, and how
  long B's threads waited for a CPU (schedstat): waiting means other load on the machine held B back.
  A's and C's CPU are printed too so the reader can see which process was the limit.

The machine is shared and has two cores: figures are noisy, compare the ratio rather than the rate.

With ``--stages`` the latency phase is also broken down by stage for its slowest 1 % (see
bench/relay_stages.py for what each stamp is).

    .venv/bin/python bench/bench_relay.py [--messages 10000] [--rate 500] [--seconds 10] [--stages]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.relay_stages import LoopLag, ReceiptClock, relay_probe
from bench.relay_stages import report as stage_report
from drill.topology import free_port
from hub.core.errors import RefusalReason
from hub.core.identity import Identity
from hub.core.tasks import cancel_and_wait
from hub.relay.events import MessageReceived, Overflow
from hub.relay.hub import Hub
from hub.relay.roster import Role, Roster
from hub.relay.settings import LinkConfig, PeerConfig
from hub.service import heap
from hub.service.assembly import open_hub
from hub.service.config import HubConfig
from tests.hubproc import HubProcess

GENERATOR = Path(__file__).resolve().parent / "relay_load.py"
PROBE = Path(__file__).resolve().parent / "relay_probe"  # its sitecustomize.py, loaded into B


def verify_floor(seconds: float = 2.0) -> tuple[float, float]:
    """Ed25519 verifications of a 120-byte message (a small frame) on one core: per wall-clock second
    (what the machine gave us just now) and per CPU second (what a core of our own would do)."""
    key = Ed25519PrivateKey.generate()
    public, message = key.public_key(), b"x" * 120
    signature = key.sign(message)
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        public.verify(signature, message)
        count += 1
    return count / (time.perf_counter() - start), count / (time.process_time() - cpu)


def commit_floor(folder: Path, commits: int = 100) -> list[float]:
    """Milliseconds per durable commit of one small row, as the store commits (WAL, synchronous=FULL)."""
    path = folder / "commit-floor.db"
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS t(x BLOB)")
        db.commit()
        times = []
        for _ in range(commits):
            start = time.perf_counter()
            db.execute("INSERT INTO t VALUES (?)", (os.urandom(150),))
            db.commit()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        db.close()
    return times


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * share) - 1)]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runnable_wait(pid: int) -> float:
    """Seconds the threads of ``pid`` were ready to run but waited for a CPU (from their schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            pass
    return total / 1e9


@dataclass
class Arrivals:
    """Commit times at C of one phase's messages, and B's CPU at the first and the last of them."""

    expected: int
    relay_pid: int
    at: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    lost_events: int = 0
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, message_id: str, when: float) -> None:
        if not self.at:
            self.cpu = self._sample()
        self.at[message_id] = when
        if len(self.at) == self.expected:
            self.cpu = {key: value - self.cpu[key] for key, value in self._sample().items()}
            self.complete.set()

    def _sample(self) -> dict[str, float]:
        return {
            "relay": cpu_seconds(self.relay_pid),
            "relay_wait": runnable_wait(self.relay_pid),
            "sink": time.process_time(),
        }

    @property
    def window(self) -> float:
        times = sorted(self.at.values())
        return times[-1] - times[0]


async def watch(hub: Hub, current: list[Arrivals]) -> None:
    """Stamp each ``MessageReceived`` of C (published after the commit) into the current phase."""
    async for event in hub.subscribe():
        if isinstance(event, MessageReceived) and current:
            current[-1].add(event.id, time.time())
        elif isinstance(event, Overflow) and current:
            current[-1].lost_events += event.lost


async def phase(rig: Rig, count: int, rate: float, tag: str) -> tuple[Arrivals, dict[str, Any], float]:
    """Run the generator once; return C's arrivals, the generator's report and its CPU seconds."""
    a, b, current = rig.a, rig.b, rig.current
    assert b.process is not None
    out = Path(a["dir"]) / f"{tag}.json"
    generator = await asyncio.create_subprocess_exec(
        sys.executable, str(GENERATOR), "--key", a["key"], "--to", a["to"], "--relay", b.internet_url,
        "--relay-id", b.node_id, "--port", a["port"], "--count", str(count), "--rate", str(rate),
        "--tag", tag, "--out", str(out), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert generator.stdin is not None and generator.stdout is not None
    if await generator.stdout.readline() != b"ready\n":
        raise SystemExit("the load generator did not start")
    arrivals = Arrivals(count, b.process.pid)
    current.append(arrivals)
    generator.stdin.write(b"go\n")
    await generator.stdin.drain()
    await generator.stdout.readline()  # "sent": B has taken every frame
    try:
        await asyncio.wait_for(arrivals.complete.wait(), timeout=120)
    except TimeoutError:
        print(f"  only {len(arrivals.at)}/{count} arrived at C within 120 s", flush=True)
    await asyncio.sleep(1.0)  # let the last end-to-end acks reach A before it reports
    generator_cpu = cpu_seconds(generator.pid)
    generator.stdin.write(b"stop\n")
    await generator.stdin.drain()
    await generator.wait()
    return arrivals, json.loads(out.read_text()), generator_cpu


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="beredt-bench-relay-", ignore_cleanup_errors=True) as folder:
        await measure(args, Path(folder))


@dataclass
class Rig:
    """The three processes running: A's settings for the generator, B the relay, C the recipient."""

    a: dict[str, str]
    b: HubProcess
    c: Hub
    current: list[Arrivals]
    receipts: ReceiptClock
    lag: LoopLag


@asynccontextmanager
async def relay_rig(work: Path, stages: bool) -> AsyncIterator[Rig]:
    """A (not started: each phase starts it) -> B (a `beredt run` relay) -> C (a hub in this process),
    warmed up with 200 messages; everything stopped on the way out. With ``stages``, C's link stamps
    when each frame reaches it."""
    source = Identity.generate("Kilde", "staff")
    source.save(work / "a.key")
    sink = Identity.generate("Modtager", "care-home")
    a_port, c_port = free_port(), free_port()
    b = HubProcess.create(work / "b", "Relæ", "relay")
    b.config["peers"] = [
        {"node": source.node_id.hex(), "name": "Kilde", "links": {"internet": f"http://127.0.0.1:{a_port}"}},
        {"node": sink.node_id.hex(), "name": "Modtager", "links": {"internet": f"http://127.0.0.1:{c_port}"}},
    ]
    b.config["timing"] = {}  # the defaults a deployed hub runs with
    b.config["log"] = {"level": "WARNING"}
    b.write_config()
    if stages:
        b.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROBE), os.environ.get("PYTHONPATH")]))
        b.env["BEREDT_BENCH_PROBE"] = str(work / "relay-probe.txt")
    b.cli("roster", "add", source.card.encode())
    b.cli("roster", "add", sink.card.encode())
    relay_id = bytes.fromhex(b.node_id)
    c_config = HubConfig(
        name="Modtager",
        role=Role.CARE_HOME,
        data_dir=work / "c",
        links=(LinkConfig("internet", "internet", {"kind": "internet", "listen": f"127.0.0.1:{c_port}"}),),
        peers=(PeerConfig(relay_id, "Relæ", {"internet": b.internet_url}),),
        default_route=(relay_id,),
        log_level="WARNING",
    )
    a = {"dir": str(work), "key": str(work / "a.key"), "to": sink.node_id.hex(), "port": str(a_port)}
    roster = Roster(sink.card, c_config.roster_path)
    roster.add(source.card)
    roster.add(Identity.load(b.dir / "data" / "identity.key").card)
    c_config.data_dir.mkdir()
    roster.save()
    current: list[Arrivals] = []
    async with open_hub(c_config, sink) as c:
        hub_task = asyncio.create_task(c.run(), name="sink-hub")
        watch_task = asyncio.create_task(watch(c, current), name="sink-watch")
        await c.ready.wait()
        receipts, lag = ReceiptClock(), LoopLag()
        lag_task = asyncio.create_task(lag.run(), name="sink-loop-lag") if stages else None
        if stages:
            receipts.observe(c.links.transports["internet"]._events)  # observed, see ReceiptClock
        heap.settle()  # as `beredt run` does once its hub is ready
        await asyncio.to_thread(b.start)
        try:
            print("warm-up: 200 messages ...", flush=True)
            rig = Rig(a, b, c, current, receipts, lag)
            await phase(rig, 200, 0, "warmup")
            yield rig
        finally:
            await cancel_and_wait(watch_task)
            await cancel_and_wait(lag_task)
            await cancel_and_wait(hub_task)
            await asyncio.to_thread(b.stop)


@dataclass
class Flood:
    """Phase 1: messages offered faster than B takes them, and the verify floor just before and after."""

    arrivals: Arrivals
    report: dict[str, Any]
    generator_cpu: float
    resent: int
    floors: list[tuple[float, float]]

    @property
    def rate(self) -> float:
        """Messages C committed per wall-clock second."""
        return (len(self.arrivals.at) - 1) / self.arrivals.window

    @property
    def per_cpu_second(self) -> float:
        """Messages C committed per second of B's CPU time."""
        return len(self.arrivals.at) / self.arrivals.cpu["relay"]


async def flood(rig: Rig, messages: int) -> Flood:
    print(f"phase 1: {messages:,} messages offered faster than the relay takes them ...", flush=True)
    floors = [verify_floor()]
    resent = rig.c.admission.refused[RefusalReason.REPLAYED.value]
    arrivals, report, generator_cpu = await phase(rig, messages, 0, "flood")
    resent = rig.c.admission.refused[RefusalReason.REPLAYED.value] - resent
    floors.append(verify_floor())
    return Flood(arrivals, report, generator_cpu, resent, floors)


async def measure(args: argparse.Namespace, work: Path) -> None:
    async with relay_rig(work, args.stages) as rig:
        saturated = await flood(rig, args.messages)
        total = int(args.rate * args.seconds)
        commits = await asyncio.to_thread(commit_floor, work)
        print(f"phase 2: {total:,} messages paced at {args.rate:g}/s ...", flush=True)
        paced, paced_report, _ = await phase(rig, total, args.rate, "paced")
        commits += await asyncio.to_thread(commit_floor, work)
        receipts, lag = rig.receipts, rig.lag

    arrived, floors, resent = saturated.arrivals, saturated.floors, saturated.resent
    flood_report, flood_gen_cpu = saturated.report, saturated.generator_cpu
    window = arrived.window
    rate, per_cpu_second = saturated.rate, saturated.per_cpu_second
    floor = max(wall for wall, _ in floors)  # the better of before and after: the stricter ratio
    floor_cpu = max(cpu for _, cpu in floors)
    latencies = sorted(
        (paced.at[i] - sent) * 1000 for i, sent in paced_report["sent_at"].items() if i in paced.at
    )
    p50 = statistics.median(latencies)
    p99 = percentile(latencies, 0.99)
    relay_share = arrived.cpu["relay"] / window
    print()
    report, wait, sink_share = flood_report, arrived.cpu["relay_wait"] / window, arrived.cpu["sink"] / window
    print(
        f"phase 1: C committed {len(arrived.at):,}/{args.messages:,} in {window:.2f} s;"
        f" POSTs B refused as busy (503, retried): {report['busy_refusals']};"
        f" hop-acked by B: {report['hop_acked']:,}; end-to-end acks back at A: {report['e2e_acked']:,}"
    )
    print(f"  frames C received again (B resent them: C's hop ack was later than B's deadline): {resent:,}")
    print(
        f"  over that window: relay B ran {relay_share:.0%} of a core and waited for a CPU {wait:.0%} of it;"
        f" sink C (this process) ran {sink_share:.0%}; generator A {flood_gen_cpu / window:.0%} (whole run)"
    )
    if wait > 0.1:
        print("  B was kept waiting for a CPU by other load: the throughput per CPU second says what B does")
        print("  with a core of its own; the wall-clock figures are those of this machine at this moment")
    print(
        f"phase 2: C committed {len(latencies):,}/{total:,}; events lost by the watcher:"
        f" {arrived.lost_events + paced.lost_events}"
    )
    before, after = floors[0][0], floors[1][0]
    print(f"verify floor per wall-clock second, before and after phase 1: {before:,.0f}, {after:,.0f}")
    print()
    print(f"{'figure':<60}{'measured':>12}{'budget':>12}")
    print(f"{'Ed25519 verify floor, verifications/s (one core)':<60}{floor:>12,.0f}")
    print(f"{'relay throughput A->B->C, messages/s (stored at B and C)':<60}{rate:>12,.0f}")
    print(f"{'  as a share of the verify floor':<60}{rate / floor:>12.1%}{'>= 30 %':>12}")
    print(f"{'Ed25519 verify floor, verifications per CPU second':<60}{floor_cpu:>12,.0f}")
    print(f"{'relay B, messages per CPU second of B':<60}{per_cpu_second:>12,.0f}")
    print(f"{'  as a share of the verify floor per CPU second':<60}{per_cpu_second / floor_cpu:>12.1%}")
    label = f"latency due at A -> C committed @ {args.rate:g}/s, ms"
    print(f"{label + ', p50':<60}{p50:>12.1f}")
    print(f"{label + ', p99':<60}{p99:>12.1f}{'<= 50':>12}")
    print(f"{label + ', max':<60}{latencies[-1]:>12.1f}")
    floor_label = "commit floor on this disk (one row, synchronous=FULL), ms"
    print(f"{floor_label + ', p50':<60}{percentile(commits, 0.5):>12.1f}")
    print(f"{floor_label + ', p99':<60}{percentile(commits, 0.99):>12.1f}")
    if args.stages:
        print()
        print(
            f"phase 2 window ({paced.window:.2f} s): relay B ran {paced.cpu['relay'] / paced.window:.0%} of a"
            f" core and waited for a CPU {paced.cpu['relay_wait'] / paced.window:.0%} of it"
        )
        sent = paced_report["sent_at"]
        taken, hop_acked = paced_report["taken_at"], paced_report["hop_acked_at"]
        for line in stage_report(
            sent, taken, hop_acked, receipts, paced.at, lag, relay_probe(work / "relay-probe.txt")
        ):
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000, help="messages in the saturation phase")
    parser.add_argument("--rate", type=float, default=500.0, help="messages/s in the latency phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    parser.add_argument(
        "--stages", action="store_true", help="stamp each paced message per stage (relay_stages.py)"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
