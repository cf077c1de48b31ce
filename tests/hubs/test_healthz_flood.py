"""``/healthz`` needs no token, so anyone who reaches the API's network port can ask for it as fast as they
like: a real ``beredt run`` hub answers each source address a bounded number of times and then 429 with
``Retry-After``, counts every refusal, and still answers another address and its own CLI socket."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.api.health import HEALTHZ_BURST, HEALTHZ_RATE
from tests.hubproc import HubProcess

# Far more than a burst: at two answers a second the hub would need over a minute to refill it for these.
REQUESTS = 10 * HEALTHZ_BURST


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    hub = HubProcess.create(tmp_path / "home", "Plejecenter Solbakken", "care-home", internet=False)
    hub.start()
    try:
        yield hub
    finally:
        hub.kill()


def pipelined_healthz(hub: HubProcess, count: int, *, source: str = "127.0.0.1") -> list[tuple[int, str]]:
    """``count`` requests for ``/healthz`` written at once on one connection from ``source``: each answer's
    status and headers, in order."""
    host = f"127.0.0.1:{hub.api_port}"
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    last = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", hub.api_port), timeout=60, source_address=(source, 0)) as s:
        s.sendall(request * (count - 1) + last)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    heads = re.findall(rb"HTTP/1\.1 (\d{3}) [^\r]*\r\n(.*?)\r\n\r\n", raw, re.S)
    return [(int(status), head.decode()) for status, head in heads]


def test_an_address_polling_healthz_is_answered_429_past_its_bound_and_counted(hub: HubProcess) -> None:
    started = time.monotonic()
    answers = pipelined_healthz(hub, REQUESTS)
    elapsed = time.monotonic() - started  # the hub answered them all within this
    assert len(answers) == REQUESTS
    statuses = [status for status, _ in answers]
    assert set(statuses) == {200, 429}, statuses
    assert statuses[0] == 200, "a first request is answered"
    refused = [head for status, head in answers if status == 429]
    # The bound, however slowly the hub answered: a burst and what the rate refilled meanwhile.
    assert statuses.count(200) <= HEALTHZ_BURST + HEALTHZ_RATE * elapsed + 1, (statuses.count(200), elapsed)
    for head in refused:
        match = re.search(r"^Retry-After: (\d+)\r?$", head, re.M | re.I)
        assert match and int(match.group(1)) >= 1, head

    # Counted, as the hub itself reports it (over its CLI socket, which is not limited).
    health = hub.get("/healthz")
    assert health["http_refused"].get("healthz_busy") == len(refused), health["http_refused"]

    # Another address has its own budget.
    statuses = [status for status, _ in pipelined_healthz(hub, 3, source="127.0.0.2")]
    assert statuses == [200, 200, 200]
