"""``/v1/board`` and ``/v1/rollcalls`` on a hub with its console: what a program gets, and a clear 400 for a
body that is not JSON (not even UTF-8), never a 500."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from hub.api.routes import build_app
from hub.api.tokens import Scope, TokenStore
from hub.core.identity import Identity
from tests.inproc import hub_config, medium_name, peer, running

STAFF = Identity.generate("Aarhus krisestab", "staff")
HOME = Identity.generate("Plejecenter Lindely", "care-home")


async def test_board_and_rollcalls_answer_and_refuse_a_body_that_is_not_json(tmp_path: Path) -> None:
    config = hub_config(tmp_path, "staff", medium_name(), peers=(peer(HOME, "home"),))
    async with running(config, STAFF) as hub:
        hub.roster.add(HOME.card)
        tokens = TokenStore(tmp_path)
        api = {"Authorization": f"Bearer {tokens.add('app', frozenset({Scope.READ, Scope.SEND}))}"}
        async with TestServer(build_app(hub, tokens=tokens)) as server, aiohttp.ClientSession() as http:
            async with http.get(server.make_url("/v1/board"), headers=api) as board:
                assert board.status == 200, await board.text()
                assert isinstance((await board.json())["institutions"], list)
            async with http.get(server.make_url("/v1/rollcalls"), headers=api) as rollcalls:
                assert rollcalls.status == 200 and (await rollcalls.json())["rollcalls"] == []
            for body in (b"\xff\xfe not text", b"{not json"):
                async with http.post(
                    server.make_url("/v1/rollcalls"),
                    data=body,
                    headers={**api, "Content-Type": "application/json"},
                ) as refused:
                    assert refused.status == 400, await refused.text()
                    answer = await refused.json()
                    assert answer["code"] == "invalid_json" and "JSON" in answer["error"]
            async with http.post(
                server.make_url("/v1/rollcalls"), json={"minutes": 0}, headers=api
            ) as refused:
                assert refused.status == 400 and "minutes" in (await refused.json())["error"]
