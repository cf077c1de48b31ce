"""Real hubs as subprocesses for end-to-end tests: ``beredt init`` and ``beredt run`` on free ports.

    a = HubProcess.create(tmp_path / "a", "Kommune", "staff")
    b = HubProcess.create(tmp_path / "b", "Plejehjem", "care-home")
    a.add_peer(b, links={"internet": b.internet_url}); a.set_default_route([b])
    a.trust(b); b.trust(a)
    a.start(); b.start()
    message_id = a.send(b.node_id, "text", "hej")
    b.wait_inbox(lambda msgs: ...)

Extra links (MQTT, LoRa, SINE, satellite) are added with ``add_link(name, {...})`` before start.
Logs go to ``<dir>/hub.log``; on failure tests print them with ``log_tail()``. The helpers reach the API the
way the CLI does, over the hub's Unix socket; ``http()`` is the network port, as a tablet or an app sees it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from drill.topology import free_port
from hub.api import local

BEREDT = [sys.executable, "-m", "hub.cli"]
REPO = Path(__file__).resolve().parent.parent


def staff_and_care_home(
    folder: Path, home_name: str = "Plejecenter Solbakken", *, staff_dir: Path | None = None
) -> tuple[HubProcess, HubProcess]:
    """A staff hub and a care-home hub that route to and trust each other over the internet link.

    The staff hub's folder is ``staff_dir`` if given (a test may put it on a disk of its own). Not
    started: a test may add links, users or options first, then ``start()`` both."""
    staff = HubProcess.create(staff_dir or folder / "staff", "Aarhus krisestab", "staff")
    home = HubProcess.create(folder / "home", home_name, "care-home")
    staff.add_peer(home, {"internet": home.internet_url})
    home.add_peer(staff, {"internet": staff.internet_url})
    staff.set_default_route([home])
    home.set_default_route([staff])
    staff.trust(home)
    home.trust(staff)
    return staff, home


def wait_for_internet_up(folder: Path, timeout: float = 120) -> None:
    """Until every hub under ``folder`` (a ``beredt demo`` folder) sees each of its internet links up: on a
    loaded machine a probe made while a neighbour was still starting leaves a link degraded for a while, and
    a message sent then rightly goes by MQTT."""
    deadline = time.monotonic() + timeout
    while True:
        states = [
            row["state"]
            for socket in sorted(folder.glob("*-data/" + local.SOCKET_NAME))
            for row in local.request(socket, "GET", "/v1/links")[1]["links"]
            if row["link"] == "internet"
        ]
        if states and all(state == "up" for state in states):
            return
        assert time.monotonic() < deadline, f"internet links not all up: {states}"
        time.sleep(0.5)


class HubError(AssertionError):
    pass


class HubProcess:
    def __init__(self, directory: Path, name: str, role: str) -> None:
        self.dir = directory
        self.name = name
        self.role = role
        self.api_port = free_port()
        self.link_port = free_port()
        self.config_path = directory / "beredt.toml"
        self.config: dict[str, Any] = {
            "node": {"name": name, "role": role, "data_dir": "data"},
            "api": {"listen": f"127.0.0.1:{self.api_port}"},
            "links": {"internet": {"kind": "internet", "listen": f"127.0.0.1:{self.link_port}"}},
            "peers": [],
            "routes": {},
            "timing": {"hop_ack_timeout": 2.0, "retry_initial": 0.2, "retry_cap": 2.0, "probe_interval": 0.5},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.launcher: list[str] = []
        """A command prefix for ``beredt run``, e.g. ``ip netns exec <host>`` (see tests/netns.py)."""
        self.env: dict[str, str] = {}
        """Extra environment for ``beredt run`` (``BEREDT_TEST_CLOCK_OFFSET``, say)."""
        self.opener = urllib.request.build_opener()
        """How requests to the network port are made (a namespaced host passes its own opener); the
        API socket is a file, reachable from any namespace."""
        self.node_id = ""
        self.card = ""

    @property
    def internet_url(self) -> str:
        return f"http://127.0.0.1:{self.link_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def socket_path(self) -> Path:
        return self.dir / "data" / local.SOCKET_NAME

    @classmethod
    def create(cls, directory: Path, name: str, role: str, *, internet: bool = True) -> HubProcess:
        directory.mkdir(parents=True, exist_ok=True)
        hub = cls(directory, name, role)
        if not internet:
            hub.config["links"] = {}
        hub.write_config()
        out = hub.cli("init")
        hub.card = next(
            line.partition(":")[2].strip() for line in out.splitlines() if line.startswith("kort:")
        )
        hub.node_id = next(line.split()[-1] for line in out.splitlines() if line.startswith("node-id:"))
        return hub

    def write_config(self) -> None:
        self.config_path.write_text(tomli_w.dumps(self.config))

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        result = subprocess.run(
            [*BEREDT, *args[:1], "--config", str(self.config_path), *args[1:]]
            if args[0] not in ("roster", "token", "exercise")
            else [*BEREDT, args[0], args[1], "--config", str(self.config_path), *args[2:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )
        if check and result.returncode != 0:
            raise HubError(f"beredt {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result.stdout + result.stderr

    # ---- topology -----------------------------------------------------------------------------------

    def add_link(self, name: str, options: Mapping[str, Any]) -> None:
        self.config["links"][name] = dict(options)
        self.write_config()

    def add_peer(self, other: HubProcess, links: Mapping[str, str]) -> None:
        self.config["peers"].append({"node": other.node_id, "name": other.name, "links": dict(links)})
        self.write_config()

    def set_default_route(self, hops: list[HubProcess]) -> None:
        self.config["routes"]["default"] = [h.node_id for h in hops]
        self.write_config()

    def set_route(self, destination: HubProcess, hops: list[HubProcess]) -> None:
        self.config["routes"][destination.node_id] = [h.node_id for h in hops]
        self.write_config()

    def trust(self, *others: HubProcess) -> None:
        for other in others:
            self.cli("roster", "add", other.card)

    # ---- process ------------------------------------------------------------------------------------

    def start(self, timeout: float = 30, *, options: Sequence[str] = (), move_api: bool = True) -> None:
        """``beredt run`` (with ``options`` such as ``--new-store``) until ``/healthz`` says ready.

        The API port was free when it was chosen, but another test's process may have taken it since:
        then (``move_api``) the hub is started again on a port chosen anew (no other hub names this one's
        API port)."""
        for _ in range(3 if move_api else 0):
            try:
                self._start(timeout, options)
                return
            except HubError as exc:
                if f"cannot serve the API on 127.0.0.1:{self.api_port}: Address already in use" not in str(
                    exc
                ):
                    raise
            self.api_port = free_port()
            self.config["api"]["listen"] = f"127.0.0.1:{self.api_port}"
            self.write_config()
        self._start(timeout, options)

    def _start(self, timeout: float, options: Sequence[str]) -> None:
        log = open(self.dir / "hub.log", "ab")  # noqa: SIM115 - owned by the child process
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self.process = subprocess.Popen(
            [*self.launcher, *BEREDT, "run", "--config", str(self.config_path), *options],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HubError(f"hub {self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.socket_path.exists():
                try:
                    if self.get("/healthz")["ok"]:
                        return
                except HubError:
                    pass
            time.sleep(0.1)
        raise HubError(f"hub {self.name} did not become ready:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: a process crash, no chance to flush or say goodbye (the page cache survives it)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise HubError(f"hub {self.name} ignored SIGTERM:\n{self.log_tail()}") from None

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_tail(self, lines: int = 60) -> str:
        path = self.dir / "hub.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    # ---- API ----------------------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Over the API socket, as the CLI does."""
        try:
            return local.request(self.socket_path, method, path, body, timeout=15)
        except local.Unreachable as exc:
            alive = self.process is not None and self.process.poll() is None
            state = "running" if alive else f"exited with {self.process.returncode if self.process else None}"
            raise HubError(
                f"{method} {path} on {self.name} failed ({exc}); hub {state}:\n{self.log_tail()}"
            ) from exc

    def http(
        self, method: str, path: str, body: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> tuple[int, Any]:
        """Over the network port (``[api] listen``), with exactly the headers given: the status and the
        body, decoded if it is JSON."""
        request = urllib.request.Request(
            self.api_url + path, data=body, method=method, headers=dict(headers or {})
        )
        try:
            with self.opener.open(request, timeout=15) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw or b"null")
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        if status != 200:
            raise HubError(f"GET {path} -> {status}: {body}")
        return body

    def send(self, to: str, kind: str, body: Any, **extra: Any) -> str:
        status, answer = self.request("POST", "/v1/messages", {"to": to, "kind": kind, "body": body, **extra})
        if status != 202:
            raise HubError(f"send refused with {status}: {answer}")
        message_id: str = answer["id"]
        return message_id

    def inbox(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self.get("/v1/inbox?limit=1000")["messages"]
        return messages

    def message(self, message_id: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.get(f"/v1/messages/{message_id}")
        return answer

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        raise HubError(f"{self.name}: timed out waiting for {what}\n{self.log_tail()}")
