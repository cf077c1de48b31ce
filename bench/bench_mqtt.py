"""Hub to hub over MQTT against raw paho through the same broker, and how fast presence reaches health.

One run starts its own Mosquitto on a free port (debug logging off, so the broker is not the bottleneck
of the baseline) and measures, in this order:

1. raw paho (2.x, callback API 2, MQTT v5): one publisher and one subscriber client, QoS 1, N 200-byte
   messages, messages/s from the first publish to the last receipt. This is the baseline; it is measured
   again before the hubs and at the end, and the best of the three counts, so a baseline slowed by other
   load on the machine never flatters the ratios;
2. the MQTT link alone (``transports/mqtt.py`` opened twice): one send at a time, and 20 in flight;
3. two hubs over MQTT only: hub A in this process signs, stores and routes; hub B (``beredt run``) verifies
   and stores durably. Messages are submitted at A by 20 producers (applications, each sending its next
   message once A has accepted the last) and count when B stores them (B's ``accepted_at``, taken as the
   commit that holds the message is queued, read from its ``store.db`` once B has stopped, since the running
   hub holds it for itself alone; meanwhile B's ``/healthz`` counts them): messages/s, and latency from A's
   submit to B's store, saturated and at a fixed rate;
4. presence -> link health: hub B stops (SIGTERM: it says ``offline``), starts again, and dies (SIGKILL:
   the broker publishes its last will); the time until hub A's health board moves B's MQTT link.

Every rate is printed as a ratio of (1) beside the design budget (hub to hub >= 25 % of raw paho).
Hub frames are padded to the baseline's 200 bytes, so the three rates compare like with like. For the
saturated phase the CPU each hub and the broker used, and the time their threads waited for a CPU (Linux
schedstat), are printed too: on a shared machine the second says whether a low ratio is the hubs' own
cost or other load, and the CPU per message gives the ratio a machine with a core per hub would reach.
Frames hub B refused in that phase are counted ("replayed" ones are copies hub A sent again because a hop
ack came late: a stall, not a loss). ``--keep`` leaves the work folder (hub B's log and both stores) for
a closer look at a slow run. The broker and phases 1 and 2 are in ``bench/mqtt_baselines.py``.

    .venv/bin/python bench/bench_mqtt.py [--messages 5000] [--producers 20] [--broker-inflight N]
                                [--rate 500] [--seconds 4] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.mqtt_baselines import DEADLINE, FRAME_BYTES, BenchError, link_alone, quiet_broker, raw_paho
from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.relay.health import HealthChanged
from hub.relay.roster import Role, Roster
from hub.relay.settings import LinkConfig, PeerConfig
from hub.service.assembly import open_hub
from hub.service.config import load
from tests.hubproc import HubProcess
from tests.mosquitto import Mosquitto
from transports.mqtt import INFLIGHT

BUDGET = 0.25  # docs/architecture.md, budgets: hub -> hub over MQTT >= 25 % of raw paho QoS 1
DETECT_BUDGET = 3.0  # docs/architecture.md, budgets: link death detected within 3 s


# ---- 3. two hubs --------------------------------------------------------------------------------------


def arrivals(db: Path) -> dict[str, float]:
    """Message id -> ``accepted_at`` of every message for hub B itself, read once B has stopped (a running
    hub holds its store for itself alone)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return {
            row[0].hex(): row[1]
            for row in conn.execute("SELECT id, accepted_at FROM messages WHERE for_me=1")
        }


def stored_by(b: HubProcess) -> int:
    """How many messages the running hub B has stored from others (its ``/healthz``)."""
    count: int = b.get("/healthz")["accepted_inbound"]
    return count


async def wait_stored(b: HubProcess, before: int, count: int) -> None:
    """Until hub B has stored ``count`` messages more than ``before``."""
    deadline = time.monotonic() + DEADLINE
    while (stored := await asyncio.to_thread(stored_by, b) - before) < count:
        if time.monotonic() > deadline:
            raise BenchError(f"hub B stored {stored} of {count} within {DEADLINE:.0f} s")
        await asyncio.sleep(0.25)


def scheduled(pid: int) -> tuple[float, float]:
    """Seconds all threads of ``pid`` ran on a CPU, and waited ready to run for one (Linux schedstat).

    The second figure tells a hub that is slow from one that other load on the machine keeps waiting."""
    run = wait = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            fields = (task / "schedstat").read_text().split()
            run, wait = run + int(fields[0]), wait + int(fields[1])
    return run / 1e9, wait / 1e9


