"""Three days on a Pi: a staff hub (a real `beredt run` process, console included) and 80 care homes.

The homes are simulated in this process, reduced to their wire (as in ``relay_load.py``): each has its own
identity and its own address on one local HTTP server; every status is signed by its home and POSTed to
the hub's internet link exactly as a home's hub would, the homes hop-ack whatever the hub sends them and
answer each roll-call with a status carrying its request id. The hub runs with the ``[timing]``,
``[logbook]`` and ``[console]`` the Pi appliance ships (``deploy/raspberry-pi/beredt.toml``: a commit
window of 20 s, so statuses arriving a few seconds apart share an fsync, the log book's entries of received
messages written with its sync every 10 minutes, the board saved every hour). A probe in the hub
(``relay_probe/sitecustomize.py``, no timer) writes each of its garbage collections, so a slow fetch can be
set beside them. Phases:

1. history, accelerated: ``--rounds`` rounds of a status from each of the 80 homes (three days at one
   every 5 minutes is 864 rounds, 69,120 statuses), with a broadcast sitrep every 12 rounds (one an
   hour) and a roll-call every ``--rounds // rollcalls`` rounds, through the console's own API.
   Then the bench stops the hub cleanly (SIGTERM, as systemd does: it copies each database's WAL into the
   database and writes what its console holds) and starts it again, so the next phase starts with
   nothing owed. The start moves the log book's entries past its live limit (20,000) to archive
   segments, days of them at once after the accelerated history; the bench waits until the hub has
   written nothing for 10 s, counts what the move wrote per entry, and measures ``--settle`` seconds
   of quiet.
2. the real rate for ``--real`` seconds (80 statuses per 5 minutes), with one console client that
   behaves as the browser does: it holds the live event stream and patches what an event carries (the
   changed board rows, roll-calls and messages of a batch; log-book entries) with no fetch, fetches what
   an event names without its rows (the board, the roll-calls, the messages), and opens the log-book tab
   now and then.
   The bench then stops the hub cleanly again: what the stop writes (the checkpoints of what the phase's
   commits left in the WALs, the log book's held entries, the board) is what the phase owes, counted
   with it. The hub's own checkpoint runs every hour, so in the field more statuses share those pages.
3. a restart: the hub is started, every home sends one more status (the board changes after its last
   save), and the hub is killed (SIGKILL, as a power cut) and started again; the board must show all 80
   homes with their last status and last-heard time.
4. a flood, from a process of its own (``flood_sender.py``, whose docstring says how): the homes send as
   fast as the hub takes them for ``--saturate`` seconds, which gives the hub's saturation rate (it
   answers 503 with Retry-After when its receive queue is full; the homes wait that long and send again),
   then ``--factor`` (2) times that rate is offered, paced, for ``--flood`` seconds.

Printed: the hub's CPU per status and bytes written per status in phases 1 and 2 (``/proc/PID/stat`` and
``/proc/PID/io`` write_bytes, every database and log of the process), and what the real rate's commits owe
(the clean stop after phase 2, read from ``/proc/PID/io`` of the exited hub before it is reaped: the
hub's hourly checkpoint would copy the same pages, shared by more statuses), the log book's move to
archive segments as it runs in the field (each entry moves once, every hour those past the live limit:
the start's bytes per entry moved times the entries a status adds, an estimate), the largest WAL seen of each
database (sampled every 0.1 s), the console's log-book and board fetch times (client side, over HTTP),
the hub's CPU share of a core at the real rate with the console open, board completeness after the
restart, and in the flood the saturation rate, the target and the attempted rate (taken + refused), the
rate taken, the refusals, the hub's resends to the homes (frames received by the homes / distinct
frames) and link-down events, and whether that meets the budget. Pi figures are estimates: this
machine's figures times ``PI_FACTOR``, the single-core speed ratio assumed between this machine and a
Raspberry Pi 4, not a measurement.

    .venv/bin/python bench/bench_three_days.py --quick      # about 2 minutes
    .venv/bin/python bench/bench_three_days.py              # 864 rounds (three days), 5 min real rate
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

from bench import flood_sender
from drill.topology import free_port
from hub.core.frame import Kind, Priority, decode_frame
from hub.core.identity import Identity
from hub.core.kinds import decode_payload, encode_payload
from hub.core.seal import Context, SealingKey
from hub.relay.acks import MAX_IDS_PER_ACK, encode_ids
from hub.relay.roster import Roster
from tests.hubproc import REPO, HubProcess
from transports.internet import FRAMES_PATH, PROBE_PATH, REPLY_TO_HEADER, BatchDecoder, encode_batch

HOMES = 80
PERIOD = 300.0  # a status from each home every 5 minutes at the real rate
PASSWORD = "bench-korrekt-hest"
PI_CONFIG = REPO / "deploy" / "raspberry-pi" / "beredt.toml"
"""The Pi appliance's shipped configuration: the staff hub runs with its ``[timing]``, ``[logbook]`` and
``[console]``."""
PROBE = Path(__file__).resolve().parent / "relay_probe"  # its sitecustomize.py, loaded into the hub
GC_LOG = Path("/dev/shm") / f"beredt-bench-gc-{os.getpid()}.txt"  # a tmpfs: no disk writes counted
PI_FACTOR = 4.0  # assumed: a Raspberry Pi 4 core is about 4x slower than one core of this machine
TICKS = os.sysconf("SC_CLK_TCK")


class Homes:
    """80 care homes on one local HTTP server: ``/h/<i>/v1/frames`` and ``/h/<i>/v1/probe``."""

    def __init__(self, hub_url: str, hub_id: bytes) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.hub_id = hub_id
        self.port = free_port()
        self.ids = [Identity.generate(f"Plejecenter {i:02d}", "care-home") for i in range(HOMES)]
        self.sealing = [SealingKey(home.sealing_private, home.node_id) for home in self.ids]
        self.hub_sealing_key = b""  # the staff hub's card's sealing key, set once its identity exists
        self.received: Counter[bytes] = Counter()  # data frames from the hub, by id (resends count twice)
        self.kinds: dict[bytes, str] = {}
        self.session: aiohttp.ClientSession | None = None
        self.ack_session: aiohttp.ClientSession | None = None
        """The homes' hop acks (and roll-call answers) have connections of their own: a home's hub sends
        acks ahead of its data (``transports.internet``), so they never wait behind the homes' statuses
        for one of the shared connections."""
        self.tasks: set[asyncio.Task[None]] = set()

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port}/h/{i}"

    async def serve(self) -> web.AppRunner:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/h/{i}" + FRAMES_PATH, self.frames_in)
        app.router.add_get("/h/{i}" + PROBE_PATH, self.probe)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        # all 80 homes come from 127.0.0.1 here: 32 + 16 connections stay under the hub's per-source cap (64)
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), connector=aiohttp.TCPConnector(limit=32)
        )
        self.ack_session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=60), connector=aiohttp.TCPConnector(limit=16)
        )
        return runner

    async def probe(self, request: web.Request) -> web.Response:
        return web.Response(text=self.ids[int(request.match_info["i"])].node_id.hex())

    async def frames_in(self, request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        decoder = BatchDecoder()
        frames = decoder.receive_data(await request.read())
        decoder.end()
        acks: list[bytes] = []
        answers: list[bytes] = []
        for data in frames:
            frame = decode_frame(data)
            if frame.kind is Kind.HOP_ACK:
                continue
            self.received[frame.id] += 1
            self.kinds[frame.id] = frame.kind.name.lower()
            acks.append(frame.id)
            if frame.kind is Kind.ROLLCALL and self.received[frame.id] == 1:
                payload = frame.payload
                if frame.sealed:  # roll-calls are sealed to their readers like any personal data
                    keys = {self.hub_id: self.hub_sealing_key}
                    payload = self.sealing[i].open(payload, Context.of(frame), keys)
                body = decode_payload(Kind.ROLLCALL, payload)
                assert isinstance(body, dict)
                answers.append(self.status(i, rollcall=str(body["request"])))
        if acks or answers:
            self._spawn(self._answer(i, acks, answers))
        return web.Response(status=204)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, i: int, acks: list[bytes], answers: list[bytes]) -> None:
        now = int(time.time())
        frames = [
            self.ids[i]
            .sign(
                Kind.HOP_ACK,
                self.hub_id,
                encode_ids(acks[n : n + MAX_IDS_PER_ACK]),
                created=now,
                ttl_minutes=10,
            )
            .encode()
            for n in range(0, len(acks), MAX_IDS_PER_ACK)
        ]
        await self.post(i, frames + answers, acks=True)

    def status(self, i: int, *, rollcall: str | None = None, n: int = 0) -> bytes:
        body: dict[str, Any] = {"facility": "Normal", "power": "generator", "fuel_hours": 40 + n % 30}
        if rollcall is not None:
            body["rollcall"] = rollcall
        frame = self.ids[i].sign(
            Kind.STATUS,
            self.hub_id,
            encode_payload(Kind.STATUS, body),
            created=int(time.time()),
            ttl_minutes=24 * 60,
            priority=Priority.NORMAL,
        )
        return frame.encode()

    async def post(self, i: int, frames: list[bytes], *, acks: bool = False) -> None:
        """POST as a home's hub does: a 503 is waited out for its Retry-After, then sent again; a batch that
        leads with ``acks`` goes on the acks' own connections. A connection that fails (the hub killed and
        starting again, or a kept-alive one it closed as it was reused) is tried again on a new one."""
        session = self.ack_session if acks else self.session
        assert session is not None
        headers = {REPLY_TO_HEADER: self.url(i), "Content-Type": "application/octet-stream"}
        body = encode_batch(frames)
        while True:
            try:
                async with session.post(self.hub_url + FRAMES_PATH, data=body, headers=headers) as response:
                    if response.status < 300:
                        return
                    if response.status != 503:
                        text = await response.text()
                        raise SystemExit(f"hub refused a batch: HTTP {response.status} {text}")
                    wait = float(response.headers.get("Retry-After", "1"))
            except aiohttp.ClientConnectionError:
                wait = 0.5
            await asyncio.sleep(wait)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for session in (self.session, self.ack_session):
            if session is not None:
                await session.close()


class Process:
    """CPU and bytes written of one process, from /proc."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / TICKS

    def written(self) -> int:
        for line in Path(f"/proc/{self.pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
        raise KeyError("write_bytes")


class CpuTrace:
    """A process's CPU time sampled every 0.2 s, to tell its share of a core over a span timed elsewhere."""

    def __init__(self, proc: Process) -> None:
        self.proc = proc
        self.samples: list[tuple[float, float]] = []

    async def run(self) -> None:
        while True:
            self.samples.append((time.monotonic(), self.proc.cpu()))
            await asyncio.sleep(0.2)

    def share(self, start: float, end: float) -> float:
        inside = [s for s in self.samples if start <= s[0] <= end] or self.samples[-1:]
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0


class WalWatch:
    """The largest size seen of each database's WAL, sampled every 0.1 s."""

    def __init__(self, data: Path) -> None:
        self.files = {name: data / f"{name}.db-wal" for name in ("store", "console")}
        self.high = dict.fromkeys(self.files, 0)

    async def run(self) -> None:
        while True:
            for name, path in self.files.items():
                try:
                    self.high[name] = max(self.high[name], path.stat().st_size)
                except FileNotFoundError:
                    pass
            await asyncio.sleep(0.1)


class ConsoleClient:
    """A coordinator's browser: the live stream, and the fetches app.js makes for each topic."""

    FETCHES: ClassVar[dict[str, str]] = {"board": "board", "rollcall": "rollcalls", "message": "messages"}
    CARRIED: ClassVar[dict[str, str]] = {"board": "rows", "rollcall": "calls", "message": "items"}
    """What an event carries when app.js patches its view with no fetch."""

    def __init__(
        self, base: str, *, times: dict[str, list[float]] | None = None, events: Counter[str] | None = None
    ) -> None:
        self.base = base.rstrip("/") + "/console/api/"
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.times: dict[str, list[float]] = {} if times is None else times
        self.events: Counter[str] = Counter() if events is None else events
        self.slow: list[tuple[float, str, float]] = []
        """Fetches that took over 100 ms: when they began (monotonic), the path, seconds."""

    async def again(self, hub: HubProcess) -> ConsoleClient:
        """A client of ``hub`` started again (logged in anew), keeping these figures."""
        await self.close()
        client = ConsoleClient(hub.api_url, times=self.times, events=self.events)
        client.slow = self.slow
        await client.login()
        return client

    async def login(self) -> None:
        async with self.session.post(
            self.base + "login", json={"username": "bench", "password": PASSWORD}
        ) as r:
            body = await r.json()
            if r.status != 200:
                raise SystemExit(f"console login failed: {body}")
            self.csrf = body["csrf"]

    async def post(self, path: str, body: Any) -> Any:
        for attempt in range(2):
            try:
                async with self.session.post(
                    self.base + path, json=body, headers={"X-CSRF-Token": self.csrf}
                ) as r:
                    data = await r.json()
                    if r.status >= 300:
                        raise SystemExit(f"console {path}: HTTP {r.status} {data}")
                    return data
            except aiohttp.ServerDisconnectedError:
                # a kept-alive connection the server closed as it was reused: sent again on a new one
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def fetch(self, path: str, *, timed: bool = True) -> Any:
        """GET a console API path; ``timed``: its time counts among the console's fetch times (the bench's
        own reads, such as the log book's head around a phase, do not)."""
        start = time.perf_counter()
        async with self.session.get(self.base + path) as r:
            data = await r.json()
        if not timed:
            return data
        took = time.perf_counter() - start
        self.times.setdefault(path.partition("?")[0], []).append(took)
        if took > 0.1:
            self.slow.append((time.monotonic() - took, path.partition("?")[0], took))
        return data

    async def live(self) -> None:
        """Follow the event stream; a topic's fetch runs one at a time, once more if events came meanwhile,
        and only for an event that does not carry its rows."""
        dirty: dict[str, asyncio.Event] = {topic: asyncio.Event() for topic in self.FETCHES}

        async def refresher(topic: str) -> None:
            while True:
                await dirty[topic].wait()
                dirty[topic].clear()
                await self.fetch(self.FETCHES[topic])

        async with asyncio.TaskGroup() as group:
            for topic in self.FETCHES:
                group.create_task(refresher(topic))
            async with self.session.get(self.base + "events", timeout=aiohttp.ClientTimeout(total=None)) as r:
                topic = ""
                async for raw in r.content:
                    line = raw.decode().strip()
                    if line.startswith("event: "):
                        topic = line[7:]
                        self.events[topic] += 1
                    elif (
                        line.startswith("data: ")
                        and topic in dirty
                        and f'"{self.CARRIED[topic]}":' not in line
                    ):
                        dirty[topic].set()  # an event naming only its topic: the view is fetched again

    async def close(self) -> None:
        await self.session.close()


def setup(work: Path, homes: Homes) -> HubProcess:
    hub = HubProcess.create(work / "staff", "Aarhus krisestab", "staff")
    hub.config["peers"] = [
        {"node": home.node_id.hex(), "name": home.name, "links": {"internet": homes.url(i)}}
        for i, home in enumerate(homes.ids)
    ]
    pi = tomllib.loads(PI_CONFIG.read_text())
    hub.config["timing"] = pi["timing"]
    hub.config["logbook"] = {**hub.config.get("logbook", {}), **pi["logbook"]}
    hub.config["console"] = {**hub.config.get("console", {}), **pi["console"]}
    # the hub's garbage collections, written by a probe (relay_probe/sitecustomize.py) without a timer, to
    # a file in memory: what the hub writes to a disk is what the bench measures
    path = os.pathsep.join(p for p in (str(PROBE), os.environ.get("PYTHONPATH", "")) if p)
    hub.env |= {"PYTHONPATH": path, "BEREDT_BENCH_PROBE": str(GC_LOG), "BEREDT_BENCH_PROBE_LOOP": "0"}
    hub.config["log"] = {"level": "WARNING"}
    hub.write_config()
    own = Identity.load(hub.dir / "data" / "identity.key")
    homes.hub_sealing_key = own.card.sealing_key
    roster = Roster.load(own.card, hub.dir / "data" / "roster.toml")
    for home in homes.ids:
        roster.add(home.card)
    roster.save()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "hub.cli",
            "--config",
            str(hub.config_path),
            "user",
            "add",
            "bench",
            "--role",
            "coordinator",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        cwd=REPO,
        timeout=60,
    )
    return hub


