"""1,100 idle connections to a real hub's console port and to its internet link leave the API answering.

The hub runs with the common default of 1,024 file descriptors, so a hub that kept every connection open
would run out of them. It must refuse what is over its caps (counted in /healthz), keep serving the CLI
socket and other sources, and not flood its log. The API's latency under this load is measured by
``bench/bench_connection_flood.py``, not here.
"""

from __future__ import annotations

import os
import resource
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.core.bounded_http import ConnectionLimits
from tests.hubproc import HubProcess
from transports.internet import SERVER_LIMITS

FLOOD = 1_100
ATTACKER = "127.0.0.2"  # all of loopback's /8 reaches the hub; the staff's own traffic comes from 127.0.0.1

pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")


def _flood(port: int, count: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind((ATTACKER, 0))
        sock.connect(("127.0.0.1", port))
        held.append(sock)  # connected and silent: no request, ever
    return held


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    needed = 2 * FLOOD + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"this test process may open only {hard} files; it needs {needed}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    hub = HubProcess.create(tmp_path / "hub", "Plejecenter Solbakken", "care-home")
    hub.launcher = ["prlimit", "--nofile=1024:1024", "--"]
    hub.start()
    try:
        yield hub
    finally:
        hub.kill()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_idle_connections_leave_the_api_answering(hub: HubProcess) -> None:
    assert hub.process is not None
    held = _flood(hub.api_port, FLOOD) + _flood(hub.link_port, FLOOD)
    try:

        def all_refused() -> bool:
            health = hub.get("/healthz")
            api = health["http_refused"].get("connections_over_source", 0)
            link = health["link_http_refused"]["internet"].get("connections_over_source", 0)
            over_api = FLOOD - ConnectionLimits().per_source
            return bool(api >= over_api and link >= FLOOD - SERVER_LIMITS.per_source)

        hub.wait_for("the flood refused at the caps", all_refused, timeout=60)
        # The CLI's socket, the console for a tablet and the link for a peer all still answer.
        assert hub.get("/healthz")["ok"]
        assert hub.http("GET", "/console/")[0] == 200
        assert hub.http("GET", "/v1/links")[0] == 401, "answered (and still authenticated)"
        fds = len(os.listdir(f"/proc/{hub.process.pid}/fd"))
        assert fds < 400, f"the hub holds {fds} descriptors under the flood"
        log_size = (hub.dir / "hub.log").stat().st_size
        assert log_size < 200_000, f"{log_size} bytes of log for one flood"
    finally:
        for sock in held:
            sock.close()
