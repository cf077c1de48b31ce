"""The test LAN itself (tests/netns.py): hosts reach each other, silent drop is silent, nothing is left."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests import netns

pytestmark = pytest.mark.skipif(netns.unavailable() is not None, reason=str(netns.unavailable()))


def listener(host: netns.Host) -> socket.socket:
    server = netns.socket_in(host.namespace)
    server.bind((host.address, 0))
    server.listen()
    return server


def connect(source: netns.Host, address: str, port: int, timeout: float) -> None:
    with netns.socket_in(source.namespace) as client:
        client.settimeout(timeout)
        client.connect((address, port))


def namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


def test_hosts_talk_over_the_lan_and_silent_drop_gives_no_answer_at_all() -> None:
    lan = netns.Lan(2)
    with lan as (a, b), listener(b) as server:
        port = server.getsockname()[1]
        connect(a, b.address, port, timeout=10)
        with pytest.raises(ConnectionRefusedError):  # b's loopback is b's own, not a's
            connect(a, "127.0.0.1", port, timeout=10)
        a.drop_silently()
        with pytest.raises(TimeoutError):  # no reset, no ICMP: the caller learns only by waiting
            connect(a, b.address, port, timeout=1)
        a.restore()
        connect(a, b.address, port, timeout=10)
        made = {host.namespace for host in (a, b)}
        assert made <= set(namespaces().split())
    assert not made & set(namespaces().split())


def test_netem_delays_or_says_the_kernel_cannot() -> None:
    with netns.Lan(2) as (a, _b):
        try:
            a.impair(delay_ms=50, loss_percent=1)
        except netns.NetemUnavailable as exc:
            pytest.skip(str(exc))
        assert "netem" in a.run("tc", "qdisc", "show", "dev", a.interface)
        a.restore()
        assert "netem" not in a.run("tc", "qdisc", "show", "dev", a.interface)


def test_hosts_also_talk_over_ipv6() -> None:
    with netns.Lan(2) as (a, b), netns.socket_in(b.namespace, socket.AF_INET6) as server:
        server.bind((b.address6, 0))
        server.listen()
        with netns.socket_in(a.namespace, socket.AF_INET6) as client:
            client.settimeout(10)
            client.connect((b.address6, server.getsockname()[1]))
