"""The commit window (``[timing] commit_window``) between two real ``beredt run`` processes: routine and
normal messages received a few seconds apart share one fsynced commit, and the sender, waiting
``hop_ack_timeout`` plus the window for its hop ack, sends each once; an urgent message is committed at
once and takes what waits with it; a sender that waits less resends, and the resend ends the wait."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.relay.store_writer import COMPANY
from tests.hubproc import HubProcess, staff_and_care_home

WINDOW = 60.0
"""Long enough that no test below could pass by waiting it out within its own timeouts (30 s)."""
HOP_ACK_TIMEOUT = 2.0
"""What the test hubs wait for a hop ack besides the window (``tests.hubproc``)."""


def fsyncs(hub: HubProcess) -> int:
    count: int = hub.get("/healthz")["store_fsyncs"]
    return count


def resends_seen(hub: HubProcess) -> int:
    count: int = hub.get("/healthz")["refused"].get("replayed", 0)
    return count


def stored(hub: HubProcess, ids: list[str]) -> bool:
    return set(ids) <= {m["id"] for m in hub.inbox()}


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff, home = staff_and_care_home(tmp_path)
    for hub in (staff, home):
        hub.config["timing"]["commit_window"] = WINDOW
        hub.write_config()
    staff.start()
    home.start()
    try:
        yield staff, home
    finally:
        home.stop()
        staff.stop()


def test_normal_messages_share_a_commit_and_are_sent_once(hubs: tuple[HubProcess, HubProcess]) -> None:
    staff, home = hubs
    before = fsyncs(staff)
    sent = [
        home.send(staff.node_id, "status", {"facility": "Normal", "text": f"Runde {n}"})
        for n in range(COMPANY - 1)
    ]
    home.wait_for(
        "every status handed over", lambda: all(home.message(m)["hops"][0]["state"] == "sent" for m in sent)
    )
    time.sleep(3 * HOP_ACK_TIMEOUT)  # past the care home's hop_ack_timeout: without the window it resends
    assert not any(stored(staff, [m]) for m in sent), "the statuses wait in the window"
    sent.append(home.send(staff.node_id, "status", {"facility": "Normal", "text": "Sidste runde"}))
    # COMPANY received messages end the window: no wait of WINDOW seconds here
    staff.wait_for("every status stored", lambda: stored(staff, sent))
    assert fsyncs(staff) - before == 1, "the statuses shared one fsync"
    home.wait_for("the end-to-end acks", lambda: all(home.message(m)["end_to_end_acked"] for m in sent))
    assert [hop["attempts"] for m in sent for hop in home.message(m)["hops"]] == [1] * COMPANY
    assert resends_seen(staff) == 0, "the sender waited for the hop ack the window holds back"


def test_an_urgent_message_is_committed_at_once_with_what_waits(hubs: tuple[HubProcess, HubProcess]) -> None:
    staff, home = hubs
    waiting = home.send(staff.node_id, "status", {"facility": "Normal", "text": "Alt vel"})
    home.wait_for("the status handed over", lambda: home.message(waiting)["hops"][0]["state"] == "sent")
    assert not stored(staff, [waiting]), "a normal message alone waits in the window"
    before = fsyncs(staff)
    urgent = home.send(staff.node_id, "text", "Ilt til 1 time tilbage hos borger", priority="urgent")
    staff.wait_for("both messages stored", lambda: stored(staff, [waiting, urgent]))
    assert fsyncs(staff) - before == 1, "the urgent message and the waiting status shared its commit"
    assert resends_seen(staff) == 0, "the sender waited for the hop ack the window held back"


def test_a_resend_from_a_sender_that_waits_less_ends_the_window(tmp_path: Path) -> None:
    staff, home = staff_and_care_home(tmp_path)
    staff.config["timing"]["commit_window"] = WINDOW  # the care home keeps none: it waits 2 s for acks
    staff.write_config()
    staff.start()
    home.start()
    try:
        sent = home.send(staff.node_id, "status", {"facility": "Normal", "text": "Alt vel"})
        staff.wait_for("the status stored", lambda: stored(staff, [sent]))
        home.wait_for("the hop ack", lambda: home.message(sent)["hops"][0]["state"] == "hop-acked")
        assert resends_seen(staff) >= 1, "stored early only because the resend hurried the commit"
        assert staff.get("/healthz")["commit_window_impatient"] == [home.node_id]
        resends = resends_seen(staff)
        second = home.send(staff.node_id, "status", {"facility": "Normal", "text": "Stadig alt vel"})
        staff.wait_for("the second status stored", lambda: stored(staff, [second]))
        home.wait_for("its hop ack", lambda: home.message(second)["hops"][0]["state"] == "hop-acked")
        assert resends_seen(staff) == resends, "a neighbour that resent once is not held back again"
    finally:
        home.stop()
        staff.stop()
