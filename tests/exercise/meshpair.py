"""A staff hub and a care home whose only link is LoRa: real ``beredt run`` processes on the fake mesh
(the real ``meshtastic`` library against fake radios, ``tests.transports.test_lora.MeshInBackground``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.hubproc import HubProcess
from tests.transports.test_lora import ADDR, MeshInBackground

STAFF_RADIO, HOME_RADIO = 0xA1, 0xB2


@contextlib.contextmanager
def mesh_pair(
    folder: Path, lora: Mapping[str, Any] | None = None
) -> Iterator[tuple[HubProcess, HubProcess, MeshInBackground]]:
    """The two hubs, started; ``lora`` adds options to both hubs' LoRa link."""
    mesh = MeshInBackground(STAFF_RADIO, HOME_RADIO)
    staff = HubProcess.create(folder / "staff", "Aarhus krisestab", "staff", internet=False)
    home = HubProcess.create(folder / "home", "Plejehjemmet Solgaarden", "care-home", internet=False)
    for hub, num in ((staff, STAFF_RADIO), (home, HOME_RADIO)):
        options = {"kind": "lora", "host": f"127.0.0.1:{mesh.ports[num]}", "connect_timeout": 15}
        hub.add_link("lora", {**options, **(lora or {})})
    staff.add_peer(home, {"lora": ADDR[HOME_RADIO]})
    home.add_peer(staff, {"lora": ADDR[STAFF_RADIO]})
    staff.set_default_route([home])
    home.set_default_route([staff])
    staff.trust(home)
    home.trust(staff)
    try:
        home.start()  # a radio acks what its hub is not yet connected to hear: the home first
        staff.start()
        yield staff, home, mesh
    finally:
        staff.kill()
        home.kill()
        mesh.close()
