"""The local HTTP API: clear 4xx for bad requests, 202 only after the durable commit."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api.health import HEALTHZ_BURST, OPEN_COUNT_AGE
from hub.api.routes import OPENAPI_PATH, build_app
from hub.api.tokens import Scope, TokenStore
from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.relay.hub import Hub
from hub.relay.resumption import RESUME_PAGE, RESUME_WINDOW
from tests.inproc import eventually, hub_config, medium_name, peer, running

ME = Identity.generate("Aarhus", "staff")
HOME = Identity.generate("Solgaarden", "care-home")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Hub]]:  # type: ignore[type-arg]
    config = hub_config(
        tmp_path, "staff", medium_name(), peers=(peer(HOME, "home"),), default_route=(HOME.node_id,)
    )
    async with running(config, ME) as hub:
        hub.roster.add(HOME.card)
        tokens = TokenStore(tmp_path)
        secret = tokens.add("app", frozenset({Scope.ADMIN}))
        app = build_app(hub, tokens=tokens)
        async with TestClient(TestServer(app), headers={"Authorization": f"Bearer {secret}"}) as test_client:
            yield test_client, hub


async def test_send_then_read_state(client: tuple[TestClient, Hub]) -> None:  # type: ignore[type-arg]
    http, hub = client
    response = await http.post("/v1/messages", json={"to": HOME.node_id.hex(), "kind": "text", "body": "hej"})
    assert response.status == 202
    message_id = (await response.json())["id"]
    assert await hub.store.message(bytes.fromhex(message_id)) is not None, "stored before 202"
    state = await (await http.get(f"/v1/messages/{message_id}")).json()
    assert state["body"] == "hej" and state["local"] is True
    assert state["hops"][0]["hop"] == HOME.node_id.hex()
    assert state["end_to_end_acked"] is False


@pytest.mark.parametrize(
    ("body", "status", "code", "fragment"),
    [
        ("{not json", 400, "invalid_json", "ikke gyldig JSON"),
        ([1, 2], 400, "invalid_request", "JSON-objekt"),
        ({"to": "x", "body": "hej"}, 400, "invalid_request", "to: forventede et node-id"),
        ({"to": "00" * 8, "kind": "telegram", "body": "x"}, 400, "invalid_request", "ukendt slags besked"),
        ({"to": "00" * 8, "body": "x", "colour": "red"}, 400, "unknown_field", "Ukendte felter: colour"),
        ({"to": "00" * 8, "body": "x", "priority": "vip"}, 400, "invalid_request", "priority: ukendt værdi"),
        ({"to": "00" * 8, "body": "x", "ttl_minutes": 0}, 400, "invalid_request", "ttl_minutes"),
        (
            {"to": "00" * 8, "kind": "status", "body": {"facility": "Splendid"}},
            400,
            "invalid_request",
            "facility",
        ),
        ({"to": "00" * 8, "kind": "ack", "body": ["00" * 16]}, 400, "invalid_request", "laves kun af hubben"),
        ({"to": "77" * 8, "body": "x"}, 422, "unknown_recipient", "Ukendt modtager"),
        ({"to": "00" * 8, "body": "x", "public": "yes"}, 400, "invalid_request", "public: forventede true"),
    ],
)
async def test_bad_requests_say_what_is_wrong(
    client: tuple[TestClient, Hub],  # type: ignore[type-arg]
    body: object,
    status: int,
    code: str,
    fragment: str,
) -> None:
    http, hub = client
    if isinstance(body, str):
        response = await http.post("/v1/messages", data=body, headers={"Content-Type": "application/json"})
    else:
        body = (
            {**body, "to": HOME.node_id.hex()}
            if isinstance(body, dict) and body.get("to") == "00" * 8
            else body
        )
        response = await http.post("/v1/messages", json=body)
    assert response.status == status
    answer = await response.json()
    assert answer["code"] == code and fragment in answer["error"], answer
    assert hub.store.live_messages == 0


async def test_sealed_unless_public_and_a_broadcast_nobody_could_open_is_refused(
    client: tuple[TestClient, Hub],  # type: ignore[type-arg]
) -> None:
    http, hub = client
    for to, public in ((HOME.node_id.hex(), False), ("*", False), (HOME.node_id.hex(), True)):
        body = {"to": to, "kind": "text", "body": "Karen Jensen", "public": public}
        response = await http.post("/v1/messages", json=body)
        assert response.status == 202, await response.json()
        message_id = (await response.json())["id"]
        stored = await hub.store.message(bytes.fromhex(message_id))
        assert stored is not None and (b"Karen Jensen" in stored.wire) is public
        shown = await (await http.get(f"/v1/messages/{message_id}")).json()
        assert shown["sealed"] is not public and shown["body"] == "Karen Jensen"  # the sender reads it
    hub.roster.remove(HOME.node_id)
    response = await http.post("/v1/messages", json={"to": "*", "kind": "text", "body": "Karen Jensen"})
    assert response.status == 422
    assert "ingen i rosteren kunne åbne" in (await response.json())["error"]


async def test_oversize_body_is_413(client: tuple[TestClient, Hub]) -> None:  # type: ignore[type-arg]
    http, _ = client
    response = await http.post(
        "/v1/messages", data=b"x" * 70_000, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    answer = await response.json()
    assert answer["code"] == "too_large" and "større end" in answer["error"]


async def test_unknown_message_and_bad_id(client: tuple[TestClient, Hub]) -> None:  # type: ignore[type-arg]
    http, _ = client
    assert (await http.get("/v1/messages/" + "ab" * 16)).status == 404
    assert (await http.get("/v1/messages/zz")).status == 400
    assert (await http.get("/v1/messages/abc")).status == 400  # fewer than 4 digits name nothing


async def test_a_short_id_finds_the_one_message_it_begins_and_says_when_it_is_ambiguous(
    client: tuple[TestClient, Hub],  # type: ignore[type-arg]
) -> None:
    http, _ = client
    by_prefix: dict[str, str] = {}
    while True:  # sent messages until two share their first 4 digits (about 320 on average)
        response = await http.post("/v1/messages", json={"to": HOME.node_id.hex(), "body": "hej"})
        message_id = (await response.json())["id"]
        if (twin := by_prefix.setdefault(message_id[:4], message_id)) != message_id:
            break
    ambiguous = await http.get(f"/v1/messages/{message_id[:4]}")
    answer = await ambiguous.json()
    assert ambiguous.status == 409 and answer["code"] == "ambiguous_id" and "flere cifre" in answer["error"]
    for full in (message_id, twin):
        shown = await (await http.get(f"/v1/messages/{full[:12].upper()}")).json()
        assert shown["id"] == full and shown["local"] is True  # a sent message, by its short id


async def test_health_links_peers_inbox(client: tuple[TestClient, Hub]) -> None:  # type: ignore[type-arg]
    http, _ = client
    health = await (await http.get("/healthz")).json()
    assert health["ok"] is True and health["node"] == ME.node_id.hex()
    assert health["bytes_sent"] == {"memory": 0} and health["hop_acks_sent"] == 0
    links = (await (await http.get("/v1/links")).json())["links"]
    assert {row["link"] for row in links} == {"memory"}
    peers = (await (await http.get("/v1/peers")).json())["peers"]
    assert peers[0]["name"] == "Solgaarden" and peers[0]["trusted"] is True
    assert (await (await http.get("/v1/inbox")).json())["messages"] == []


async def test_status_over_a_link_without_status_messages_is_409(client: tuple[TestClient, Hub]) -> None:  # type: ignore[type-arg]
    http, _ = client
    response = await http.post("/v1/links/memory/status", json={"to": HOME.node_id.hex(), "status": "ok"})
    assert response.status == 409
    assert (await http.post("/v1/links/nope/status", json={})).status == 404


async def test_openapi_documents_every_route(client: tuple[TestClient, Hub]) -> None:  # type: ignore[type-arg]
    http, _ = client
    response = await http.get("/v1/openapi.yaml")
    assert response.status == 200
    text = await response.text()
    assert text.startswith("openapi: 3")
    documented = set(re.findall(r"^  (/\S+):$", OPENAPI_PATH.read_text(), re.MULTILINE))
    served = {
        re.sub(r"\{(\w+)\}", "{x}", route.resource.canonical)
        for route in http.app.router.routes()  # type: ignore[union-attr]
        if route.resource is not None
        and route.method != "HEAD"
        and not route.resource.canonical.startswith("/console")  # documented in docs/console.md
        and route.resource.canonical != "/"
    }
    assert {re.sub(r"\{(\w+)\}", "{x}", p) for p in documented} == served


async def test_healthz_counts_open_deliveries_on_disk_not_only_the_resumed_window(tmp_path: Path) -> None:
    # nobody answers on the medium, so every message stays queued; after a restart the router holds only
    # a window of them in memory and the rest wait on disk
    config = hub_config(
        tmp_path, "staff", medium_name(), peers=(peer(HOME, "home"),), default_route=(HOME.node_id,)
    )
    queued = RESUME_WINDOW + RESUME_PAGE
    async with running(config, ME) as hub:
        hub.roster.add(HOME.card)
        await asyncio.gather(
            *(hub.submit(Kind.TEXT, HOME.node_id, f"besked {n}".encode(), public=True) for n in range(queued))
        )
    async with running(config, ME) as hub:
        tokens = TokenStore(tmp_path)
        secret = tokens.add("monitor", frozenset({Scope.READ}))
        headers = {"Authorization": f"Bearer {secret}"}
        async with TestClient(TestServer(build_app(hub, tokens=tokens)), headers=headers) as http:
            await eventually(lambda: hub.router.open_count() == RESUME_WINDOW, timeout=60)
            health = await (await http.get("/healthz")).json()
            assert health["open_deliveries"] == queued


async def test_healthz_answers_share_one_count_of_open_deliveries(tmp_path: Path) -> None:
    # the count scans the deliveries table: a burst of answers must not scan it once each
    config = hub_config(
        tmp_path, "staff", medium_name(), peers=(peer(HOME, "home"),), default_route=(HOME.node_id,)
    )
    async with running(config, ME) as hub:
        hub.roster.add(HOME.card)
        await hub.submit(Kind.TEXT, HOME.node_id, b"besked", public=True)
        scans: list[str] = []
        await hub.store._db.set_trace_callback(
            lambda sql: scans.append(sql) if "FROM deliveries WHERE state IN" in sql else None
        )
        async with TestClient(TestServer(build_app(hub))) as http:
            start = time.monotonic()
            answers = await asyncio.gather(*(http.get("/healthz") for _ in range(HEALTHZ_BURST)))
            counts = {(await a.json())["open_deliveries"] for a in answers}
            elapsed = time.monotonic() - start
        await hub.store._db.set_trace_callback(None)
    assert counts == {1}
    assert 1 <= len(scans) <= 1 + elapsed // OPEN_COUNT_AGE, (len(scans), elapsed)
