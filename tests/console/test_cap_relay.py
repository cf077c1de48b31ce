"""Outside CAP through two hubs: posted to the crisis staff's console, relayed as a signed ALERT to a care
home's hub, exported there as CAP 1.2, schema-validated and compared field by field with the original."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from hub.console.users import Role
from tests.console.conftest import PASSWORD, Pair
from tests.console.test_cap_fidelity import CASES, assert_same_meaning
from tests.inproc import eventually


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def _login(http: aiohttp.ClientSession, url: str, username: str) -> str:
    async with http.post(f"{url}/console/api/login", json={"username": username, "password": PASSWORD}) as r:
        assert r.status == 200
        return str((await r.json())["csrf"])


async def test_outside_alerts_keep_their_meaning_through_two_hubs(
    pair: Pair, http: aiohttp.ClientSession
) -> None:
    await pair.care.console.users.add("tilsyn", PASSWORD, Role.VIEWER)
    csrf = await _login(http, pair.staff.url, "hansen")
    sent: dict[str, str] = {}
    for case, (document, not_kept) in CASES.items():
        headers = {"X-CSRF-Token": csrf, "Content-Type": "application/xml"}
        async with http.post(
            f"{pair.staff.url}/console/api/cap", data=document.encode(), headers=headers
        ) as r:
            assert r.status == 202, await r.text()
            answer = await r.json()
        assert answer["not_kept"] == list(not_kept)
        (sent[case],) = answer["ids"]
    await eventually(lambda: set(sent.values()) <= {m["id"] for m in pair.care.console.messages})

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as care_http:
        await _login(care_http, pair.care.url, "tilsyn")
        for case, message_id in sent.items():
            async with care_http.get(f"{pair.care.url}/console/api/cap/{message_id}") as r:
                assert r.status == 200, await r.text()
                assert_same_meaning(CASES[case][0], await r.text())
    log = [e.text for e in await pair.staff.console.logbook.entries()]
    assert any("ikke videresendt: <code>, <source>" in text for text in log)
