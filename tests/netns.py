"""Separate test machines on one computer: Linux network namespaces joined by a bridge.

Every hub on one loopback shares one address, one port space and one routing table, so a wrong bind or a
reply address that only works on localhost goes unnoticed. Here each ``Host`` has its own network stack:
its own loopback, one interface ``eth0`` with an address in 192.0.2.0/24 (TEST-NET-1, never routed) and
one in fd00:db8:b::/64 (a unique local prefix), and
a cable to a bridge in a switch namespace, like Pis on a LAN. Everything is made by ``Lan`` and removed when
it closes, even after a failure (and what a killed test run left behind is removed by the next ``Lan``);
nothing is added to this machine's own network namespace.

    with Lan(2) as (a, b):
        hub.launcher = a.command()                       # `ip netns exec <a> ...`
        a.http_json("http://127.0.0.1:8470/healthz")     # the API on a's own loopback
        b.impair(delay_ms=200, loss_percent=5)           # tc netem on b's interface (if the kernel has it)
        b.drop_silently()                                # packets to and from b vanish: no RST, no ICMP
        b.restore()

Namespaces need root and iproute2; ``unavailable()`` gives the reason to skip when either is missing.
"""

from __future__ import annotations

import ctypes
import functools
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import urllib.request
from types import TracebackType
from typing import Any

SUBNET_PREFIX = "192.0.2."
PREFIX_LENGTH = 24
SUBNET6_PREFIX = "fd00:db8:b::"
PREFIX6_LENGTH = 64
UNUSED_MAC = "02:00:5e:00:53:ff"  # locally administered, given to no interface here
CLONE_NEWNET = 0x40000000
COMMAND_TIMEOUT = 30.0


class NetemUnavailable(RuntimeError):
    """The kernel has no ``sch_netem`` qdisc, so latency and loss cannot be emulated on this machine."""


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if _ip() is None:
        return "the 'ip' tool (iproute2) is not installed"
    return None


