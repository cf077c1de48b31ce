"""A hub whose clock reads 1970 takes the time only from peers answering its challenge live, across real
``beredt run`` processes. Two frames genuinely signed by two care homes three days ago, within a minute
of each other (what an attacker who recorded them can replay), and a recorded signed time answer served
at a care home's address, leave the clock untrusted; the two care homes themselves, once running, set it.
"""

from __future__ import annotations

import http.server
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.core.clock import PLAUSIBLE_EPOCH
from hub.core.frame import Kind
from hub.core.time_answer import TimeAnswer
from hub.service.clock_offset import ENV
from tests.attacker import identity_of, post_frames, sign_as
from tests.hubproc import HubProcess
from transports.internet import TIME_HEADER

THREE_DAYS = 3 * 24 * 3600


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, HubProcess]]:
    staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff")
    homes = [
        HubProcess.create(tmp_path / "a", "Plejecenter Solbakken", "care-home"),
        HubProcess.create(tmp_path / "b", "Plejehjemmet Skovbo", "care-home"),
    ]
    for home in homes:
        staff.add_peer(home, {"internet": home.internet_url})
        home.add_peer(staff, {"internet": staff.internet_url})
        home.set_default_route([staff])
        home.trust(staff)
    staff.trust(*homes)
    staff.env[ENV] = str(100_000 - time.time())  # a Pi that booted in 1970 after a power cut
    try:
        yield staff, homes[0], homes[1]
    finally:
        for hub in (staff, *homes):
            hub.kill()


def _clock(staff: HubProcess) -> tuple[bool, float]:
    health = staff.get("/healthz")
    return bool(health["clock_trusted"]), float(health["clock_time"])


class _RecordedAnswer(http.server.BaseHTTPRequestHandler):
    """Serves, at a care home's address, the care home's signed answer to some earlier challenge."""

    answer = ""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header(TIME_HEADER, self.answer)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.timeout(400)  # three hubs, a 1970 clock and live time answers on a loaded 2-core machine
def test_replays_leave_a_1970_clock_alone_and_live_peers_set_it(
    hubs: tuple[HubProcess, HubProcess, HubProcess],
) -> None:
    staff, a, b = hubs
    staff.start()
    trusted, reading = _clock(staff)
    assert not trusted and reading < PLAUSIBLE_EPOCH

    recorded = time.time() - THREE_DAYS
    frames = [
        sign_as(
            home, Kind.TEXT, staff.node_id, b"Alt vel", created=recorded + n * 30, ttl_minutes=5 * 24 * 60
        )
        for n, home in enumerate((a, b))
    ]
    assert post_frames(staff, [f.encode() for f in frames], reply_to="http://127.0.0.1:9") == 204
    stored = {f.id.hex() for f in frames}
    staff.wait_for("both replayed frames stored", lambda: stored <= {m["id"] for m in staff.inbox()})

    # Care home A's address answers probes with A's genuinely signed answer to an earlier nonce.
    old = TimeAnswer(identity_of(a).node_id, secrets.token_bytes(16), int(recorded * 1000))
    _RecordedAnswer.answer = TimeAnswer(
        old.node, old.nonce, old.unix_ms, identity_of(a).sign_statement(old.signed_message())
    ).encode()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.link_port), _RecordedAnswer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        staff.wait_for(
            "the recorded answer refused", lambda: staff.get("/healthz")["time_answers"]["refused"] >= 1
        )
    finally:
        server.shutdown()
        server.server_close()
    trusted, reading = _clock(staff)
    assert not trusted and reading < PLAUSIBLE_EPOCH, "replayed evidence moved the clock"

    a.start()
    b.start()
    staff.wait_for("the clock taken from the live care homes", lambda: _clock(staff)[0], timeout=90)
    trusted, reading = _clock(staff)
    assert abs(reading - time.time()) < 60, reading
    assert staff.get("/healthz")["time_answers"]["taken"] >= 2
    assert "taking time from the signed answers of" in (staff.dir / "hub.log").read_text()
