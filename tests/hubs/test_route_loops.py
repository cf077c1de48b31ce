"""Real hubs in a ring: when a care home goes, its route is withdrawn everywhere and the relays do not keep
offering it to each other (no count to infinity).

Topology: staff hub A and relays R1 and R2, each a configured peer of both others: a triangle, the
smallest network in which a plain distance vector counts to infinity (R1 hears "C, 2 hops" from R2, which
heard it from R1, and so on, while A keeps a route to a node that is gone). Care home C joins through R1's
entry point with the two enrolment commands and is then killed, so nothing says goodbye for it.
"""

from __future__ import annotations

import time
import tomllib
from pathlib import Path

import pytest

from tests.hubproc import HubProcess
from tests.hubs.test_entry_points import _install_care_home, _municipality, _sent_when_routed

FULL_TABLE_INTERVAL = 30.0  # seconds between full announcements on a free link (hub.relay.route_table)


def _routed(sender: HubProcess, to: HubProcess) -> bool:
    """Whether ``sender`` takes a message to ``to``; one it has no route for is refused saying so."""
    status, answer = sender.request(
        "POST", "/v1/messages", {"to": to.node_id, "kind": "text", "body": "ring"}
    )
    if status < 300:
        return True
    assert status == 422 and answer["code"] == "cannot_send", (status, answer)
    assert "ingen nabo melder en vej dertil" in answer["error"], answer
    return False


@pytest.mark.timeout(500)  # four real hubs on a loaded 2-core machine
def test_a_care_home_gone_from_a_ring_is_withdrawn_and_no_loop_keeps_it(tmp_path: Path) -> None:
    staff, (first, second) = _municipality(tmp_path, 2)
    for relay, other in ((first, second), (second, first)):
        relay.config = tomllib.loads(relay.config_path.read_text())  # with the [trust] 'enrol' wrote
        relay.add_peer(other, {"internet": other.internet_url})
    home = _install_care_home(tmp_path, staff, [first])
    try:
        for hub in (staff, first, second, home):
            hub.start()
        message_id = _sent_when_routed(staff, home, "før")
        home.wait_for("the staff's message", lambda: any(m["id"] == message_id for m in home.inbox()), 60)

        home.kill()
        staff.wait_for("the route to the care home withdrawn", lambda: not _routed(staff, home), 240)
        # A loop would bring it back with the relays' next tables: watch for longer than a full round.
        until = time.monotonic() + FULL_TABLE_INTERVAL * 1.5
        while time.monotonic() < until:
            assert not _routed(staff, home), "a relay offered a route to the care home that is gone"
            time.sleep(1.0)
    finally:
        for hub in (home, second, first, staff):
            hub.stop()