def sitrep(number: int) -> dict[str, Any]:
    now = int(time.time())
    return {
        "number": number,
        "phase": "Update",
        "summary": f"Situationsrapport {number}: strømsvigtet fortsætter",
        "severity": "Moderate",
        "period_to": now,
        "next_contact": now + 3600,
        "actions": ["Diesel fordeles"],
    }


async def history(args: argparse.Namespace, homes: Homes, console: ConsoleClient) -> int:
    """Phase 1: ``rounds`` rounds of 80 statuses at ``rate`` statuses/s, with sitreps and roll-calls."""
    every_rollcall = max(1, args.rounds // max(1, args.rollcalls))
    sent = 0
    start = time.monotonic()
    for r in range(args.rounds):
        frames = [homes.status(i, n=r) for i in range(HOMES)]
        await asyncio.gather(*(homes.post(i, [frames[i]]) for i in range(HOMES)))
        sent += HOMES
        if r % 12 == 11:
            await console.post(
                "messages", {"to": "*", "kind": "sitrep", "body": sitrep(r // 12 + 1), "priority": "urgent"}
            )
        if r % every_rollcall == every_rollcall - 1:
            await console.post("rollcalls", {"question": "Meld status", "minutes": 30})
        if args.verbose:
            print(f"  round {r + 1}: {time.monotonic() - start:.1f} s", flush=True)
        ahead = start + sent / args.rate - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)
    return sent


async def real_rate(seconds: float, homes: Homes) -> int:
    """Phase 2: each home's status every 5 minutes, the homes spread evenly over the period."""
    start, sent = time.monotonic(), 0
    while (elapsed := time.monotonic() - start) < seconds:
        due = int(elapsed / PERIOD * HOMES) + 1
        while sent < due:
            await homes.post(sent % HOMES, [homes.status(sent % HOMES, n=sent)])
            sent += 1
        await asyncio.sleep(0.05)
    return sent


async def flood(args: argparse.Namespace, homes: Homes, keys: Path) -> dict[str, Any]:
    """Phase 4, from a process of its own (``bench/flood_sender.py``): the hub's saturation rate, then
    ``--factor`` times it offered for ``--flood`` seconds. The homes' keys go to it as key files."""
    paths = [keys / f"home-{i:02d}.key" for i in range(HOMES)]

    def save() -> None:
        keys.mkdir(exist_ok=True)
        for identity, path in zip(homes.ids, paths, strict=True):
            identity.save(path)

    await asyncio.to_thread(save)
    plan = flood_sender.Plan(
        hub_url=homes.hub_url,
        hub_id=homes.hub_id,
        keys=paths,
        reply_to=[homes.url(i) for i in range(HOMES)],
        saturate=args.saturate,
        seconds=args.flood,
        factor=args.factor,
    )
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, flood_sender.run, plan)


async def board_rows(console: ConsoleClient) -> list[dict[str, Any]]:
    """The board's rows, fetched outside the figures (not a fetch on an event)."""
    rows: list[dict[str, Any]] = (await console.fetch("board"))["institutions"]
    console.times["board"].pop()
    return rows


def stop_cleanly(hub: HubProcess) -> int:
    """SIGTERM the hub and wait for it to exit; what it wrote from the signal on (``/proc/PID/io`` of the
    exited process, read before it is reaped: the clean stop's checkpoints and saves)."""
    process = hub.process
    assert process is not None
    proc = Process(process.pid)
    before = proc.written()
    process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    while os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is None:
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"the hub ignored SIGTERM:\n{hub.log_tail()}")
        time.sleep(0.02)
    written = proc.written() - before  # exited, not yet reaped: its counters are still there
    process.wait()
    return written


