"""A revocation reaches a LoRa care home as a root-signed delta, not as the whole roster version: real
hubs on the fake mesh (the real ``meshtastic`` library against fake radios), no internet between them.

Staff hub A holds the root key and a roster of a dozen care homes; care home B is on the mesh only. B
catches up on the whole version (handed to it over radio, as a new hub is), then A revokes one care home:
B adopts the next version from the delta alone. What A put on the air for it is counted against the
size of the whole version's pages, measured in the same run.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.core.identity import Identity
from hub.core.kinds.roster import enrolment_code
from tests.hubproc import HubProcess
from tests.hubs.test_municipal_roster import beredt, enrol, roster_version
from tests.transports.test_lora import ADDR, MeshInBackground

A, B = 0xA1, 0xB2
HOMES = 12  # care homes enrolled besides B: a roster whose whole version spans a dozen LoRa packets


@pytest.fixture
def mesh_pair(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, MeshInBackground, list[str]]]:
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    mesh = MeshInBackground(A, B)
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff", internet=False)
    b = HubProcess.create(tmp_path / "b", "Plejecenter Solbakken", "care-home", internet=False)
    for hub, num in ((a, A), (b, B)):
        hub.add_link(
            "lora",
            {"kind": "lora", "host": f"127.0.0.1:{mesh.ports[num]}", "connect_timeout": 15, "ack_timeout": 8},
        )
    a.config["trust"] = {
        "root": root[1],
        "root_key": str(tmp_path / "usb" / "root.key"),
        "announce_interval": 600,  # only new versions go out during the test
    }
    a.add_peer(b, {"lora": ADDR[B]})
    b.add_peer(a, {"lora": ADDR[A]})
    b.set_default_route([a])
    enrol(b, a, "Plejecenter Solbakken")
    homes = [Identity.generate(f"Plejecenter {i:02d}", "care-home").card for i in range(HOMES)]
    for card in homes:
        beredt(
            "enrol", "approve", enrolment_code(card), "--config", str(a.config_path), "--card", card.encode(),
            "--role", "care-home", "--institution", f"{card.name} i Aarhus", "--group", "district-nord",
        )  # fmt: skip
    try:
        for hub in (b, a):  # a radio acks what its hub is not yet connected to hear: the home first
            hub.start()
        yield a, b, mesh, [card.node_id.hex() for card in homes]
    finally:
        for hub in (a, b):
            hub.kill()
        mesh.close()


def _pages_bytes(hub: HubProcess) -> int:
    """The whole signed version the staff hub holds: its pages' payload bytes."""
    lines = (hub.dir / "data" / "roster.signed").read_text().split()
    return sum(len(base64.b64decode(line)) for line in lines)


@pytest.mark.timeout(600)  # LoRa retries; generous for a loaded 2-core machine
def test_a_revocation_reaches_a_lora_care_home_as_a_delta(
    mesh_pair: tuple[HubProcess, HubProcess, MeshInBackground, list[str]],
) -> None:
    a, b, mesh, homes = mesh_pair
    whole = roster_version(a)
    b.wait_for("the whole version handed over LoRa", lambda: roster_version(b) == whole, timeout=180)
    packets, sent, airtime = (
        len(mesh.frames_from(A)),
        sum(map(len, mesh.frames_from(A))),
        mesh.run(_airtime(mesh)),
    )

    started = time.monotonic()
    beredt("revoke", homes[0], "--config", str(a.config_path))
    b.wait_for("the revoking version over LoRa", lambda: roster_version(b) == whole + 1, timeout=180)
    elapsed = time.monotonic() - started
    on_air = mesh.frames_from(A)[packets:]
    spent = mesh.run(_airtime(mesh)) - airtime
    pages = _pages_bytes(a)
    print(
        f"revocation by delta: A sent {len(on_air)} LoRa packets, {sum(map(len, on_air))} bytes,"
        f" {spent:.2f} s of airtime until B held version {whole + 1} ({elapsed:.1f} s);"
        f" the whole version is {pages} bytes of pages (A had sent {sent} bytes in all before, the"
        " whole version's hand-over among them)"
    )
    assert re.search(rf"roster delta {whole}->{whole + 1} \(\d+ bytes\) applied", b.log_tail(400))
    assert sum(map(len, on_air)) < pages, "the delta, and all else A sent meanwhile, is less than the pages"


async def _airtime(mesh: MeshInBackground) -> float:
    return mesh.medium.airtime_used(A)
