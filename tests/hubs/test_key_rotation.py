"""A care home's hub rotates its key with real hubs: ``beredt key rotate`` on the node, ``beredt key
approve`` on the staff hub, a restart; messages keep flowing both ways and the old key's frames are refused
once its grace period is over.

Topology: staff hub A (holds the root key, has B configured as a peer under B's old id) and care home B.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.core.frame import Kind
from hub.core.identity import Identity
from tests.attacker import post_frames
from tests.hubproc import HubProcess
from tests.hubs.test_municipal_roster import ANNOUNCE, beredt, enrol, refused, roster_version

GRACE_MINUTES = 0.25  # the old key is accepted 15 s after approval, then refused


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff")
    b = HubProcess.create(tmp_path / "b", "Plejecenter Solbakken", "care-home")
    a.config["trust"] = {
        "root": root[1],
        "root_key": str(tmp_path / "usb" / "root.key"),
        "announce_interval": ANNOUNCE,
    }
    a.add_peer(b, {"internet": b.internet_url})
    b.add_peer(a, {"internet": a.internet_url})
    b.set_default_route([a])
    enrol(b, a, "Plejecenter Solbakken")
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.kill()
        b.kill()


def old_key_frame(old: Identity, to: str, text: bytes) -> bytes:
    frame = old.sign(Kind.TEXT, bytes.fromhex(to), text, created=int(time.time()), ttl_minutes=60)
    return frame.encode()


@pytest.mark.timeout(400)  # several hubs and a dozen CLI runs: minutes on a loaded machine
def test_a_rotated_key_keeps_delivering_and_the_old_one_is_refused_after_the_grace(
    pair: tuple[HubProcess, HubProcess],
) -> None:
    a, b = pair
    b.wait_for("roster version 1", lambda: roster_version(b) == 1)
    old_id, old_url = b.node_id, b.internet_url
    shown = beredt("key", "rotate", "--config", str(b.config_path))
    statement = re.search(r"^rotationserklæring: (.+)$", shown, re.MULTILINE)
    assert statement, shown
    assert beredt("key", "rotate", "--config", str(b.config_path)) == shown, "asked again: the same key"
    approved = beredt(
        "key", "approve", statement[1], "--config", str(a.config_path), "--grace-minutes", str(GRACE_MINUTES)
    )
    new_id = re.search(r"signerer nu som ([0-9a-f]{16}) i roster-version 2", approved)
    assert new_id and new_id[1] != old_id, approved
    b.wait_for("roster version 2", lambda: roster_version(b) == 2, timeout=ANNOUNCE * 10)
    before_restart = b.send(a.node_id, "text", "stadig den gamle nøgle")  # within the grace
    a.wait_for("the old key's message", lambda: any(m["id"] == before_restart for m in a.inbox()))

    b.kill()
    b.start()  # takes the approved key at start
    assert b.cli("id").count(new_id[1]) >= 1
    b.node_id = new_id[1]
    assert (b.dir / "data" / "identity.retired.key").exists()
    from_b = b.send(a.node_id, "text", "Solbakken med ny nøgle")
    a.wait_for("B's message under its new key", lambda: any(m["id"] == from_b for m in a.inbox()))
    b.wait_for("the end-to-end ack from A", lambda: b.message(from_b)["end_to_end_acked"])
    to_b = a.send(new_id[1], "text", "Krisestaben hører jer")
    b.wait_for("A's message to the new key", lambda: any(m["id"] == to_b for m in b.inbox()))
    assert f"peer {old_id} rotated its key" in a.log_tail(5000)

    old = Identity.load(b.dir / "data" / "identity.retired.key")
    assert old.node_id.hex() == old_id

    def old_key_refused() -> bool:
        seen = refused(a, "expired")
        post_frames(a, [old_key_frame(old, a.node_id, "gammel nøgle".encode())], old_url)
        return refused(a, "expired") > seen

    a.wait_for("the old key refused after the grace", old_key_refused, timeout=GRACE_MINUTES * 60 + 60)


@pytest.mark.timeout(400)
def test_a_message_queued_to_the_old_key_is_re_sealed_to_the_new_one(
    pair: tuple[HubProcess, HubProcess],
) -> None:
    a, b = pair
    b.wait_for("roster version 1", lambda: roster_version(b) == 1)
    b.kill()  # away: what A sends now waits in A's queue, sealed to B's current key
    held = a.send(b.node_id, "text", "Til Solbakken mens nøglen skiftes")
    rotated = beredt("key", "rotate", "--config", str(b.config_path))
    statement = re.search(r"^rotationserklæring: (.+)$", rotated, re.MULTILINE)
    assert statement
    approved = beredt("key", "approve", statement[1], "--config", str(a.config_path))
    new_id = re.search(r"signerer nu som ([0-9a-f]{16}) i roster-version 2", approved)
    assert new_id, approved
    resealed = re.compile(rf"message {held} re-sealed to {b.node_id}'s new key as ([0-9a-f]{{32}})")
    a.wait_for(
        "the held message re-sealed", lambda: resealed.search(a.log_tail(5000)) is not None, timeout=120
    )
    found = resealed.search(a.log_tail(5000))
    assert found
    again = found[1]
    assert not a.request("GET", f"/v1/messages/{held}")[1].get("end_to_end_acked"), "the old one is not acked"

    b.start()  # still the old key: it learns of the approval from the roster version it now gets
    b.wait_for("roster version 2", lambda: roster_version(b) == 2, timeout=120)
    b.kill()
    b.start()  # takes the approved key at start, then gets the re-sealed message
    b.node_id = new_id[1]
    b.wait_for("the re-sealed message", lambda: any(m["id"] == again for m in b.inbox()), timeout=240)
    text = next(m for m in b.inbox() if m["id"] == again)
    assert "Til Solbakken mens nøglen skiftes" in str(text), text
    a.wait_for("B's end-to-end ack of it", lambda: a.message(again)["end_to_end_acked"], timeout=240)