def archived_entries(data: Path) -> int:
    """Log-book entries in the archive segments (each file is named by its first and last seq)."""
    total = 0
    for segment in (data / "logbook-archive").glob("segment-*.jsonl"):
        first, last = segment.stem.split("-")[1:3]
        total += int(last) - int(first) + 1
    return total


async def start_upkeep(proc: Process, quiet: float = 10.0, most: float = 900.0) -> dict[str, Any]:
    """Wait until the started hub has written nothing for ``quiet`` seconds: its upkeep at start (the log
    book's entries past the live limit moved to archive segments: the accelerated history leaves days of
    them at once) is no cost of the real rate. Returns what the process has written since it began (its
    move may begin before it answers as ready; what its start writes besides is counted with it) and how
    long the wait took."""
    t0 = time.monotonic()
    last, still = proc.written(), time.monotonic()
    while time.monotonic() - still < quiet and time.monotonic() - t0 < most:
        await asyncio.sleep(1)
        if (now := proc.written()) != last:
            last, still = now, time.monotonic()
    return {"written": last, "wall": still - t0}


def collections_between(probe: Path, start: float, end: float) -> list[tuple[float, float, int]]:
    """The hub's garbage collections that ended between wall-clock ``start`` and ``end``, as its probe
    wrote them: (seconds from ``start``, ms it took, generation)."""
    found = []
    for line in probe.read_text().splitlines() if probe.exists() else []:
        tag, at, took, generation = line.split()
        if tag == "gc" and start <= float(at) <= end:
            found.append((float(at) - start, float(took), int(generation)))
    return found


