"""Three real hubs on loopback: municipality A -> relay B -> care home C over the internet link.

The tests share one chain (setting up three hubs is most of each test's time): each looks only at its own
messages, and a hub a test killed is running again before the next test starts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hubproc import HubProcess


@pytest.fixture(scope="module")
def running_chain(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HubProcess, HubProcess, HubProcess]]:
    tmp_path = tmp_path_factory.mktemp("three-hubs")
    a = HubProcess.create(tmp_path / "a", "Aarhus krisestab", "staff")
    b = HubProcess.create(tmp_path / "b", "Relay Nord", "relay")
    c = HubProcess.create(tmp_path / "c", "Plejehjemmet Solgaarden", "care-home")
    a.add_peer(b, {"internet": b.internet_url})
    b.add_peer(a, {"internet": a.internet_url})
    b.add_peer(c, {"internet": c.internet_url})
    c.add_peer(b, {"internet": b.internet_url})
    a.set_default_route([b])
    c.set_default_route([b])
    b.set_route(a, [a])
    b.set_route(c, [c])
    for hub in (a, b, c):
        hub.trust(*(h for h in (a, b, c) if h is not hub))
    for hub in (a, b, c):
        hub.start()
    try:
        yield a, b, c
    finally:
        for hub in (a, b, c):
            hub.kill()


@pytest.fixture
def chain(
    running_chain: tuple[HubProcess, HubProcess, HubProcess],
) -> tuple[HubProcess, HubProcess, HubProcess]:
    for hub in running_chain:
        if hub.process is None or hub.process.poll() is not None:
            hub.start()  # a test that killed it and failed before starting it again
    return running_chain


def test_sitrep_relayed_and_acknowledged_end_to_end(chain: tuple[HubProcess, HubProcess, HubProcess]) -> None:
    a, b, c = chain
    sitrep = {"number": 1, "phase": "Initial", "summary": "Strømsvigt i hele kommunen; generatorer kører"}
    message_id = a.send(c.node_id, "sitrep", sitrep, priority="urgent")

    c.wait_for("the sitrep in the inbox", lambda: any(m["id"] == message_id for m in c.inbox()))
    received = next(m for m in c.inbox() if m["id"] == message_id)
    assert received["kind"] == "sitrep"
    assert received["from"] == a.node_id
    assert received["body"]["summary"] == sitrep["summary"]
    assert received["priority"] == "urgent"

    a.wait_for("the end-to-end ack", lambda: a.message(message_id)["end_to_end_acked"])
    state = a.message(message_id)
    assert state["hops"][0]["hop"] == b.node_id
    assert state["hops"][0]["state"] == "hop-acked"
    assert b.message(message_id)["hops"][0]["hop"] == c.node_id


def test_relay_killed_mid_flight_loses_nothing_and_duplicates_nothing(
    chain: tuple[HubProcess, HubProcess, HubProcess],
) -> None:
    a, b, c = chain
    sent = [a.send(c.node_id, "text", f"besked {i}") for i in range(40)]
    b.kill()
    sent += [a.send(c.node_id, "text", f"besked {i}") for i in range(40, 80)]
    b.start()
    sent += [a.send(c.node_id, "text", f"besked {i}") for i in range(80, 100)]

    c.wait_for("all 100 messages", lambda: len({m["id"] for m in c.inbox()} & set(sent)) == 100, timeout=60)
    inbox = [m for m in c.inbox() if m["kind"] == "text"]
    assert sorted(m["id"] for m in inbox) == sorted(sent), "every accepted message exactly once"
    a.wait_for("all end-to-end acks", lambda: all(a.message(i)["end_to_end_acked"] for i in sent), timeout=60)


def test_status_from_care_home_reaches_staff(chain: tuple[HubProcess, HubProcess, HubProcess]) -> None:
    a, _, c = chain
    message_id = c.send(a.node_id, "text", "Alt vel på Solgaarden", priority="normal")
    a.wait_for("the status", lambda: any(m["id"] == message_id for m in a.inbox()))
