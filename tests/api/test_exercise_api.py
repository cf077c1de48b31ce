"""``/v1/exercise`` through the HTTP API with a token: its scopes, its errors as every /v1 error, a message
sent without a status during an exercise marked Exercise (real only when asked for), and a hub whose
exercise journal cannot be opened still relaying, with exercises alone unavailable."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from hub.api.routes import build_app
from hub.api.tokens import Scope, TokenStore
from hub.console.exercises import EXERCISES_DB
from hub.core.frame import Status, decode_frame
from hub.core.identity import Identity
from tests.inproc import hub_config, medium_name, peer, running

ME = Identity.generate("Aarhus", "staff")
HOME = Identity.generate("Solgården", "care-home")
SCENARIO = """
name = "Øvelse"
duration = "1h"
[participants]
nodes = ["Solgården"]
[[injects]]
at = "30m"
kind = "message"
text = "Strømmen er gået"
"""


async def test_start_and_end_over_the_api_with_the_right_scopes(tmp_path: Path) -> None:
    config = hub_config(tmp_path, "staff", medium_name(), peers=(peer(HOME, HOME.name),),
                        default_route=(HOME.node_id,))  # fmt: skip
    async with running(config, ME) as hub:
        hub.roster.add(HOME.card)
        tokens = TokenStore(tmp_path)
        reader = {"Authorization": f"Bearer {tokens.add('skaerm', frozenset({Scope.READ}))}"}
        sender = {"Authorization": f"Bearer {tokens.add('app', frozenset({Scope.SEND, Scope.READ}))}"}
        async with TestClient(TestServer(build_app(hub, tokens=tokens))) as client:
            refused = await client.post("/v1/exercise/start", json={"scenario": SCENARIO}, headers=reader)
            assert refused.status == 403
            broken = await client.post("/v1/exercise/start", json={"scenario": "name = 1"}, headers=sender)
            assert broken.status == 400 and (await broken.json())["code"] == "bad-scenario"
            started = await client.post("/v1/exercise/start", json={"scenario": SCENARIO, "by": "hansen"},
                                        headers=sender)  # fmt: skip
            view = await started.json()
            assert (
                started.status == 200 and view["current"]["name"] == "Øvelse" and view["banner"] is not None
            )
            again = await client.post("/v1/exercise/start", json={"scenario": SCENARIO}, headers=sender)
            assert again.status == 409 and (await again.json())["code"] == "conflict"
            ended = await client.post("/v1/exercise/end", json={"by": "hansen"}, headers=sender)
            assert (await ended.json())["shown"]["state"] == "ended"
            read = await (await client.get("/v1/exercise", headers=reader)).json()
            assert read["banner"] is None and read["exercises"][0]["name"] == "Øvelse"


async def test_a_message_without_a_status_is_an_exercise_message_during_an_exercise(tmp_path: Path) -> None:
    config = hub_config(tmp_path, "staff", medium_name(), peers=(peer(HOME, HOME.name),),
                        default_route=(HOME.node_id,))  # fmt: skip
    async with running(config, ME) as hub:
        hub.roster.add(HOME.card)
        tokens = TokenStore(tmp_path)
        headers = {"Authorization": f"Bearer {tokens.add('app', frozenset({Scope.SEND, Scope.READ}))}"}
        async with TestClient(TestServer(build_app(hub, tokens=tokens)), headers=headers) as client:

            async def send(text: str, **extra: str) -> tuple[str, Status]:
                """Send; what the hub answered and the CAP status in the signed frame it stored."""
                body = {"to": HOME.node_id.hex(), "kind": "text", "body": text, **extra}
                answer = await client.post("/v1/messages", json=body)
                assert answer.status == 202, await answer.text()
                reply = await answer.json()
                stored = await hub.store.message(bytes.fromhex(reply["id"]))
                assert stored is not None
                return reply["status"], decode_frame(stored.wire).status

            assert await send("før øvelsen") == ("actual", Status.ACTUAL)
            started = await client.post("/v1/exercise/start", json={"scenario": SCENARIO, "by": "hansen"})
            assert started.status == 200
            assert await send("under øvelsen") == ("exercise", Status.EXERCISE)
            assert await send("reel", status="actual") == ("actual", Status.ACTUAL)
            assert await send("test", status="test") == ("test", Status.TEST)
            refused = await client.post(
                "/v1/messages", json={"to": HOME.node_id.hex(), "kind": "text", "body": "x", "status": "real"}
            )
            assert refused.status == 400 and "status" in (await refused.json())["error"]
            assert (await client.post("/v1/exercise/end", json={"by": "hansen"})).status == 200
            assert await send("efter øvelsen") == ("actual", Status.ACTUAL)


async def test_a_hub_without_its_exercise_journal_relays_on(tmp_path: Path) -> None:
    (tmp_path / EXERCISES_DB).mkdir()  # a directory where the database should be: it cannot be opened
    async with running(hub_config(tmp_path, "staff", medium_name()), ME) as hub:
        tokens = TokenStore(tmp_path)
        headers = {"Authorization": f"Bearer {tokens.add('app', frozenset({Scope.SEND, Scope.READ}))}"}
        async with TestClient(TestServer(build_app(hub, tokens=tokens)), headers=headers) as client:
            answer = await client.get("/v1/exercise")
            assert answer.status == 503 and (await answer.json())["code"] == "unavailable"
            assert (await client.get("/healthz")).status == 200