def downs(hub: HubProcess) -> int:
    text = (hub.dir / "hub.log").read_text(errors="replace")
    return text.count("-> down")


async def measure(args: argparse.Namespace, work: Path) -> None:
    homes = Homes("", b"")  # the hub's address and id are known once it is set up
    hub = setup(work, homes)
    homes.hub_url, homes.hub_id = hub.internet_url.rstrip("/"), bytes.fromhex(hub.node_id)
    runner = await homes.serve()
    hub.start(timeout=60)
    wal = WalWatch(hub.dir / "data")
    watcher = asyncio.get_running_loop().create_task(wal.run())
    console = ConsoleClient(hub.api_url)
    await console.login()
    try:
        assert hub.process is not None
        proc = Process(hub.process.pid)
        print(f"the staff hub's [timing], as the Pi appliance ships it: {hub.config['timing']}")
        print(f"phase 1: {args.rounds} rounds x {HOMES} homes at {args.rate:g} statuses/s ...", flush=True)
        cpu0, w0, t0 = proc.cpu(), proc.written(), time.monotonic()
        statuses = await history(args, homes, console)
        await asyncio.sleep(2)  # let the console fold the last batch in
        hist = {
            "statuses": statuses,
            "cpu": proc.cpu() - cpu0,
            "written": proc.written() - w0,
            "wall": time.monotonic() - t0,
        }
        lb = await console.fetch("logbook")
        print(
            f"  {hist['wall']:.0f} s; log book now {lb['head'][0] if lb['head'] else 0:,} entries", flush=True
        )

        # what the history left behind (resends, acks, the WAL not yet copied into the database) is not the
        # real rate's cost: a clean stop copies it, then the quiet is measured
        await asyncio.sleep(5)  # the last acks' state updates are committed (the writer waits up to 5 s)
        copied = await asyncio.to_thread(stop_cleanly, hub)
        archived = archived_entries(hub.dir / "data")
        hub.start(timeout=60)
        proc = Process(hub.process.pid)
        print(
            f"  a clean stop wrote {copied / 1e6:.1f} MB (the WAL copied); the start's upkeep ...", flush=True
        )
        upkeep = await start_upkeep(proc)
        upkeep["moved"] = archived_entries(hub.dir / "data") - archived
        console = await console.again(hub)
        print(
            f"  the start moved {upkeep['moved']:,} log-book entries to archive segments and wrote"
            f" {upkeep['written'] / 1e6:.1f} MB in {upkeep['wall']:.0f} s; settling for {args.settle:g} s",
            flush=True,
        )
        await asyncio.sleep(args.settle / 2)
        cpu0, w0, t0 = proc.cpu(), proc.written(), time.monotonic()
        await asyncio.sleep(args.settle / 2)
        idle = {"cpu": proc.cpu() - cpu0, "written": proc.written() - w0, "wall": time.monotonic() - t0}
        print(f"phase 2: real rate for {args.real:g} s with one console open ...", flush=True)
        console.times.clear()  # only the real-rate phase's fetches are reported
        console.slow.clear()
        live = asyncio.get_running_loop().create_task(console.live())
        health0 = await asyncio.to_thread(hub.get, "/healthz")
        head0 = (await console.fetch("logbook", timed=False))["head"]
        archived = archived_entries(hub.dir / "data")
        cpu0, w0, t0, wall0 = proc.cpu(), proc.written(), time.monotonic(), time.time()
        real = asyncio.get_running_loop().create_task(real_rate(args.real, homes))
        slow = console.slow
        while not real.done():
            await console.fetch("logbook")  # the coordinator opens the log-book tab now and then
            await asyncio.sleep(2)
        real_sent = await real
        rate: dict[str, Any] = {
            "statuses": real_sent,
            "cpu": proc.cpu() - cpu0,
            "wall": time.monotonic() - t0,
        }
        # the last statuses' commit window and their acks' state updates end: their writes count too
        await asyncio.sleep(max(5.0, float(hub.config["timing"].get("commit_window", 0)) + 5))
        rate["written"] = proc.written() - w0
        # the hourly move of the log book's entries past its live limit, if it fell in the phase, is in
        # what the phase wrote: then it is measured, not estimated
        rate["moved"] = archived_entries(hub.dir / "data") - archived
        rate["slow"] = [(f"{path} at {began - t0:.0f} s: {took * 1e3:.0f} ms") for began, path, took in slow]
        rate["gc"] = collections_between(GC_LOG, wall0, time.time())
        health1 = await asyncio.to_thread(hub.get, "/healthz")
        rate["fsyncs"] = health1["store_fsyncs"] - health0["store_fsyncs"]
        rate["commits"] = health1["store_commits"] - health0["store_commits"]
        live.cancel()
        await asyncio.gather(live, return_exceptions=True)
        rate["owed"] = await asyncio.to_thread(stop_cleanly, hub)

        print("phase 3: a start, a status from every home, SIGKILL and start again ...", flush=True)
        hub.start(timeout=60)
        console = await console.again(hub)
        # the log book as the phase left it (its held entries are written at the stop)
        head1 = (await console.fetch("logbook", timed=False))["head"]
        rate["entries"] = (head1[0] if head1 else 0) - (head0[0] if head0 else 0)
        posted = time.time()
        await asyncio.gather(*(homes.post(i, [homes.status(i, n=10**6)]) for i in range(HOMES)))
        for _ in range(300):  # until the console has folded every one in
            if all((row["last_heard"] or 0) >= posted - 1 for row in await board_rows(console)):
                break
            await asyncio.sleep(0.2)
        else:
            raise SystemExit("the console had not folded in the homes' last statuses within a minute")
        before_restart = time.monotonic()
        await asyncio.to_thread(hub.restart)  # the homes keep answering meanwhile
        restart_s = time.monotonic() - before_restart
        proc = Process(hub.process.pid)
        console = await console.again(hub)
        board = await board_rows(console)
        complete = sum(1 for row in board if row["status"] is not None and row["last_heard"] is not None)

        print(
            f"phase 4: the hub's saturation rate ({args.saturate:g} s), then {args.factor:g}x it offered"
            f" for {args.flood:g} s ...",
            flush=True,
        )
        homes.received.clear()
        downs0 = downs(hub)
        cpu = CpuTrace(proc)
        tracer = asyncio.get_running_loop().create_task(cpu.run())
        sent = await flood(args, homes, work / "homes")
        await asyncio.sleep(5)  # acks and answers still under way
        tracer.cancel()
        f = sent["flood"]
        flood_fig: dict[str, Any] = {
            **sent,
            "cpu": cpu.share(f["start"], f["start"] + f["wall"]),
            "downs": downs(hub) - downs0,
            "received": sum(homes.received.values()),
            "distinct": len(homes.received),
        }
        distinct: Counter[str] = Counter()
        resent: Counter[str] = Counter()
        for frame_id, copies in homes.received.items():
            distinct[homes.kinds[frame_id]] += 1
            resent[homes.kinds[frame_id]] += copies - 1
        flood_fig["resent_of"] = [(kind, n, distinct[kind]) for kind, n in resent.most_common()]
    except BaseException:
        alive = hub.process is not None and hub.process.poll() is None
        print(f"the run failed; the hub is {'running' if alive else 'gone'}; its log ends:\n{hub.log_tail()}")
        raise
    finally:
        watcher.cancel()
        await console.close()
        hub.stop()
        await runner.cleanup()  # no more frames in, so no more answers started
        await homes.close()
        GC_LOG.unlink(missing_ok=True)
    report(hist, upkeep, idle, rate, console, wal, complete, restart_s, flood_fig)


