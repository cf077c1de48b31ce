"""Outside CAP through two hubs: posted to the crisis staff's console, relayed as a signed ALERT to a care
home's hub, exported there as CAP 1.2, schema-validated and compared field by field with the original."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from lxml import etree

from hub.console.users import Role
from tests.console.conftest import PASSWORD, Pair
from tests.console.test_cap import assert_valid_cap
from tests.console.test_cap_fidelity import CASES, assert_same_meaning, fixture
from tests.inproc import eventually


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def _login(http: aiohttp.ClientSession, url: str, username: str) -> str:
    async with http.post(f"{url}/console/api/login", json={"username": username, "password": PASSWORD}) as r:
        assert r.status == 200
        return str((await r.json())["csrf"])


async def _post(http: aiohttp.ClientSession, url: str, csrf: str, document: str) -> dict[str, Any]:
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/xml"}
    async with http.post(f"{url}/console/api/cap", data=document.encode(), headers=headers) as r:
        assert r.status == 202, await r.text()
        return dict(await r.json())


async def test_outside_alerts_keep_their_meaning_through_two_hubs(
    pair: Pair, http: aiohttp.ClientSession
) -> None:
    await pair.care.console.users.add("tilsyn", PASSWORD, Role.VIEWER)
    csrf = await _login(http, pair.staff.url, "hansen")
    sent: dict[str, str] = {}
    for case, (document, not_kept) in CASES.items():
        answer = await _post(http, pair.staff.url, csrf, document)
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


def _earlier(reference: str) -> str:
    """The NAAD alert that a reference of the Cancel names, as its sender issued it."""
    _, identifier, sent = reference.split(",")
    document = fixture("naad_cancel.xml").replace("<msgType>Cancel</msgType>", "<msgType>Alert</msgType>")
    document = re.sub(r"<identifier>.*?</identifier>", f"<identifier>{identifier}</identifier>", document)
    document = re.sub(r"<sent>.*?</sent>", f"<sent>{sent}</sent>", document)
    return re.sub(r"\s*<references>.*?</references>", "", document, flags=re.S)


async def test_a_relayed_cancel_names_the_originals_and_the_copies_this_hub_received(
    pair: Pair, http: aiohttp.ClientSession
) -> None:
    await pair.care.console.users.add("tilsyn", PASSWORD, Role.VIEWER)
    csrf = await _login(http, pair.staff.url, "hansen")
    cancel = fixture("naad_cancel.xml")
    originals = str(etree.fromstring(cancel.encode()).findtext("{*}references")).split()
    copies = [(await _post(http, pair.staff.url, csrf, _earlier(ref)))["ids"][0] for ref in originals]
    (cancel_id,) = (await _post(http, pair.staff.url, csrf, cancel))["ids"]
    await eventually(lambda: {*copies, cancel_id} <= {m["id"] for m in pair.care.console.messages})

    await _login(http, pair.care.url, "tilsyn")
    async with http.get(f"{pair.care.url}/console/api/cap/{cancel_id}") as r:
        assert r.status == 200, await r.text()
        doc = assert_valid_cap(await r.text())
    references = str(doc.findtext("{*}references")).split()
    staff = f"beredt:{pair.staff.hub.node_id.hex()}"
    # first this hub's copies of the cancelled alerts, then the originals verbatim as their sender wrote them
    assert [ref.rsplit(",", 1)[0] for ref in references[:2]] == [f"{staff},{copy}" for copy in copies]
    assert references[2:] == originals
