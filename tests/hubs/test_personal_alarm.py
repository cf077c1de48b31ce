"""A citizen's handheld presses its alarm: a relay hub's radio hears it, the municipality gets it.

Real ``beredt run`` processes; the mesh is the fake radios driven by the real ``meshtastic`` library (the
handheld's too). The relay hub owns the radio and signs the alarm on; the staff hub is the municipality.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from meshtastic.tcp_interface import TCPInterface

from hub.core.handhelds import FILE_NAME, fingerprint
from tests.console.test_hub_process import Browser, add_user
from tests.hubproc import HubProcess
from tests.transports.test_lora import MeshInBackground

RADIO, HANDHELD = 0xA1, 0xD1


def write_register(hub: HubProcess, key: bytes) -> None:
    encoded = base64.b64encode(key).decode()
    (hub.dir / "data" / FILE_NAME).write_text(
        f'[[handheld]]\nnode = "!{HANDHELD:08x}"\npublic_key = "{encoded}"\ncitizen = "C-0042"\n'
    )


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess, MeshInBackground, bytes]]:
    mesh = MeshInBackground(RADIO, HANDHELD)
    key = mesh.radios[HANDHELD].public_key
    assert key is not None
    staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff")
    mast = HubProcess.create(tmp_path / "mast", "Mast Nord", "relay")
    mast.add_link("lora", {"kind": "lora", "host": f"127.0.0.1:{mesh.ports[RADIO]}", "personal_alarms": True})
    mast.config["personal_alarm"] = {"report_to": staff.node_id}
    mast.add_peer(staff, {"internet": staff.internet_url})
    staff.add_peer(mast, {"internet": mast.internet_url})
    mast.set_default_route([staff])
    staff.set_default_route([mast])
    staff.trust(mast)
    mast.trust(staff)
    for hub in (staff, mast):
        write_register(hub, key)
    add_user(staff, "hansen", "coordinator")
    try:
        staff.start()
        mast.start()
        yield staff, mast, mesh, key
    finally:
        staff.kill()
        mast.kill()
        mesh.close()


def press(mesh: MeshInBackground, text: str) -> None:
    iface: Any = TCPInterface("127.0.0.1", portNumber=mesh.ports[HANDHELD], timeout=15)
    try:
        iface.sendData(text.encode(), destinationId=f"!{RADIO:08x}", portNum=1, wantAck=True)
    finally:
        iface.close()


def test_a_handheld_alarm_reaches_the_municipality_signed_and_sealed(
    setup: tuple[HubProcess, HubProcess, MeshInBackground, bytes],
) -> None:
    staff, mast, mesh, key = setup
    press(mesh, "Jeg er faldet")

    def alarms() -> list[dict[str, Any]]:
        return [m for m in staff.inbox() if m["kind"] == "citizen_alarm"]

    staff.wait_for("the alarm at the municipality", lambda: bool(alarms()), timeout=60)
    (alarm,) = alarms()
    assert alarm["from"] == mast.node_id and alarm["priority"] == "life-safety"
    assert alarm["body"]["handheld"] == f"{HANDHELD:08x}"
    assert alarm["body"]["key"] == fingerprint(key).hex()
    assert (alarm["body"]["text"], alarm["body"]["port"]) == ("Jeg er faldet", "text")
    assert alarm["sealed"] is True
    lora = next(row for row in mast.get("/v1/links")["links"] if row["link"] == "lora")
    assert lora["details"]["personal_alarms"]["accepted"] == 1

    # The municipality's console matches it to the citizen and keeps it open until acknowledged.
    coordinator = Browser(staff)
    coordinator.login("hansen")
    status, board = coordinator.call("GET", "districts")
    assert status == 200, board
    (row,) = board["alarms"]
    assert (row["citizen"], row["match"], row["handheld"]) == ("C-0042", "registered", f"!{HANDHELD:08x}")
    assert coordinator.call("POST", f"alarms/{row['id']}/ack")[0] == 200
    status, logbook = coordinator.call("GET", "logbook")
    texts = [entry["text"] for entry in logbook["entries"]]
    assert any("NØDKALD fra borger C-0042" in text and f"[id {row['id']}]" in text for text in texts), texts
    # the citizen's own words stay in the sealed message: the append-only book keeps only metadata
    assert not any("faldet" in text for text in texts), texts
    assert "faldet" not in staff.cli("log", "export")
