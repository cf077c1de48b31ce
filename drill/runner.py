"""The drill runner: starts the simulated world and five ``beredt run`` processes, applies the faults.

``Drill`` is an async context manager. Entering it writes keys, rosters and configs under its folder,
starts Mosquitto, the mesh, the SINE network, the Iridium provider and one switchable proxy per hub's
internet link, then the hubs, and waits until every hub serves its API and its radios are connected.
Leaving it stops the hubs (SIGTERM, then SIGKILL after a deadline) and everything else, whatever
happened. The faults are the ones a telecom collapse brings: the internet goes (every proxy off), the
broker's machine dies (SIGKILL), the mesh breaks into pieces, a SINE terminal hangs (plugged in,
answering nothing), and all of it comes back. The internet and
the broker can also fail silently, so no hub is told and each must notice by waiting: the proxies keep
connections open and pass nothing (packets vanish), the broker keeps its sessions and acknowledges
every publication but delivers none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

import hub
from drill import DrillError
from drill.proxy import SwitchableProxy
from drill.sims import Broker, Mesh, Satellite, Sine
from drill.topology import MESH_PRESET, SITES, HubPlan, SimAddresses, create_hubs, write_configs
from hub.api.local import short_address

REPO = Path(hub.__file__).resolve().parent.parent
START_DEADLINE = 60.0
START_ATTEMPTS = 3
"""A port picked free can be taken by another program before the hub binds it (other test runs on the
machine pick from the same range): the world is then built again on fresh ports, this many times."""
STOP_DEADLINE = 15.0
REQUEST_DEADLINE = 15.0


class HubRunner:
    """One ``beredt run`` subprocess and its log."""

    def __init__(self, plan: HubPlan) -> None:
        self.plan = plan
        self.log_path = plan.dir / "hub.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "hub.cli", "run", "--config", str(self.plan.config_path),
                stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip

    async def stop(self) -> int | None:
        """SIGTERM (a graceful drain), SIGKILL if it has not ended within ``STOP_DEADLINE``."""
        process = self.process
        if process is None or process.returncode is not None:
            return process.returncode if process else None
        process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), STOP_DEADLINE)
        except TimeoutError:
            process.kill()
            return await asyncio.wait_for(process.wait(), STOP_DEADLINE)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Drill:
    """The running world; ``async with Drill(folder) as drill: ...``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.start_attempts = 0
        self._new_world()

    def _new_world(self) -> None:
        self.plans: dict[str, HubPlan] = {}
        self.hubs: dict[str, HubRunner] = {}
        self.proxies: dict[str, SwitchableProxy] = {}
        self.broker: Broker | None = None
        self.mesh = Mesh(SITES, MESH_PRESET)
        self.sine = Sine(SITES, self.root / "sine")
        self.satellite = Satellite(SITES, self.root / "iridium")
        self._http: dict[str, aiohttp.ClientSession] = {}  # per hub, over its API socket
        self._closers: contextlib.AsyncExitStack = contextlib.AsyncExitStack()

    # ---- life cycle ---------------------------------------------------------------------------------

    async def __aenter__(self) -> Drill:
        while True:
            self.start_attempts += 1
            try:
                await self._start()
                return self
            except DrillError as exc:
                await self.aclose()
                if self.start_attempts >= START_ATTEMPTS or "Address already in use" not in str(exc):
                    raise
            except BaseException:
                await self.aclose()
                raise
            # Another program took one of our ports: a new world, new keys and new ports.
            shutil.rmtree(self.root, ignore_errors=True)
            self._new_world()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.broker = Broker(self.root / "mosquitto")
        self._closers.push_async_callback(self.broker.kill)
        await self.broker.start()
        self._closers.push_async_callback(self.mesh.aclose)
        await self.mesh.start()
        self._closers.push_async_callback(self.sine.aclose)
        self.sine.start()
        self._closers.push_async_callback(self.satellite.aclose)
        await self.satellite.start()
        # Hub ports are picked only now that every simulator holds its own, so none can take one.
        self.plans = create_hubs(self.root)
        staff = self.plans["staff"]
        self.satellite.cloud.webhook_url = f"http://127.0.0.1:{staff.webhook_port}/iridium/mo"
        for key, plan in self.plans.items():
            proxy = self.proxies[key] = SwitchableProxy(("127.0.0.1", plan.internet_port))
            self._closers.push_async_callback(proxy.aclose)
            proxy.reserve()
            plan.public_url = proxy.url
            await proxy.switch_on()
        write_configs(
            self.plans,
            SimAddresses(
                mqtt_url=self.broker.url,
                radio_ports=self.mesh.ports,
                sine_devices=self.sine.paths,
                modem_devices=self.satellite.paths,
                mt_url=self.satellite.cloud.mt_url,
            ),
        )
        self.hubs = {key: HubRunner(plan) for key, plan in self.plans.items()}
        self._closers.push_async_callback(self._stop_hubs)
        for runner in self.hubs.values():
            await runner.start()
        await asyncio.gather(*(self._wait_ready(key) for key in self.hubs))

    async def _wait_ready(self, key: str) -> None:
        """The API answers, the hub's radios (LoRa, SINE) report connected and its internet and MQTT
        links are up to every other hub: stage 1 must start from a whole world."""
        others = {plan.node_id for other, plan in self.plans.items() if other != key}

        def ready(rows: list[dict[str, Any]]) -> bool:
            for kind in ("internet", "mqtt"):
                if {r["peer"] for r in rows if r["kind"] == kind and r["state"] == "up"} < others:
                    return False
            for row in rows:
                details = row.get("details") or {}
                if row["kind"] == "lora" and not details.get("connected"):
                    return False
                if row["kind"] == "sine" and not details.get("up"):
                    return False
            return True

        await self.wait_for(f"{key} to start", lambda: self._ready_check(key, ready), START_DEADLINE)

    async def _ready_check(self, key: str, ready: Callable[[list[dict[str, Any]]], bool]) -> bool:
        process = self.hubs[key].process
        if process is not None and process.returncode is not None:
            raise DrillError(f"hub {key} exited with {process.returncode}:\n{self.hubs[key].log_tail()}")
        try:
            health = await self.get(key, "/healthz")
            return bool(health["ok"]) and ready(await self.links(key))
        except (aiohttp.ClientError, TimeoutError, DrillError):
            return False

    async def _stop_hubs(self) -> None:
        await asyncio.gather(*(runner.stop() for runner in self.hubs.values()), return_exceptions=True)

    async def aclose(self) -> None:
        """Stop everything started; safe to call twice."""
        closers, self._closers = self._closers, contextlib.AsyncExitStack()
        await closers.aclose()
        self._http.clear()

    # ---- faults -------------------------------------------------------------------------------------

    async def cut_internet(self, keys: Iterable[str] | None = None) -> None:
        for key in keys or self.proxies:
            await self.proxies[key].switch_off()

    async def silence_internet(self) -> None:
        for proxy in self.proxies.values():
            await proxy.go_silent()

    async def restore_internet(self) -> None:
        for proxy in self.proxies.values():
            await proxy.switch_on()

    async def kill_broker(self) -> None:
        assert self.broker is not None
        await self.broker.kill()

    async def silence_broker(self) -> None:
        """The broker accepts and acknowledges every publication and delivers none."""
        assert self.broker is not None
        self.broker.go_silent()

    async def restart_broker(self) -> None:
        assert self.broker is not None
        self.broker.speak()
        if not self.broker.running:
            await self.broker.start()

    def partition_mesh(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.mesh.partition(pairs)

    def heal_mesh(self) -> None:
        self.mesh.heal()

    def mute_sine(self, key: str, mute: bool) -> None:
        """Hang (or revive) the SINE terminal of hub ``key``: plugged in, it reads and answers nothing."""
        self.sine.mute(key, mute)

    # ---- the hubs' API ------------------------------------------------------------------------------

    def node(self, key: str) -> str:
        return self.plans[key].node_id

    def key_of(self, node_id: str | None) -> str | None:
        return next((k for k, p in self.plans.items() if p.node_id == node_id), None)

    def _session(self, key: str) -> aiohttp.ClientSession:
        """The hub's API as its CLI reaches it: over the Unix socket in its data folder."""
        session = self._http.get(key)
        if session is None:
            address = self._closers.enter_context(short_address(self.plans[key].socket_path))
            session = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=address),
                timeout=aiohttp.ClientTimeout(total=REQUEST_DEADLINE),
            )
            self._closers.push_async_callback(session.close)
            self._http[key] = session
        return session

    async def request(self, key: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = "http://localhost" + path
        try:
            async with self._session(key).request(method, url, json=body) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DrillError(f"{method} {path} on hub {key} failed: {exc!r}") from exc
        try:
            return response.status, json.loads(text) if text else None
        except json.JSONDecodeError:
            # Something other than a Beredt hub answers on that socket.
            raise DrillError(
                f"{method} {path} on hub {key}: not a Beredt API answer: {text[:80]!r}"
            ) from None

    async def get(self, key: str, path: str) -> Any:
        status, body = await self.request(key, "GET", path)
        if status != 200:
            raise DrillError(f"GET {path} on hub {key} -> {status}: {body}")
        return body

    async def send(self, key: str, to: str, kind: str, body: Any, priority: str = "normal") -> str:
        """Submit a message at hub ``key`` for hub ``to``; returns its id once the hub has stored it."""
        request = {"to": self.node(to), "kind": kind, "body": body, "priority": priority}
        status, answer = await self.request(key, "POST", "/v1/messages", request)
        if status != 202:
            raise DrillError(f"hub {key} refused a {kind} for {to} with {status}: {answer}")
        message_id: str = answer["id"]
        return message_id

    async def inbox(self, key: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = (await self.get(key, "/v1/inbox?limit=1000"))["messages"]
        return messages

    async def message(self, key: str, message_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = await self.get(key, f"/v1/messages/{message_id}")
        return answer

    async def links(self, key: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = (await self.get(key, "/v1/links"))["links"]
        return rows

    async def wait_for(
        self, what: str, check: Callable[[], Awaitable[bool]], timeout: float, interval: float = 0.1
    ) -> None:
        """Poll the async ``check`` until it is true; DrillError naming ``what`` after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await check():
            if loop.time() > deadline:
                raise DrillError(f"timed out after {timeout:.0f} s waiting for {what}")
            await asyncio.sleep(interval)
