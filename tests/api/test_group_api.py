"""Groups through the API: ``"to": "group:NAME"`` sends one message per member, and the group message and
the groups can be read back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api.routes import build_app
from hub.api.tokens import Scope, TokenStore
from hub.core.identity import Identity
from hub.relay.hub import Hub
from tests.inproc import hub_config, medium_name, peer, running

ME = Identity.generate("Aarhus", "staff")
HOMES = [Identity.generate(name, "care-home") for name in ("Solgården", "Bakkely")]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Hub]]:  # type: ignore[type-arg]
    config = hub_config(
        tmp_path, "staff", medium_name(), peers=tuple(peer(h, h.name) for h in HOMES),
        default_route=(HOMES[0].node_id,),
    )  # fmt: skip
    async with running(config, ME) as hub:
        for home in HOMES:
            hub.roster.add(home.card, groups=("distrikt-syd",))
        tokens = TokenStore(tmp_path)
        headers = {"Authorization": f"Bearer {tokens.add('app', frozenset({Scope.SEND, Scope.READ}))}"}
        async with TestClient(TestServer(build_app(hub, tokens=tokens)), headers=headers) as test_client:
            yield test_client, hub


async def test_send_to_a_group_and_read_it_back(client: tuple[TestClient, Hub]) -> None:  # type: ignore[type-arg]
    http, _ = client
    groups = await (await http.get("/v1/groups")).json()
    assert groups["groups"][0]["name"] == "distrikt-syd" and groups["groups"][0]["count"] == 2
    response = await http.post("/v1/messages", json={"to": "group:Distrikt-Syd", "body": "Varmestue åben"})
    assert response.status == 202, await response.text()
    sent = await response.json()
    assert sent["group"] == "distrikt-syd"
    assert {m["to"] for m in sent["messages"]} == {h.node_id.hex() for h in HOMES}
    for item in sent["messages"]:
        state = await (await http.get(f"/v1/messages/{item['id']}")).json()
        assert state["to"] == item["to"] and state["body"] == "Varmestue åben"
    progress = await (await http.get(f"/v1/group-messages/{sent['id']}")).json()
    assert (progress["received"], progress["total"]) == (0, 2), "nobody is running to acknowledge it"
    assert {m["state"] for m in progress["members"]} == {"pending"}
    listed = await (await http.get("/v1/group-messages")).json()
    assert [g["id"] for g in listed["group_messages"]] == [sent["id"]]


@pytest.mark.parametrize(
    ("to", "status", "fragment"),
    [("group:ingen", 422, "har ingen medlemmer"), ("group:", 422, "har ingen medlemmer")],
)
async def test_group_refusals(
    client: tuple[TestClient, Hub],  # type: ignore[type-arg]
    to: str,
    status: int,
    fragment: str,
) -> None:
    http, _ = client
    response = await http.post("/v1/messages", json={"to": to, "body": "x"})
    assert response.status == status
    assert fragment in (await response.json())["error"]
    missing = await http.get("/v1/group-messages/00")
    assert missing.status == 404
