"""Groups as addresses with real hubs: a staff hub, a relay and three care homes in two districts.

The staff hub gives the homes their groups with ``beredt roster add --group`` (no municipal root), sends
to a group by its name with ``beredt send`` and as ``group:NAME`` through the API, and follows each group
message with ``beredt group-message``: each member acknowledges its own copy, a member removed from the
roster drops out of the count, and a member added later gets nothing of an earlier message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.hubproc import HubProcess


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[dict[str, HubProcess]]:
    staff = HubProcess.create(tmp_path / "staff", "Krisestab", "staff")
    relay = HubProcess.create(tmp_path / "relay", "Vandtårnet", "relay")
    homes = [HubProcess.create(tmp_path / f"h{n}", name, "care-home")
             for n, name in enumerate(("Solbakken", "Egely", "Fjordbo"), 1)]  # fmt: skip
    everyone = [staff, relay, *homes]
    for hub in (staff, *homes):
        hub.add_peer(relay, {"internet": relay.internet_url})
        hub.set_default_route([relay])
        relay.add_peer(hub, {"internet": hub.internet_url})
        relay.trust(hub)
        hub.trust(relay)
    for home in homes:
        home.trust(staff)
    syd, nord = ("--group", "distrikt-syd"), ("--group", "distrikt-nord")
    staff.cli("roster", "add", homes[0].card, *syd)
    staff.cli("roster", "add", homes[1].card, *syd, "--group", "plejehjem")
    staff.cli("roster", "add", homes[2].card, *nord)
    try:
        with ThreadPoolExecutor(len(everyone)) as starting:  # five starts at once: a loaded machine is slow
            list(starting.map(lambda hub: hub.start(timeout=120), everyone))
        yield {"staff": staff, "relay": relay, "h1": homes[0], "h2": homes[1], "h3": homes[2]}
    finally:
        for hub in everyone:
            hub.stop()


def _progress(staff: HubProcess, send_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(staff.cli("group-message", send_id, "--json"))
    return answer


def _has_text(hub: HubProcess, text: str) -> bool:
    return any(m["body"] == text for m in hub.inbox())


@pytest.mark.timeout(400)  # five hubs on a loaded 2-core machine
def test_groups_address_their_members_now(hubs: dict[str, HubProcess]) -> None:
    staff, h1, h2, h3 = hubs["staff"], hubs["h1"], hubs["h2"], hubs["h3"]
    groups = {g["name"]: g["count"] for g in json.loads(staff.cli("groups", "--json"))}
    assert groups == {"distrikt-nord": 1, "distrikt-syd": 2, "plejehjem": 1}

    # by the group's name, as a coordinator types it: one message per member, each acknowledged
    out = staff.cli("send", "text", "distrikt-syd", "Varmestuen i hallen er åben")
    send_id = out.split()[0]
    assert "lagt i kø til 2 medlemmer af distrikt-syd, én besked hver; ingen har kvitteret endnu" in out
    for home in (h1, h2):
        home.wait_for("the group message", lambda home=home: _has_text(home, "Varmestuen i hallen er åben"))
    staff.wait_for("both acks", lambda: _progress(staff, send_id)["received"] == 2)
    assert "2 af 2 har modtaget" in staff.cli("group-message", send_id[:6])

    # as group:NAME through the API: the other district only
    status, answer = staff.request(
        "POST", "/v1/messages", {"to": "group:Distrikt-Nord", "body": "Diesel kl. 14"}
    )
    assert status == 202 and [m["to"] for m in answer["messages"]] == [h3.node_id]
    h3.wait_for("its district's message", lambda: _has_text(h3, "Diesel kl. 14"))
    assert not _has_text(h3, "Varmestuen i hallen er åben"), "not a member of distrikt-syd"

    # a member that is away waits; once it is removed from the roster it drops out of the count
    h2.stop()
    status, answer = staff.request(
        "POST", "/v1/messages", {"to": "group:distrikt-syd", "body": "Meld status"}
    )
    assert status == 202
    later = answer["id"]
    staff.wait_for("Solbakken's ack", lambda: _progress(staff, later)["received"] == 1)
    assert (_progress(staff, later)["total"]) == 2
    staff.cli("roster", "remove", h2.node_id)
    staff.wait_for("Egely dropped", lambda: _progress(staff, later)["total"] == 1)
    states = {m["node"]: m["state"] for m in _progress(staff, later)["members"]}
    assert states == {h1.node_id: "received", h2.node_id: "revoked"}

    # a member added later is in the next group message, not in the earlier ones
    staff.cli("roster", "add", h3.card, "--group", "distrikt-nord", "--group", "distrikt-syd")
    out = staff.cli("send", "text", "group:distrikt-syd", "Ny vagtplan")
    newest = out.split()[0]
    assert {m["node"] for m in _progress(staff, newest)["members"]} == {h1.node_id, h3.node_id}
    assert {m["node"] for m in _progress(staff, send_id)["members"]} == {h1.node_id, h2.node_id}
    h3.wait_for("the message as a new member", lambda: _has_text(h3, "Ny vagtplan"))
