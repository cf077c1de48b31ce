"""Two hubs on separate machines (tests/netns.py) when the path between them goes silent.

A cable cut far away or a peer that lost power answers nothing: no reset, no ICMP, every packet gone.
The sending hub must notice only by waiting, keep the message, and deliver it exactly once when the path
comes back, with the hop ack returning to the right machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import netns
from tests.hubproc import HubProcess

pytestmark = pytest.mark.skipif(netns.unavailable() is not None, reason=str(netns.unavailable()))

PORT = 8471


@pytest.fixture
def lan() -> Iterator[list[netns.Host]]:
    with netns.Lan(2) as hosts:
        yield hosts


def on_host(hub: HubProcess, host: netns.Host) -> None:
    """Serve the internet link on every interface of ``host``, the same port on every machine."""
    hub.config["links"]["internet"] = {"kind": "internet", "listen": f"0.0.0.0:{PORT}", "timeout": 2}
    hub.write_config()
    hub.launcher = host.command()
    hub.opener = host.opener


@pytest.mark.timeout(400)  # generous deadlines for a loaded 2-core machine
def test_a_silent_path_holds_the_message_until_it_returns(tmp_path: Path, lan: list[netns.Host]) -> None:
    staff_host, home_host = lan
    staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff")
    home = HubProcess.create(tmp_path / "home", "Plejecenter Solbakken", "care-home")
    on_host(staff, staff_host)
    on_host(home, home_host)
    staff.add_peer(home, {"internet": f"http://{home_host.address}:{PORT}"})
    home.add_peer(staff, {"internet": f"http://{staff_host.address}:{PORT}"})
    staff.set_default_route([home])
    home.set_default_route([staff])
    staff.trust(home)
    home.trust(staff)
    try:
        staff.start()
        home.start()
        staff_host.drop_silently()
        message_id = staff.send(home.node_id, "text", "Vandet er afbrudt til kl. 18")
        staff.wait_for(
            "the link to the care home to be seen down",
            lambda: staff.get("/v1/peers")["peers"][0]["state"]["internet"] == "down",
            timeout=60,
        )
        assert not any(m["id"] == message_id for m in home.inbox())
        assert staff.message(message_id)["state"] != "delivered"

        staff_host.restore()
        home.wait_for("the message", lambda: any(m["id"] == message_id for m in home.inbox()), timeout=90)
        staff.wait_for(
            "every delivery settled by its hop ack",
            lambda: staff.get("/healthz")["open_deliveries"] == 0,
            timeout=90,
        )
        assert [m["id"] for m in home.inbox()].count(message_id) == 1
        # The care home counts its hop ack once the POST carrying it returns, and as failed if that took
        # longer than this link's 2 s timeout on a loaded machine, though the staff hub got it (it settled).
        home.wait_for("the care home's hop ack counted", lambda: _hop_acks(home) > 0, timeout=30)
    finally:
        staff.stop()
        home.stop()


def _hop_acks(hub: HubProcess) -> int:
    health = hub.get("/healthz")
    return int(health["hop_acks_sent"]) + int(health["hop_acks_failed"])
