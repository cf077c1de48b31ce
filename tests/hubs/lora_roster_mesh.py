"""The set-up of the LoRa roster tests: a staff hub holding the municipal root key and care homes, all on
the fake mesh (the real ``meshtastic`` library against fake radios) and nothing else."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.hubproc import HubProcess
from tests.hubs.test_municipal_roster import beredt
from tests.transports.test_lora import ADDR, MeshInBackground

STAFF = 0xA1


@contextmanager
def staff_and_homes(
    folder: Path, homes: dict[str, int]
) -> Iterator[tuple[HubProcess, list[HubProcess], MeshInBackground]]:
    """Staff hub A and one care home per name (its radio number as value), each home with A as its peer and
    default route; nothing started. The caller adds what its test needs, then enrols the homes (last: the
    new node's ``beredt enrol`` writes its config file, which a later ``add_peer`` would overwrite)."""
    out = beredt("root", "init", "--out", str(folder / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    mesh = MeshInBackground(STAFF, *homes.values())
    hubs: list[HubProcess] = []  # killed, and the mesh closed, also when the set-up itself fails
    try:
        staff = HubProcess.create(folder / "a", "Aarhus krisestab", "staff", internet=False)
        hubs.append(staff)
        for i, name in enumerate(homes):
            hubs.append(HubProcess.create(folder / chr(ord("b") + i), name, "care-home", internet=False))
        cared = hubs[1:]
        for hub, num in zip(hubs, (STAFF, *homes.values()), strict=True):
            hub.add_link(
                "lora",
                {
                    "kind": "lora",
                    "host": f"127.0.0.1:{mesh.ports[num]}",
                    "connect_timeout": 15,
                    "ack_timeout": 8,
                },
            )
        staff.config["trust"] = {
            "root": root[1],
            "root_key": str(folder / "usb" / "root.key"),
            "announce_interval": 600,  # only new versions go out during the test
        }
        for home, num in zip(cared, homes.values(), strict=True):
            staff.add_peer(home, {"lora": ADDR[num]})
            home.add_peer(staff, {"lora": ADDR[STAFF]})
            home.set_default_route([staff])
        yield staff, cared, mesh
    finally:
        for hub in hubs:
            hub.kill()
        mesh.close()
