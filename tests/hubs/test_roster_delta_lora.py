"""A revocation reaches a LoRa care home as a root-signed delta, not as the whole roster version: real
hubs on the fake mesh (the real ``meshtastic`` library against fake radios), no internet between them.

Staff hub A holds the root key and a roster of a dozen care homes; care home B is on the mesh only. B
catches up on the whole version (handed to it over radio, as a new hub is), then A revokes one care home:
B adopts the next version from the delta alone. The ROSTER frames A put on the air for it are counted
against those that carried the whole version, measured in the same run.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.core.identity import Identity
from hub.core.kinds.roster import enrolment_code
from tests.hubproc import HubProcess
from tests.hubs.lora_roster_mesh import STAFF as A
from tests.hubs.lora_roster_mesh import staff_and_homes
from tests.hubs.test_lora_join import airtime_by_kind
from tests.hubs.test_municipal_roster import beredt, enrol, roster_version
from tests.transports.test_lora import MeshInBackground

B = 0xB2
HOMES = 12  # care homes enrolled besides B: a roster whose whole version spans a dozen LoRa packets


@pytest.fixture
def mesh_pair(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, MeshInBackground, list[str]]]:
    with staff_and_homes(tmp_path, {"Plejecenter Solbakken": B}) as (a, (b,), mesh):
        enrol(b, a, "Plejecenter Solbakken")
        homes = [Identity.generate(f"Plejecenter {i:02d}", "care-home").card for i in range(HOMES)]
        for card in homes:
            beredt(
                "enrol", "approve", enrolment_code(card), "--config", str(a.config_path),
                "--card", card.encode(), "--role", "care-home",
                "--institution", f"{card.name} i Aarhus", "--group", "district-nord",
            )  # fmt: skip
        for hub in (b, a):  # a radio acks what its hub is not yet connected to hear: the home first
            hub.start()
        yield a, b, mesh, [card.node_id.hex() for card in homes]


@pytest.mark.timeout(600)  # LoRa retries; generous for a loaded 2-core machine
def test_a_revocation_reaches_a_lora_care_home_as_a_delta(
    mesh_pair: tuple[HubProcess, HubProcess, MeshInBackground, list[str]],
) -> None:
    a, b, mesh, homes = mesh_pair
    whole = roster_version(a)
    b.wait_for("the whole version over LoRa", lambda: roster_version(b) == whole, timeout=180)
    b.wait_for("the whole version's frames all on the air", lambda: _roster_on_air(mesh)[0] >= _pages(a))
    pages_sent, pages_air = _roster_on_air(mesh)

    beredt("revoke", homes[0], "--config", str(a.config_path))
    b.wait_for("the revoking version over LoRa", lambda: roster_version(b) == whole + 1, timeout=180)
    b.wait_for("the delta's frame all on the air", lambda: _roster_on_air(mesh)[0] > pages_sent)
    sent, air = (
        now - before for now, before in zip(_roster_on_air(mesh), (pages_sent, pages_air), strict=True)
    )
    print(
        f"revocation to a LoRa care home: {sent} ROSTER frame(s), {air:.2f} s of A's airtime; the whole"
        f" version ({_pages(a)} page(s), {_pages_bytes(a)} bytes) took {pages_sent} ROSTER frame(s),"
        f" {pages_air:.2f} s, from start (broadcast and any hand-off)"
    )
    assert re.search(rf"roster delta {whole}->{whole + 1} \(\d+ bytes\) applied", b.log_tail(400))
    assert air < pages_air / pages_sent * _pages(a), "less air than one copy of the whole version"


def _roster_on_air(mesh: MeshInBackground) -> tuple[int, float]:
    """ROSTER frames the staff hub put on the air so far, and their airtime (fragments included)."""
    return airtime_by_kind(mesh, A).get("ROSTER", (0, 0.0))


def _pages(hub: HubProcess) -> int:
    return len((hub.dir / "data" / "roster.signed").read_text().split())


def _pages_bytes(hub: HubProcess) -> int:
    """The whole signed version the staff hub holds: its pages' payload bytes."""
    lines = (hub.dir / "data" / "roster.signed").read_text().split()
    return sum(len(base64.b64decode(line)) for line in lines)
