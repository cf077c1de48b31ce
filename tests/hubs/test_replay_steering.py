"""Nothing unsigned, and nothing replayed, steers a real hub: a recorded frame three days old teaches no
address, and a flood of made-up reply-to URLs leaves no state behind. The staff hub knows the care home
only by its key (no configured URL), so it must learn the address, which is what an attacker would
steer. A replayed frame's hop ack goes to the address its signer proved, not to a third party's listener
the replay names. A reply-to that takes the hop ack's connection and never answers holds back no other
hop ack."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.core.frame import Kind, decode_frame
from hub.relay.acks import MAX_STRANGER_HOP_ACKS
from tests.attacker import post_frames, sign_as
from tests.hubproc import HubProcess, staff_and_care_home
from transports.internet import FRAMES_PATH, MAX_DESTINATIONS

THREE_DAYS = 3 * 24 * 3600


@pytest.fixture
def staff_and_unlisted_home(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff")
    home = HubProcess.create(tmp_path / "home", "Plejecenter Solbakken", "care-home")
    staff.add_peer(home, {})  # reached at whatever address it proves, by signing a fresh frame
    home.add_peer(staff, {"internet": staff.internet_url})
    home.set_default_route([staff])
    staff.trust(home)
    home.trust(staff)
    staff.start()
    home.start()
    try:
        yield staff, home
    finally:
        staff.kill()
        home.kill()


def _address_of(staff: HubProcess, home: HubProcess) -> str | None:
    peer = next(p for p in staff.get("/v1/peers")["peers"] if p["node"] == home.node_id)
    address: str | None = peer["links"].get("internet")
    return address


def test_a_replayed_old_frame_and_a_reply_to_flood_steer_nothing(
    staff_and_unlisted_home: tuple[HubProcess, HubProcess],
) -> None:
    staff, home = staff_and_unlisted_home
    hello = home.send(staff.node_id, "text", "Solbakken er på nettet")
    staff.wait_for("the care home's first message", lambda: any(m["id"] == hello for m in staff.inbox()))
    staff.wait_for("its address, learned", lambda: _address_of(staff, home) == home.internet_url)

    # A frame the care home really signed three days ago (still within its time to live), replayed
    # with the attacker's reply-to, twice.
    recorded = sign_as(
        home,
        Kind.TEXT,
        staff.node_id,
        b"Ring til os her",
        created=time.time() - THREE_DAYS,
        ttl_minutes=5 * 24 * 60,
    ).encode()
    attacker = "http://127.0.0.1:9"
    assert post_frames(staff, [recorded], reply_to=attacker) == 204
    assert post_frames(staff, [recorded], reply_to=attacker) == 204
    staff.wait_for("the replay refused", lambda: staff.get("/healthz")["refused"].get("replayed", 0) >= 1)
    assert _address_of(staff, home) == home.internet_url, "a replayed frame steered the address"

    # Claimed as relayed (the hop count is unsigned), the replay's hop ack is meant for a hop the staff hub
    # knows no address of, so each new reply-to URL gets one, and nothing more.
    relayed = decode_frame(recorded).with_hops(1).encode()
    for port in range(1, 2 * MAX_DESTINATIONS + 1):
        assert post_frames(staff, [relayed], reply_to=f"http://127.0.0.1:{port}") == 204
    staff.wait_for(
        "the flood counted",
        lambda: staff.get("/healthz")["refused"].get("replayed", 0) >= 2 * MAX_DESTINATIONS,
    )
    # Well past the cap: without the bound there would be that many destinations.
    past_cap = MAX_DESTINATIONS + 64
    staff.wait_for("its hop acks tried", lambda: staff.get("/healthz")["hop_acks_failed"] >= past_cap)
    links = staff.get("/v1/links")["links"]
    assert len(links) <= 2, f"one row per link and known peer, not per claimed URL: {links}"
    internet = next(row for row in links if row["link"] == "internet")
    # Idle destinations are forgotten beyond the cap; one still busy with its POST may linger.
    assert internet["details"]["destinations"] <= MAX_DESTINATIONS + 8, internet
    assert [p["node"] for p in staff.get("/v1/peers")["peers"]] == [home.node_id]
    assert _address_of(staff, home) == home.internet_url

    reply = staff.send(home.node_id, "text", "Vi kommer kl. 14")
    home.wait_for(
        "the staff's reply at the true address", lambda: any(m["id"] == reply for m in home.inbox())
    )
    log = (staff.dir / "hub.log").read_text()
    assert log.count("learned address of") == 1, "the address was learned once, from the fresh frame"
    # Over 500 replays are counted, not logged: a recorded frame sent again and again must not fill the log.
    assert log.count("duplicate ") < 10, f"{log.count('duplicate ')} log lines for replayed frames"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A third party's web server: notes every request it gets and answers 204."""

    seen: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.seen.append(f"POST {self.path}")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def third_party() -> Iterator[tuple[str, list[str]]]:
    """A listener that belongs to no hub: its URL and the requests it received."""
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _acks_tried(staff: HubProcess) -> int:
    health = staff.get("/healthz")
    return int(health["hop_acks_sent"]) + int(health["hop_acks_failed"])


