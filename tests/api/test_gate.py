"""Who may use the API over the network port: tokens and scopes, foreign hosts, cross-origin requests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.api.routes import OPENAPI_PATH, ROUTES, build_app
from hub.api.tokens import Scope, TokenStore, parse_scopes
from hub.core.errors import ConfigError
from hub.core.identity import Identity
from hub.relay.hub import Hub
from tests.inproc import hub_config, medium_name, peer, running

ME = Identity.generate("Aarhus", "staff")
HOME = Identity.generate("Solgaarden", "care-home")


@dataclass
class Api:
    http: TestClient  # type: ignore[type-arg]
    hub: Hub
    tokens: TokenStore

    def bearer(self, name: str, *scopes: Scope) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.add(name, frozenset(scopes))}"}

    async def refused(self) -> dict[str, int]:
        health = await (await self.http.get("/healthz")).json()
        refused: dict[str, int] = health["http_refused"]
        return refused


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    config = hub_config(
        tmp_path, "staff", medium_name(), peers=(peer(HOME, "home"),), default_route=(HOME.node_id,)
    )
    async with running(config, ME) as hub:
        hub.roster.add(HOME.card)
        tokens = TokenStore(tmp_path)
        async with TestClient(
            TestServer(build_app(hub, tokens=tokens, hosts=("beredt.example.dk",)))
        ) as http:
            yield Api(http, hub, tokens)


def _text(to: bytes) -> dict[str, str]:
    return {"to": to.hex(), "kind": "text", "body": "hej"}


async def test_without_a_token_nothing_is_sent_or_read(api: Api) -> None:
    assert (await api.http.post("/v1/messages", json=_text(HOME.node_id))).status == 401
    assert (await api.http.get("/v1/inbox")).status == 401
    wrong = {"Authorization": "Bearer beredt_not-a-token"}
    assert (await api.http.get("/v1/inbox", headers=wrong)).status == 401
    assert api.hub.store.live_messages == 0
    assert await api.refused() == {"unauthenticated": 2, "unknown_token": 1}


async def test_scopes_limit_what_a_token_does(api: Api) -> None:
    sender, reader = api.bearer("alarm", Scope.SEND), api.bearer("board", Scope.READ)
    assert (await api.http.post("/v1/messages", json=_text(HOME.node_id), headers=sender)).status == 202
    assert (await api.http.get("/v1/inbox", headers=sender)).status == 403, "a sender must not read the inbox"
    assert (await api.http.get("/v1/inbox", headers=reader)).status == 200
    response = await api.http.post("/v1/messages", json=_text(HOME.node_id), headers=reader)
    assert response.status == 403 and "send" in (await response.json())["error"]
    assert (await api.http.post("/v1/roster/reload", json={}, headers=sender)).status == 403
    admin = api.bearer("ops", Scope.ADMIN)
    assert (await api.http.post("/v1/roster/reload", json={}, headers=admin)).status == 200
    assert api.hub.store.live_messages == 1


async def test_a_revoked_token_stops_at_the_next_request(api: Api) -> None:
    reader = api.bearer("tablet", Scope.READ)
    assert (await api.http.get("/v1/links", headers=reader)).status == 200
    assert TokenStore(api.tokens.path.parent).revoke("tablet"), "revoked by another process, as the CLI does"
    assert (await api.http.get("/v1/links", headers=reader)).status == 401


async def test_only_hashes_are_stored_and_the_file_is_private(api: Api) -> None:
    secret = api.bearer("app", Scope.READ)["Authorization"].split()[1]
    text = api.tokens.path.read_text()
    assert secret not in text and "sha256" in text
    assert api.tokens.path.stat().st_mode & 0o777 == 0o600


async def test_foreign_host_is_refused_even_with_a_token(api: Api) -> None:
    admin = api.bearer("ops", Scope.ADMIN)
    response = await api.http.get("/v1/inbox", headers={**admin, "Host": "evil.example:8470"})
    assert response.status == 421
    console = await api.http.get("/console/", headers={"Host": "rebound.attacker.example"})
    assert console.status == 421, "DNS rebinding must not read the console either"
    for host in ("127.0.0.1:8470", "localhost:8470", "192.168.1.50:8470", "[::1]:8470", "beredt.example.dk"):
        assert (await api.http.get("/v1/links", headers={**admin, "Host": host})).status == 200, host
    assert (await api.refused())["foreign_host"] == 2


async def test_cross_origin_state_change_is_refused(api: Api) -> None:
    admin = api.bearer("ops", Scope.ADMIN)
    attempts = [
        {**admin, "Content-Type": "text/plain", "Origin": "http://evil.example"},
        {**admin, "Content-Type": "application/json", "Origin": "http://evil.example"},
        {**admin, "Content-Type": "application/json", "Origin": "null"},
        {**admin, "Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
    ]
    for headers in attempts:
        response = await api.http.post("/v1/messages", data=b'{"to": "*", "body": "x"}', headers=headers)
        assert response.status == 403, headers
    same = {**admin, "Origin": str(api.http.make_url("")).rstrip("/"), "Sec-Fetch-Site": "same-origin"}
    assert (await api.http.post("/v1/messages", json=_text(HOME.node_id), headers=same)).status == 202
    assert api.hub.store.live_messages == 1
    assert (await api.refused())["cross_origin"] == 4


async def test_a_post_that_is_not_json_is_refused(api: Api) -> None:
    admin = api.bearer("ops", Scope.ADMIN)
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        headers = {**admin, "Content-Type": kind}
        response = await api.http.post("/v1/messages", data=b'{"to": "*", "body": "x"}', headers=headers)
        assert response.status == 415, kind
    assert api.hub.store.live_messages == 0


def test_scopes_parse_and_say_what_is_wrong() -> None:
    assert parse_scopes(["send,read"]) == {Scope.SEND, Scope.READ}
    with pytest.raises(
        ConfigError, match=r"^--scope: ukendt adgang 'write'; forventede send, read eller admin$"
    ):
        parse_scopes(["write"])
    with pytest.raises(ConfigError, match=r"^--scope: angiv mindst én adgang: send, read eller admin$"):
        parse_scopes([" , "])


def test_openapi_names_the_scope_of_every_route() -> None:
    documented, path, method = {}, "", ""
    for line in OPENAPI_PATH.read_text().splitlines():
        if found := re.fullmatch(r"  (/\S+):", line):
            path = found[1]
        elif found := re.fullmatch(r"    (get|post):", line):
            method = found[1].upper()
        elif found := re.fullmatch(r"      x-scope: (.+)", line):
            documented[method, path] = found[1]
    served = {(method, path): str(scope) if scope else "any valid token" for method, path, _, scope in ROUTES}
    assert documented == served


async def test_what_a_token_changes_is_logged_with_its_name(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    sender = api.bearer("alarmcentral", Scope.SEND)
    with caplog.at_level("INFO", logger="beredt.api"):
        assert (await api.http.post("/v1/messages", json=_text(HOME.node_id), headers=sender)).status == 202
        assert (await api.http.get("/v1/links", headers=api.bearer("skaerm", Scope.READ))).status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "beredt.api"]
    assert lines == ["POST /v1/messages by token 'alarmcentral': 202"], "reads are not logged"