def fsync_times(folder: Path, count: int = 50) -> tuple[float, float]:
    """p50 and p99 of an fsync after a 4 KiB append, in ms: what each durable commit waits for at least."""
    times = []
    with open(folder / "fsync-probe", "wb") as probe:
        for _ in range(count):
            probe.write(b"\0" * 4096)
            probe.flush()
            start = time.perf_counter()
            os.fsync(probe.fileno())
            times.append((time.perf_counter() - start) * 1000)
    (folder / "fsync-probe").unlink()
    times.sort()
    return statistics.median(times), percentile(times, 0.99)


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


@dataclass(frozen=True, slots=True)
class HubFigures:
    rate: float
    saturated: tuple[float, float]
    paced: tuple[float, float]
    paced_rate: float
    cpu: tuple[float, ...]
    """Share of one core that hub A, hub B and the broker used during the saturated phase."""
    starved: tuple[float, ...]
    """Their threads' time waiting for a CPU in that phase, per second (can exceed 1 with threads)."""
    refused: int
    refusals: dict[str, int]
    """Frames hub B refused by reason in that phase; "replayed" are copies sent again after a late ack."""


@dataclass(frozen=True, slots=True)
class PresenceFigures:
    stop: float
    start: float
    kill: float


class HealthWatch:
    """Times hub A's health board changes for one (link, peer), with this process's monotonic clock."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.moves: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    def __call__(self, change: HealthChanged) -> None:
        if change.link == "mqtt" and change.peer == self.peer:
            self.moves.put_nowait((change.new.label, time.monotonic()))

    def drain(self) -> None:
        while not self.moves.empty():
            self.moves.get_nowait()

    async def until(self, state: str) -> float:
        async with asyncio.timeout(DEADLINE):
            while True:
                label, at = await self.moves.get()
                if label == state:
                    return at


def make_hub_b(work: Path, url: str, a: Identity) -> HubProcess:
    b = HubProcess.create(work / "b", "Plejecenter", "care-home", internet=False)
    b.add_link("mqtt", {"kind": "mqtt", "brokers": [url]})
    b.config["peers"] = [{"node": a.node_id.hex(), "name": "Krisestab", "links": {"mqtt": a.node_id.hex()}}]
    b.config["routes"] = {"default": [a.node_id.hex()]}
    b.config.pop("timing")  # the shipped defaults, not the tests' impatient ones
    b.config["log"] = {"level": "WARNING"}
    b.write_config()
    b.cli("roster", "add", a.card.encode())
    return b


async def hubs(
    broker: Mosquitto, work: Path, count: int, producers: int, rate: float, seconds: float
) -> tuple[HubFigures, PresenceFigures]:
    url = broker.url
    a_identity = Identity.generate("Krisestab", "staff")
    b = make_hub_b(work, url, a_identity)
    (work / "a").mkdir()
    base = load(b.config_path)
    a_config = type(base)(
        name="Krisestab",
        role=Role.STAFF,
        data_dir=work / "a",
        links=(LinkConfig("mqtt", "mqtt", {"kind": "mqtt", "brokers": [url]}),),
        peers=(PeerConfig(bytes.fromhex(b.node_id), "Plejecenter", {"mqtt": b.node_id}),),
        default_route=(bytes.fromhex(b.node_id),),
        log_level="WARNING",
    )
    recipient = bytes.fromhex(b.node_id)
    overhead = len(a_identity.sign(Kind.TEXT, recipient, b"", created=0, ttl_minutes=60).encode())
    padding = "x" * (FRAME_BYTES - overhead - len("000000 "))
    sample = a_identity.sign(Kind.TEXT, recipient, f"000000 {padding}".encode(), created=0, ttl_minutes=60)
    if len(sample.encode()) != FRAME_BYTES:  # varint lengths could shift it: then the rates compare unlike
        raise BenchError(f"hub frames are {len(sample.encode())} bytes, not {FRAME_BYTES}")
    db = b.dir / "data" / "store.db"
    watch = HealthWatch(b.node_id)
    try:
        roster = Roster.load(a_identity.card, a_config.roster_path)
        roster.add(Identity.load(b.dir / "data" / "identity.key").card)
        roster.save()
        await asyncio.to_thread(b.start)
        async with open_hub(a_config, a_identity) as a, asyncio.TaskGroup() as group:
            a.health.listen(watch)
            runner = group.create_task(a.run(), name="hub-a")
            async with asyncio.timeout(DEADLINE):
                await a.ready.wait()

            async def submit(i: int, into: dict[str, float]) -> None:
                t = time.time()
                message_id = await a.submit(Kind.TEXT, recipient, f"{i:06d} {padding}".encode())
                into[message_id.hex()] = t

            warm_up: dict[str, float] = {}  # one message through first: both links up, route open
            await submit(-1, warm_up)
            await wait_stored(b, 0, 1)

            print(
                f"  hub to hub: {count} messages from {producers} producers, each as fast as A accepts ...",
                flush=True,
            )
            sent: dict[str, float] = {}
            assert b.process is not None and broker.process is not None
            pids = (os.getpid(), b.process.pid, broker.process.pid)
            before, start = [scheduled(pid) for pid in pids], time.time()
            stored = await asyncio.to_thread(stored_by, b)

            async def producer(first: int) -> None:
                for i in range(first, count, producers):
                    await submit(i, sent)

            async with asyncio.TaskGroup() as crowd:
                for n in range(producers):
                    crowd.create_task(producer(n), name=f"producer-{n}")
            await wait_stored(b, stored, len(sent))
            # CPU used while the last messages were stored (the store poll above ends <= 0.25 s later)
            wall = time.time() - start
            after = [scheduled(pid) for pid in pids]
            # Copies B already had: A sent again because a hop ack was late (a stall, not a loss).
            refused = (await asyncio.to_thread(b.get, "/healthz"))["refused"]
            again = sum(refused.values())

            total = int(rate * seconds)
            print(f"  hub to hub: {total} messages paced at {rate:g}/s ...", flush=True)
            paced: dict[str, float] = {}
            stored = await asyncio.to_thread(stored_by, b)
            t0 = time.monotonic()
            async with asyncio.TaskGroup() as pacer:
                for i in range(total):
                    delay = t0 + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    pacer.create_task(submit(count + i, paced))
            await wait_stored(b, stored, len(paced))

            print("  presence: B stops, starts, is killed ...", flush=True)
            presence = await presence_moves(b, watch)
            runner.cancel()
        # when B stored each message (its accepted_at), read now that B is down
        seen = arrivals(db)
        if missing := (sent.keys() | paced.keys()) - seen.keys():
            raise BenchError(f"hub B's store lacks {len(missing)} of the messages it counted")
        elapsed = max(seen[i] for i in sent) - start
        saturated = sorted((seen[i] - t) * 1000 for i, t in sent.items())
        latencies = sorted((seen[i] - t) * 1000 for i, t in paced.items())
        figures = HubFigures(
            count / elapsed,
            (statistics.median(saturated), percentile(saturated, 0.99)),
            (statistics.median(latencies), percentile(latencies, 0.99)),
            rate,
            tuple((now[0] - then[0]) / wall for now, then in zip(after, before, strict=True)),
            tuple((now[1] - then[1]) / wall for now, then in zip(after, before, strict=True)),
            again,
            refused,
        )
    finally:
        b.kill()
    return figures, presence


async def presence_moves(b: HubProcess, watch: HealthWatch) -> PresenceFigures:
    """Seconds from each of B's state changes to hub A's health board following it."""
    assert b.process is not None
    watch.drain()
    t = time.monotonic()
    b.process.send_signal(signal.SIGTERM)  # orderly: B publishes "offline" itself
    stop = await watch.until("down") - t
    await asyncio.to_thread(b.process.wait, DEADLINE)

    t = time.monotonic()
    async with asyncio.TaskGroup() as group:
        group.create_task(asyncio.to_thread(b.start), name="start-b")  # returns once B answers /healthz
        start = await watch.until("up") - t

    watch.drain()
    await asyncio.sleep(0.5)
    t = time.monotonic()
    b.process.send_signal(signal.SIGKILL)  # no goodbye: the broker publishes the last will
    kill = await watch.until("down") - t
    await asyncio.to_thread(b.process.wait, DEADLINE)
    return PresenceFigures(stop, start, kill)


# ---- the run ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000, help="messages per throughput phase")
    parser.add_argument("--producers", type=int, default=20, help="applications submitting at hub A at once")
    parser.add_argument(
        "--broker-inflight", type=int, help="Mosquitto's max_inflight_messages (its Receive Maximum)"
    )
    parser.add_argument("--rate", type=float, default=500.0, help="paced hub-to-hub rate for latency, /s")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of the paced phase")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder (hub B's log and store, broker log)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    began = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="beredt-bench-mqtt-"))
    if args.keep:
        print(f"work folder (kept): {work}")
    try:
        (work / "broker").mkdir()
        broker = quiet_broker(work / "broker", args.broker_inflight)
        broker.start()
        try:
            inflight = args.broker_inflight or "default (20)"
            print(
                f"Mosquitto on port {broker.port}, max_inflight_messages {inflight}; the link's window"
                f" {INFLIGHT}; {args.messages} messages of {FRAME_BYTES} bytes per phase"
            )
            raws = [raw_paho(broker.port, args.messages)]
            print(f"  raw paho: {raws[-1][0]:,.0f}/s", flush=True)
            one = asyncio.run(link_alone(broker.url, work, args.messages, 1))
            window = asyncio.run(link_alone(broker.url, work, args.messages, INFLIGHT))
            print(
                f"  link alone: {one:,.0f}/s one at a time, {window:,.0f}/s with {INFLIGHT} in flight",
                flush=True,
            )
            raws.append(raw_paho(broker.port, args.messages))
            print(f"  raw paho again: {raws[-1][0]:,.0f}/s", flush=True)
            fsync = fsync_times(work)
            hub, presence = asyncio.run(
                hubs(broker, work, args.messages, args.producers, args.rate, args.seconds)
            )
            raws.append(raw_paho(broker.port, args.messages))
            print(f"  raw paho again: {raws[-1][0]:,.0f}/s", flush=True)
        finally:
            broker.kill()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    raw, raw_cpu = max(raws)

    print()
    print(f"{'figure':<60}{'measured':>12}{'of raw':>9}{'budget':>10}")

    def line(what: str, value: str, ratio: float | None = None, budget: str = "") -> None:
        print(f"{what:<60}{value:>12}{'' if ratio is None else f'{ratio:.0%}':>9}{budget:>10}")

    line(f"raw paho QoS 1 pub -> sub, /s (best of {len(raws)} runs)", f"{raw:,.0f}", 1.0)
    line("MQTT link, one send at a time, frames/s", f"{one:,.0f}", one / raw)
    line(f"MQTT link, {INFLIGHT} in flight, frames/s", f"{window:,.0f}", window / raw)
    verdict = "ok" if hub.rate / raw >= BUDGET else "MISSED"
    line(
        f"hub A -> hub B over MQTT, stored, messages/s ({verdict})",
        f"{hub.rate:,.0f}",
        hub.rate / raw,
        ">= 25%",
    )
    line("  latency submit -> stored, saturated, p50 / p99, ms", "{:.0f} / {:.0f}".format(*hub.saturated))
    line(
        "  CPU of hub A / hub B / broker while saturated, per core",
        "{:.0%} / {:.0%} / {:.0%}".format(*hub.cpu),
    )
    line("  ... and waiting for a CPU (other load), s per s", "{:.2f} / {:.2f} / {:.2f}".format(*hub.starved))
    per_message = (raw_cpu * 1e6, hub.cpu[0] / hub.rate * 1e6, hub.cpu[1] / hub.rate * 1e6)
    line(
        "  CPU per message: raw paho clients / hub A / hub B, us",
        "{:.0f} / {:.0f} / {:.0f}".format(*per_message),
    )
    # Each hub is its own process, so with a core each the busier one sets the pace; the raw clients
    # share one process. Not the budget figure: what the ratio becomes on a machine with cores to spare.
    line(
        "  ceiling with a core per hub: raw CPU / busier hub's CPU", "", per_message[0] / max(per_message[1:])
    )
    line("  frames B refused while saturated (resent copies are 'replayed')", f"{hub.refused:,}")
    if hub.refused:
        print(f"    {hub.refusals}")
    line("  fsync on the hubs' disk just before, p50 / p99, ms", "{:.2f} / {:.2f}".format(*fsync))
    line(f"  latency at {hub.paced_rate:g}/s, p50 / p99, ms", "{:.1f} / {:.1f}".format(*hub.paced))
    line("presence: B stops (offline) -> A's health down, s", f"{presence.stop:.2f}", budget="<= 3 s")
    line("presence: B killed (last will) -> A's health down, s", f"{presence.kill:.2f}", budget="<= 3 s")
    line("presence: B's process started -> A's health up, s", f"{presence.start:.2f}")
    print(f"\nwhole run {time.monotonic() - began:.1f} s")
    if hub.rate / raw < BUDGET or max(presence.stop, presence.kill) > DETECT_BUDGET:
        sys.exit(1)


if __name__ == "__main__":
    main()
