"""A message sent through the API (as ``beredt send`` does) shows in the console's sent view with what it
says, as one sent from the console does, and that text is sealed at rest with the console's records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from hub.api.routes import build_app
from hub.api.tokens import Scope, TokenStore
from hub.console.routes import CONSOLE_KEY
from hub.console.users import Role
from hub.core.identity import Identity
from tests.console.conftest import PASSWORD
from tests.inproc import hub_config, medium_name, peer, running

STAFF = Identity.generate("Aarhus krisestab", "staff")
HOME = Identity.generate("Plejecenter Lindely", "care-home")
TEXT = "Brændstof kommer kl. 14 til Lindely"


async def test_a_message_sent_through_the_api_shows_its_text_in_the_sent_view(tmp_path: Path) -> None:
    config = hub_config(
        tmp_path, "staff", medium_name(), peers=(peer(HOME, "home"),), default_route=(HOME.node_id,)
    )
    async with running(config, STAFF) as hub:
        hub.roster.add(HOME.card)
        tokens = TokenStore(tmp_path)
        secret = tokens.add("app", frozenset({Scope.ADMIN}))
        app = build_app(hub, tokens=tokens)
        async with (
            TestServer(app) as server,
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser,
        ):
            console = app[CONSOLE_KEY]  # made as the app starts
            await console.users.add("hansen", PASSWORD, Role.COORDINATOR)
            api = {"Authorization": f"Bearer {secret}"}
            body = {"to": HOME.node_id.hex(), "kind": "text", "body": TEXT}
            async with browser.post(server.make_url("/v1/messages"), json=body, headers=api) as sent:
                assert sent.status == 202, await sent.text()
                message_id = (await sent.json())["id"]
            login = {"username": "hansen", "password": PASSWORD}
            async with browser.post(server.make_url("/console/api/login"), json=login) as answer:
                assert answer.status == 200, await answer.text()

            async def row() -> dict[str, object] | None:
                async with browser.get(server.make_url("/console/api/sent")) as listed:
                    rows = (await listed.json())["sent"]
                return next((r for r in rows if r["id"] == message_id), None)

            deadline = asyncio.get_running_loop().time() + 20
            while (found := await row()) is None:  # the console hears of it on the hub's event bus
                assert asyncio.get_running_loop().time() < deadline, "the sent view never listed it"
                await asyncio.sleep(0.05)
            assert found["summary"] == TEXT and found["author"] == "api" and found["kind"] == "text"
            await console.save_outbox()
            raw = b"".join(p.read_bytes() for p in tmp_path.glob("console.db*"))  # noqa: ASYNC240
            assert TEXT.encode() not in raw  # sealed at rest, as the console's own records
