"""Footprint of a care-home hub with every transport on: resident memory, CPU and disk writes, idle and under
light load (budget: idle RSS <= 80 MB, CPU <= 1 % of one core).

The hub under test runs as ``beredt run`` in its own process with internet, MQTT (a private Mosquitto on a
free port), LoRa (a fake Meshtastic radio over a pty), SINE (a simulated TETRA radio over a pty) and
satellite (a simulated Iridium 9603 over a pty) links, and a staff hub as its peer. Simulators and the
peer run in their own processes, so only the hub's own use is measured, from ``/proc/<pid>``. After the
hub is ready and has settled, it idles for ``--idle`` seconds, then takes one text message a second
(``--rate``) for ``--load`` seconds, each relayed to the staff hub.

    .venv/bin/python bench/bench_footprint.py            # 60 s idle, 30 s light load
    .venv/bin/python bench/bench_footprint.py --idle 10 --load 10 --settle 5
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.hubproc import HubProcess  # noqa: E402 - the repository root goes on the path first
from tests.mosquitto import Mosquitto  # noqa: E402

IDLE_RSS_BUDGET_MB = 80.0
IDLE_CPU_BUDGET_PERCENT = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    cpu_seconds: float
    rss_mb: float
    written_bytes: int


def sample(pid: int) -> Sample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime of every thread
    rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE / 2**20
    written = 0
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            written = int(line.split()[1])
    return Sample(time.monotonic(), cpu, rss, written)


def measure(pid: int, seconds: float, tick: float = 1.0, work: object = None) -> tuple[Sample, Sample, float]:
    """First and last sample over ``seconds`` and the peak RSS; ``work()`` is called once per tick."""
    first = sample(pid)
    peak = first.rss_mb
    deadline = first.at + seconds
    while time.monotonic() < deadline:
        if callable(work):
            work()
        time.sleep(max(0.0, min(tick, deadline - time.monotonic())))
        peak = max(peak, sample(pid).rss_mb)
    return first, sample(pid), peak


@contextmanager
def simulator(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def wait_for_paths(paths: list[Path], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline:
            missing = [str(p) for p in paths if not p.exists()]
            raise SystemExit(f"simulators did not create {missing} within {timeout} s")
        time.sleep(0.1)


def build_hubs(tmp: Path, broker: Mosquitto) -> tuple[HubProcess, HubProcess]:
    home = HubProcess.create(tmp / "home", "Plejecenter Solbakken", "care-home")
    staff = HubProcess.create(tmp / "staff", "Aarhus krisestab", "staff")
    for hub, radio, issi in ((home, "lora0", "1001"), (staff, "lora1", "1002")):
        hub.add_link("mqtt", {"kind": "mqtt", "brokers": [broker.url]})
        hub.add_link("lora", {"kind": "lora", "device": str(tmp / radio)})
        hub.add_link("sine", {"kind": "sine", "device": str(tmp / "sine" / f"tty{issi}"), "baud": 38400})
        hub.config["log"] = {"level": "WARNING"}
        hub.write_config()
    home.add_link(
        "satellite", {"kind": "satellite", "device": str(tmp / "iridium0"), "mailbox_check_minutes": 0}
    )
    home.add_peer(
        staff, {"internet": staff.internet_url, "mqtt": staff.node_id, "lora": "!00000002", "sine": "1002"}
    )
    staff.add_peer(
        home, {"internet": home.internet_url, "mqtt": home.node_id, "lora": "!00000001", "sine": "1001"}
    )
    home.set_default_route([staff])
    staff.set_default_route([home])
    home.trust(staff)
    staff.trust(home)
    return home, staff


def report(label: str, first: Sample, last: Sample, peak: float) -> tuple[float, float]:
    elapsed = last.at - first.at
    cpu = 100.0 * (last.cpu_seconds - first.cpu_seconds) / elapsed
    written = (last.written_bytes - first.written_bytes) / 1024 / elapsed
    print(
        f"{label:<12} {elapsed:6.1f} s  RSS {last.rss_mb:6.1f} MB (peak {peak:6.1f})  CPU {cpu:5.2f} %  "
        f"disk writes {written:7.1f} KiB/s"
    )
    return peak, cpu


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=float, default=60.0, help="seconds of idle measurement")
    parser.add_argument("--load", type=float, default=30.0, help="seconds of light load")
    parser.add_argument("--rate", type=float, default=1.0, help="messages per second under load")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds after ready before measuring")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="beredt-footprint-") as name, ExitStack() as stack:
        tmp = Path(name)
        (tmp / "mosquitto").mkdir()
        broker = Mosquitto(tmp / "mosquitto")
        broker.start()
        stack.callback(broker.kill)
        stack.enter_context(
            simulator(
                ["simulators.meshtastic_radio", "--pty", str(tmp / "lora"), "--count", "2"],
                tmp / "lora.log",
            )
        )
        stack.enter_context(
            simulator(["simulators.tetra", "1001", "1002", "--dir", str(tmp / "sine")], tmp / "sine.log")
        )
        stack.enter_context(
            simulator(["simulators.iridium", "--link", str(tmp / "iridium0")], tmp / "iridium.log")
        )
        wait_for_paths(
            [tmp / "lora0", tmp / "lora1", tmp / "sine/tty1001", tmp / "sine/tty1002", tmp / "iridium0"]
        )

        home, staff = build_hubs(tmp, broker)
        for hub in (staff, home):
            hub.start(timeout=60)
            stack.callback(hub.kill)
        assert home.process is not None
        pid = home.process.pid
        links = {row["link"]: row.get("state") for row in home.get("/v1/links")["links"]}
        print(f"hub pid {pid}; links: {', '.join(f'{k}={v}' for k, v in sorted(links.items()))}")
        time.sleep(args.settle)

        idle_peak, idle_cpu = report("idle", *measure(pid, args.idle))
        sent: list[str] = []

        def send_one() -> None:
            sent.append(home.send(staff.node_id, "text", f"status {len(sent)}: alt vel"))

        report("light load", *measure(pid, args.load, tick=1.0 / args.rate, work=send_one))
        staff.wait_for(
            f"all {len(sent)} messages", lambda: set(sent) <= {m["id"] for m in staff.inbox()}, timeout=120
        )
        links = {row["link"]: row.get("state") for row in home.get("/v1/links")["links"]}
        print(f"delivered {len(sent)}/{len(sent)}; links at the end: {links}")

    ok_rss = idle_peak <= IDLE_RSS_BUDGET_MB
    ok_cpu = idle_cpu <= IDLE_CPU_BUDGET_PERCENT
    print(
        f"budget idle RSS <= {IDLE_RSS_BUDGET_MB:.0f} MB: {'OK' if ok_rss else 'OVER'} ({idle_peak:.1f} MB, "
        f"{idle_peak / IDLE_RSS_BUDGET_MB:.0%} of budget); idle CPU <= {IDLE_CPU_BUDGET_PERCENT:.0f} %: "
        f"{'OK' if ok_cpu else 'OVER'} ({idle_cpu:.2f} %)"
    )
    return 0 if ok_rss and ok_cpu else 1


if __name__ == "__main__":
    raise SystemExit(main())