def _ip() -> str | None:
    return shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin:/bin")


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def socket_in(namespace: str, family: int = socket.AF_INET) -> socket.socket:
    """A TCP socket that lives in ``namespace``: made by a short-lived thread that entered it.

    A socket belongs to the network namespace it was created in, whoever uses it later, and entering a
    namespace changes only the calling thread; the thread ends there, so no other thread ever moves."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def make() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            with open(f"/run/netns/{namespace}") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, f"setns into {namespace}: {os.strerror(error)}")
            made.append(socket.socket(family, socket.SOCK_STREAM))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=make, name=f"enter {namespace}", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


class _NamespaceConnection(http.client.HTTPConnection):
    def __init__(self, namespace: str, host: str, port: int | None = None, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self._namespace = namespace

    def connect(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket_in(self._namespace, family)
        self.sock.settimeout(self.timeout if isinstance(self.timeout, int | float) else None)
        self.sock.connect((self.host, self.port))


class _NamespaceHandler(urllib.request.HTTPHandler):
    def __init__(self, namespace: str) -> None:
        super().__init__()
        self._namespace = namespace

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_NamespaceConnection, self._namespace), req)


class Host:
    """One machine: a network namespace with loopback and ``eth0`` at ``address`` and ``address6``."""

    def __init__(self, namespace: str, address: str, address6: str) -> None:
        self.namespace = namespace
        self.address = address
        self.address6 = address6
        self.interface = "eth0"
        self.opener = urllib.request.build_opener(_NamespaceHandler(namespace))
        """A urllib opener whose connections start inside this host (for its loopback-only API)."""
        self.neighbours: list[Host] = []
        """The other hosts on its LAN."""
        self._impaired = False
        self._dropped: set[str] = set()

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside this host."""
        return [_ip() or "ip", "netns", "exec", self.namespace, *argv]

    def run(self, *argv: str) -> str:
        """Run ``argv`` inside this host and return its output; RuntimeError when it fails."""
        return _run(*self.command(*argv))

    def http_json(self, url: str, timeout: float = 15.0) -> Any:
        with self.opener.open(url, timeout=timeout) as answer:
            return json.loads(answer.read())

    def impair(self, *, delay_ms: float = 0, jitter_ms: float = 0, loss_percent: float = 0) -> None:
        """Delay and lose packets leaving this host (``tc netem``); replaces an earlier impairment.

        Raises ``NetemUnavailable`` when the kernel has no netem (some container and VM kernels)."""
        args = ["netem"]
        if delay_ms or jitter_ms:
            args += ["delay", f"{delay_ms}ms", f"{jitter_ms}ms"]
        if loss_percent:
            args += ["loss", f"{loss_percent}%"]
        result = subprocess.run(
            self.command("tc", "qdisc", "replace", "dev", self.interface, "root", *args),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            if "qdisc kind is unknown" in result.stderr:
                raise NetemUnavailable("this kernel has no sch_netem: latency and loss cannot be emulated")
            raise RuntimeError(f"tc netem on {self.namespace} failed: {result.stderr.strip()}")
        self._impaired = True

    def drop_silently(self, *peers: Host) -> None:
        """Packets from this host to ``peers`` (default: every other host on the LAN) vanish unanswered.

        The peers' addresses are pinned to a MAC address nobody has, so frames leave ``eth0`` and are
        discarded by every receiver: no reset, no ICMP, no carrier change, as with a cable cut far away.
        Needs no kernel module (unlike netem); undone by ``restore``."""
        for peer in peers or self.neighbours:
            self.run("ip", "neigh", "replace", peer.address, "lladdr", UNUSED_MAC, "dev", self.interface)
            self._dropped.add(peer.address)

    def restore(self) -> None:
        """Undo ``impair`` and ``drop_silently``."""
        if self._impaired:
            self.run("tc", "qdisc", "del", "dev", self.interface, "root")
            self._impaired = False
        while self._dropped:
            self.run("ip", "neigh", "del", self._dropped.pop(), "dev", self.interface)


def _remove_orphans() -> None:
    """Remove namespaces a killed test run left behind (named after a process that no longer exists)."""
    listing = subprocess.run(
        [_ip() or "ip", "netns", "list"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
    )
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(r"beredt-(\d+)-\d{4}-\w+", name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            subprocess.run(
                [_ip() or "ip", "netns", "del", name], capture_output=True, timeout=COMMAND_TIMEOUT
            )


class Lan:
    """``count`` hosts on one bridge: 192.0.2.1, .2, ...; a context manager that removes all of it."""

    def __init__(self, count: int) -> None:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(reason)
        self._tag = f"beredt-{os.getpid()}-{id(self) % 10_000:04d}"
        self._switch = f"{self._tag}-sw"
        self.hosts = [
            Host(f"{self._tag}-{index}", f"{SUBNET_PREFIX}{index + 1}", f"{SUBNET6_PREFIX}{index + 1}")
            for index in range(count)
        ]
        self._made: list[str] = []
        for host in self.hosts:
            host.neighbours = [other for other in self.hosts if other is not host]

    def __enter__(self) -> list[Host]:
        _remove_orphans()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self.hosts

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _build(self) -> None:
        ip = _ip() or "ip"
        _run(ip, "netns", "add", self._switch)
        self._made.append(self._switch)
        _run(ip, "-n", self._switch, "link", "add", "br0", "type", "bridge")
        _run(ip, "-n", self._switch, "link", "set", "br0", "up")
        for index, host in enumerate(self.hosts):
            _run(ip, "netns", "add", host.namespace)
            self._made.append(host.namespace)
            # Made inside the switch namespace, so no interface ever appears in this machine's own.
            port = f"port{index}"
            _run(ip, "-n", self._switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                 "netns", host.namespace)  # fmt: skip
            _run(ip, "-n", self._switch, "link", "set", port, "master", "br0", "up")
            _run(ip, "-n", host.namespace, "addr", "add", f"{host.address}/{PREFIX_LENGTH}", "dev", "eth0")
            # nodad: usable at once, without waiting out duplicate address detection.
            _run(
                ip,
                "-n",
                host.namespace,
                "addr",
                "add",
                f"{host.address6}/{PREFIX6_LENGTH}",
                "dev",
                "eth0",
                "nodad",
            )
            _run(ip, "-n", host.namespace, "link", "set", "eth0", "up")
            _run(ip, "-n", host.namespace, "link", "set", "lo", "up")

    def close(self) -> None:
        """Remove every namespace made (their interfaces go with them); safe to call twice."""
        ip = _ip() or "ip"
        while self._made:
            subprocess.run(
                [ip, "netns", "del", self._made.pop()], capture_output=True, timeout=COMMAND_TIMEOUT
            )
