"""A Meshtastic radio that hangs with its cable in: two real ``beredt run`` processes, the real
``meshtastic`` library, fake radios on a simulated mesh. The staff hub's radio stays connected over TCP
but stops transmitting and answering (a hung firmware). Nothing tells the hub; its own off-air check of
the radio does: the LoRa link goes down to every peer within one check interval plus the check's
deadline, the message goes by the internet link, and the link comes back when the radio answers again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.hubproc import HubProcess
from tests.transports.test_lora import ADDR, A, B, MeshInBackground, arrived

CHECK_INTERVAL = 1.0
CHECK_TIMEOUT = 3.0


@pytest.fixture
def hubs(tmp_path: Any) -> Iterator[tuple[HubProcess, HubProcess, MeshInBackground]]:
    """A staff hub and a care home with LoRa first and the internet as the other link."""
    mesh = MeshInBackground(A, B)
    staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff")
    home = HubProcess.create(tmp_path / "home", "Plejehjemmet Solgaarden", "care-home")
    for hub, num in ((staff, A), (home, B)):
        hub.config["policy"] = {"order": ["lora", "internet"]}
        hub.add_link("lora", {
            "kind": "lora", "host": f"127.0.0.1:{mesh.ports[num]}", "connect_timeout": 15,
            "reconnect_max": 1, "ack_timeout": 120, "radio_check_interval": CHECK_INTERVAL,
            "radio_check_timeout": CHECK_TIMEOUT,
        })  # fmt: skip
    staff.add_peer(home, {"lora": ADDR[B], "internet": home.internet_url})
    home.add_peer(staff, {"lora": ADDR[A], "internet": staff.internet_url})
    staff.trust(home)
    home.trust(staff)
    try:
        staff.start(timeout=120)
        home.start(timeout=120)
        yield staff, home, mesh
    finally:
        staff.kill()
        home.kill()
        mesh.close()


def link_of(hub: HubProcess, message_id: str) -> str | None:
    hops = hub.message(message_id)["hops"]
    return next((h["link"] for h in hops if h["state"] == "hop-acked"), None)


def lora_rows(hub: HubProcess) -> list[dict[str, Any]]:
    return [row for row in hub.get("/v1/links")["links"] if row["link"] == "lora"]


def lora_state(hub: HubProcess, peer: str | None) -> str:
    return next(row["state"] for row in lora_rows(hub) if row["peer"] == peer)


def set_mute(mesh: MeshInBackground, num: int, mute: bool) -> None:
    async def switch() -> None:
        mesh.radios[num].mute = mute

    mesh.run(switch())


@pytest.mark.timeout(400)
def test_a_radio_hung_with_its_cable_in_takes_lora_down_and_the_message_goes_by_internet(
    hubs: tuple[HubProcess, HubProcess, MeshInBackground],
) -> None:
    staff, home, mesh = hubs
    first = staff.send(home.node_id, "text", "Over LoRa")
    home.wait_for("the first message", lambda: arrived(home, first) is not None, timeout=60)
    staff.wait_for("its hop ack", lambda: link_of(staff, first) is not None, timeout=60)
    assert link_of(staff, first) == "lora"
    checks_before = next(r for r in lora_rows(staff) if r["peer"] is None)["details"]["radio_checks"]
    assert checks_before >= 1  # the radio is asked even while it works, off the air

    set_mute(mesh, A, True)  # still connected: the TCP session stays open, nothing comes back
    on_air_before = len(mesh.radios[A].on_air)
    muted = time.monotonic()
    second = staff.send(home.node_id, "text", "LoRa-radioen svarer ikke")
    staff.wait_for(
        "LoRa down to the care home", lambda: lora_state(staff, home.node_id) == "down", timeout=60
    )
    detected = time.monotonic() - muted
    home.wait_for("the second message", lambda: arrived(home, second) is not None, timeout=60)
    delivered = time.monotonic() - muted
    staff.wait_for("its hop ack", lambda: link_of(staff, second) is not None, timeout=60)
    assert link_of(staff, second) == "internet"
    whole = next(r for r in lora_rows(staff) if r["peer"] is None)
    assert whole["state"] == "down" and "radio not answering" in whole["reason"], whole
    assert not whole["details"]["connected"]
    assert len(mesh.radios[A].on_air) == on_air_before, "a hung radio put something on the air"
    print(f"mute radio: LoRa down after {detected:.2f} s, delivered by internet after {delivered:.2f} s")
    # Bounded by one check interval plus the check's deadline; the rest is slack for a loaded machine.
    assert detected < CHECK_INTERVAL + CHECK_TIMEOUT + 20

    set_mute(mesh, A, False)  # the radio works again: the hub connects anew and LoRa comes back
    staff.wait_for("LoRa up again", lambda: lora_state(staff, None) == "up", timeout=120)
    third = staff.send(home.node_id, "text", "LoRa igen", priority="urgent")
    home.wait_for("the third message", lambda: arrived(home, third) is not None, timeout=60)
    assert {m["id"] for m in home.inbox()} >= {first, second, third}