def row(name: str, measured: str, pi: str = "", budget: str = "") -> None:
    print(f"{name:<60}{measured:>14}{pi:>12}{budget:>10}")


def report(
    hist: dict[str, Any],
    upkeep: dict[str, Any],
    idle: dict[str, Any],
    rate: dict[str, Any],
    console: ConsoleClient,
    wal: WalWatch,
    complete: int,
    restart_s: float,
    flood_fig: dict[str, Any],
) -> None:
    def ms(values: list[float]) -> str:
        return "-" if not values else f"{statistics.median(values) * 1e3:.0f} / {max(values) * 1e3:.0f}"

    print()
    row("figure", "measured", "Pi (est.)", "budget")
    for name, fig in (("history, accelerated", hist), ("real rate, console open", rate)):
        n = max(1, fig["statuses"])
        cpu = fig["cpu"] / n * 1e3
        print(f"{name}: {fig['statuses']:,} statuses in {fig['wall']:.0f} s")
        row("  CPU per status, ms", f"{cpu:.2f}", f"{cpu * PI_FACTOR:.2f}")
        row("  bytes written per status, KB (every file the hub writes)", f"{fig['written'] / n / 1024:.1f}")
    row(
        "no statuses (second half of the settling): CPU, % of a core",
        f"{idle['cpu'] / idle['wall'] * 100:.1f}",
    )
    row("  bytes written per second, KB", f"{idle['written'] / idle['wall'] / 1024:.1f}")
    n = max(1, rate["statuses"])
    row("  the clean stop after it (what the phase owes: checkpoints, held entries), KB per status",
        f"{rate['owed'] / n / 1024:.1f}")  # fmt: skip
    # every byte the hub wrote in the phase and owed at its end, whatever wrote it: a quiet moment right
    # after a start is no floor to subtract (the start's own work may still be under way in it)
    total = (rate["written"] + rate["owed"]) / n
    row("real rate: bytes written per status, the clean stop included, KB", f"{total / 1024:.1f}")
    # each entry leaves the live book once (past 20,000 entries or 7 days): what the start's move of the
    # history's backlog wrote per entry, times the entries a status adds, is what the hourly move costs
    entries = rate["entries"] / n
    row("  log-book entries written per status", f"{entries:.2f}")
    if rate["moved"]:
        row("  the hourly move to archive segments fell in the phase: entries moved", f"{rate['moved']:,}")
        row("real rate: bytes written per status, the stop and the log book's move included, KB",
            f"{total / 1024:.1f}", budget="<= 8")  # fmt: skip
    elif upkeep["moved"]:
        per_entry = upkeep["written"] / upkeep["moved"]
        rotation = per_entry * entries
        row("  the start's move to archive segments: entries / KB written per entry",
            f"{upkeep['moved']:,} / {per_entry / 1024:.2f}")  # fmt: skip
        row("  the log book's move to archive segments, KB per status (est.)", f"{rotation / 1024:.1f}")
        row("real rate: bytes per status, the stop included + the log book's move (est.), KB",
            f"{(total + rotation) / 1024:.1f}", budget="<= 8")  # fmt: skip
    else:
        row("  the log book's move to archive segments", "not measured")
        print("  (the history left no entries past the live limit of 20,000: run more --rounds)")
    row(
        "  the store's commits / fsyncs per status at the real rate",
        f"{rate['commits'] / n:.2f} / {rate['fsyncs'] / n:.2f}",
    )
    share = rate["cpu"] / rate["wall"] * 100
    row(
        "hub CPU at the real rate with one console, % of a core",
        f"{share:.1f}",
        f"{share * PI_FACTOR:.1f}",
        "<= 5",
    )
    for name, high in wal.high.items():
        row(f"largest WAL seen, {name}.db, MB", f"{high / 1e6:.1f}", budget="<= 64")
    row("console log-book page fetch, median / max ms", ms(console.times.get("logbook", [])), budget="<= 100")
    if rate["slow"]:
        print(f"  fetches over 100 ms, from the phase's start: {'; '.join(rate['slow'])}")
    full = [(at, took) for at, took, generation in rate["gc"] if generation == 2]
    row("  the hub's garbage collections in the phase: all / full", f"{len(rate['gc'])} / {len(full)}")
    if rate["gc"]:
        row("  the longest collection, ms", f"{max(took for _, took, _ in rate['gc']):.0f}")
    if full:
        listed = "; ".join(f"{at:.0f} s: {took:.0f} ms" for at, took in full)
        print(f"  full collections, from the phase's start: {listed}")
    for path in ("board", "rollcalls", "messages"):
        row(f"console {path} fetch on an event, median / max ms", ms(console.times.get(path, [])))
    row("console events received at the real rate", f"{sum(console.events.values())}")
    row("board complete after SIGKILL and restart", f"{complete}/{HOMES}", budget="80/80")
    row("SIGKILL to serving again, s", f"{restart_s:.1f}")
    sat, f = flood_fig["saturation"], flood_fig["flood"]
    ratio = flood_fig["received"] / flood_fig["distinct"] if flood_fig["distinct"] else 0.0
    saturation = max(sat["rate"], f["steady_taken"])
    load = f["steady_attempted"] / saturation if saturation else 0.0
    print(
        f"saturation: the homes sending back to back for {sat['wall']:.0f} s; in its second half"
        f" ({sat['steady']:.1f} s) {sat['busy']} batches refused busy (503)"
    )
    row("  taken in the second half, statuses/s", f"{sat['rate']:.0f}" if sat["busy"] else "- (no 503)")
    print(f"flood: {f['wall']:.0f} s paced from a process of its own, Retry-After honoured")
    row("  target offered at the end, statuses/s", f"{f['target']:.0f}")
    row(
        "  attempted (taken + refused), statuses/s: all / second half",
        f"{f['attempted']:.0f} / {f['steady_attempted']:.0f}",
    )
    row("  taken, statuses/s: all / second half", f"{f['taken']:.0f} / {f['steady_taken']:.0f}")
    row("  attempted / saturation (the larger taken, second halves)", f"{load:.2f}", budget=">= 2")
    row("  refused busy (503): batches / statuses", f"{f['busy']} / {f['refused']:,}")
    row("  statuses due with no home free (missed)", f"{f['missed']:,}")
    row("  sender CPU, % of a core", f"{f['cpu'] * 100:.0f}")
    row("  hub CPU, % of a core", f"{flood_fig['cpu'] * 100:.0f}")
    row("  hub frames to the homes: received / distinct", f"{ratio:.2f}", budget="<= 1.1")
    resent = ", ".join(f"{kind} {n} of {sent}" for kind, n, sent in flood_fig["resent_of"]) or "none"
    print(f"  resends by kind (resent of distinct): {resent}")
    row("  link-down events (saturation and flood)", f"{flood_fig['downs']}", budget="0")
    if flood_fig["errors"] or flood_fig["signed_late"]:
        print(
            f"  sender: {flood_fig['errors']} POSTs sent again on a new connection,"
            f" {flood_fig['signed_late']} statuses signed during the run"
        )
    shown = bool(sat["busy"]) and round(load, 2) >= 2.0
    met = shown and flood_fig["downs"] == 0 and ratio <= 1.1
    verdict = "met" if met else "not met" if shown else "not shown (the load was under 2x saturation)"
    print(f"  budget under 2x the saturation load (0 link-down events, resends <= 1.1x): {verdict}")
    print()
    print(f"Pi (est.) = this machine x {PI_FACTOR:g} (an assumed single-core ratio), not measured on a Pi.")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="beredt-bench-3days-", ignore_cleanup_errors=True) as folder:
        await measure(args, Path(folder))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short run (about 2 minutes)")
    parser.add_argument("--rounds", type=int, default=864, help="rounds of 80 statuses in the history")
    parser.add_argument("--rate", type=float, default=200.0, help="statuses/s while replaying the history")
    parser.add_argument("--rollcalls", type=int, default=30, help="roll-calls during the history")
    parser.add_argument("--real", type=float, default=300.0, help="seconds at the real rate, console open")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds of quiet after the history")
    parser.add_argument("--verbose", action="store_true", help="print the time of every round")
    parser.add_argument("--flood", type=float, default=30.0, help="seconds of flood")
    parser.add_argument("--saturate", type=float, default=10.0, help="seconds to find the saturation rate")
    parser.add_argument("--factor", type=float, default=2.0, help="the flood's load, times saturation")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.rate, args.rollcalls, args.real, args.flood, args.settle = (
            24,
            60.0,
            3,
            45.0,
            10.0,
            10.0,
        )
        args.saturate = 5.0
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