def test_a_replayed_frame_gets_no_hop_ack_at_a_third_partys_listener(
    staff_and_unlisted_home: tuple[HubProcess, HubProcess],
) -> None:
    staff, home = staff_and_unlisted_home
    hello = home.send(staff.node_id, "text", "Solbakken er på nettet")
    staff.wait_for("the care home's first message", lambda: any(m["id"] == hello for m in staff.inbox()))
    staff.wait_for("its address, learned", lambda: _address_of(staff, home) == home.internet_url)
    # A frame the care home really signed, recorded, then sent by the attacker naming a victim's server as
    # the reply-to: once as new to the staff hub, once more as a replay.
    recorded = sign_as(home, Kind.TEXT, staff.node_id, b"Ring til os her").encode()
    with third_party() as (victim, seen):
        before = _acks_tried(staff)
        assert post_frames(staff, [recorded], reply_to=victim) == 204
        staff.wait_for("its hop ack", lambda: _acks_tried(staff) > before)
        before = _acks_tried(staff)
        assert post_frames(staff, [recorded], reply_to=victim) == 204
        staff.wait_for("the replay refused", lambda: staff.get("/healthz")["refused"].get("replayed", 0) >= 1)
        staff.wait_for("the replay's hop ack", lambda: _acks_tried(staff) > before)
        assert seen == [], "a hop ack went to the address the frame's POST named"

        # The listener does hear a hop ack meant for a hop the staff hub knows no address of (a relayed
        # copy, by its unsigned hop count): such an answer is still bounded by MAX_STRANGER_HOP_ACKS.
        relayed = decode_frame(recorded).with_hops(1).encode()
        assert post_frames(staff, [relayed], reply_to=victim) == 204
        staff.wait_for("the hop ack at the named address", lambda: seen == [f"POST {FRAMES_PATH}"])


@contextlib.contextmanager
def tarpit() -> Iterator[int]:
    """The port of a server on every loopback address that takes connections (the kernel's listen queue)
    and never answers."""
    listener = socket.create_server(("0.0.0.0", 0), backlog=64)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def test_a_reply_to_that_never_answers_holds_back_no_other_hop_ack(tmp_path: Path) -> None:
    staff, home = staff_and_care_home(tmp_path)
    staff.config["links"]["internet"]["timeout"] = 120  # a hop ack to the tarpit hangs for minutes
    staff.write_config()
    staff.start()
    home.start()
    try:
        with tarpit() as port:
            # Any frame the care home signed, sent again and again as if relayed (so its hop ack is meant
            # for a hop of unknown address), each time with another reply-to at the tarpit: more hop acks
            # to addresses of no peer than may be under way at once.
            recorded = sign_as(home, Kind.TEXT, staff.node_id, b"Ring til os her")
            assert post_frames(staff, [recorded.encode()], reply_to=home.internet_url) == 204
            staff.wait_for(
                "the frame stored", lambda: any(m["id"] == recorded.id.hex() for m in staff.inbox())
            )
            for n in range(MAX_STRANGER_HOP_ACKS + 4):
                copy = recorded.with_hops(1).encode()
                assert post_frames(staff, [copy], reply_to=f"http://127.0.0.{2 + n}:{port}") == 204
            staff.wait_for(
                "the hop acks beyond the bound dropped",
                lambda: staff.get("/healthz")["hop_acks_failed"] >= 4,
            )
            before = staff.get("/healthz")["hop_acks_sent"]
            sent = home.send(staff.node_id, "text", "Vand til fløj B")
            staff.wait_for("the message", lambda: any(m["id"] == sent for m in staff.inbox()))
            staff.wait_for(
                "the care home's hop ack, while the tarpit holds its own",
                lambda: staff.get("/healthz")["hop_acks_sent"] > before,
                timeout=90,
            )
    finally:
        staff.kill()
        home.kill()
