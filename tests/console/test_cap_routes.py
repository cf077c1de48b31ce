"""CAP through the console: export of sent and received alerts and receipts (XSD-valid), import and relay."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from hub.core.frame import Kind, Status
from tests.console.conftest import PASSWORD, Pair
from tests.console.test_cap import OUTSIDE, _text, assert_valid_cap
from tests.inproc import eventually

ALERT = {"event": "Stormflod", "urgency": "Immediate", "severity": "Severe", "certainty": "Likely",
         "instruction": "Flyt beboere fra stueetagen", "area": "Aarhus Ø"}  # fmt: skip


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def _login(http: aiohttp.ClientSession, url: str, username: str) -> str:
    async with http.post(f"{url}/console/api/login", json={"username": username, "password": PASSWORD}) as r:
        assert r.status == 200
        return str((await r.json())["csrf"])


async def _cap(http: aiohttp.ClientSession, url: str, message_id: str) -> tuple[int, str]:
    async with http.get(f"{url}/console/api/cap/{message_id}") as r:
        return r.status, await r.text()


async def test_exercise_alert_and_its_receipt_export_as_valid_cap(
    pair: Pair, http: aiohttp.ClientSession
) -> None:
    staff_console = pair.staff.console
    sent = await staff_console.send(
        Kind.ALERT, pair.care.hub.node_id, ALERT, author="hansen", status=Status.EXERCISE
    )
    await _login(http, pair.staff.url, "hansen")
    status, xml = await _cap(http, pair.staff.url, sent)
    assert status == 200
    doc = assert_valid_cap(xml)
    assert _text(doc, "c:identifier") == sent
    assert _text(doc, "c:status") == "Exercise"
    assert _text(doc, "c:sender") == f"beredt:{pair.staff.hub.node_id.hex()}"
    assert _text(doc, "c:info/c:instruction") == ALERT["instruction"]

    await eventually(lambda: any(m["id"] == sent for m in pair.care.console.messages))
    receipt = await pair.care.console.confirm_read(sent, author="lindely", by="Nattevagt Lindely")
    await eventually(lambda: any(m["id"] == receipt for m in staff_console.messages))
    status, xml = await _cap(http, pair.staff.url, receipt)
    assert status == 200, xml
    doc = assert_valid_cap(xml)
    assert _text(doc, "c:msgType") == "Ack"
    assert _text(doc, "c:references").startswith(f"beredt:{pair.staff.hub.node_id.hex()},{sent},")
    assert _text(doc, "c:note") == "Læst og forstået af Nattevagt Lindely"


async def test_outside_cap_is_relayed_to_the_care_homes(pair: Pair, http: aiohttp.ClientSession) -> None:
    csrf = await _login(http, pair.staff.url, "hansen")
    document = OUTSIDE.replace("DESCRIPTION", "Høj vandstand")
    headers = {"X-CSRF-Token": csrf, "Content-Type": "application/xml"}
    async with http.post(f"{pair.staff.url}/console/api/cap", data=document, headers=headers) as r:
        assert r.status == 202, await r.text()
        (message_id,) = (await r.json())["ids"]
    await eventually(lambda: any(m["id"] == message_id for m in pair.care.console.messages))
    received = next(m for m in pair.care.console.messages if m["id"] == message_id)
    assert (
        received["kind"] == "alert" and received["status"] == "exercise" and received["priority"] == "urgent"
    )
    assert received["body"]["event"] == "Stormflod" and received["body"]["area"] == "Aarhus Bugt; Kalø Vig"
    log = [e.text for e in await pair.staff.console.logbook.entries()]
    assert any("CAP DMI-2026-0042 fra varsling@dmi.dk" in text for text in log)


async def test_bad_cap_requests_are_refused_clearly(pair: Pair, http: aiohttp.ClientSession) -> None:
    csrf = await _login(http, pair.staff.url, "hansen")
    async with http.post(
        f"{pair.staff.url}/console/api/cap", data="<alert", headers={"X-CSRF-Token": csrf}
    ) as r:
        assert r.status == 400 and "ikke velformet" in (await r.json())["error"]
    async with http.post(f"{pair.staff.url}/console/api/cap?to=nowhere", data=OUTSIDE,
                         headers={"X-CSRF-Token": csrf}) as r:  # fmt: skip
        assert r.status == 400 and "to: forventede et node-id" in (await r.json())["error"]
    text = await pair.staff.console.send(Kind.TEXT, pair.care.hub.node_id, "hej", author="hansen")
    status, body = await _cap(http, pair.staff.url, text)
    assert status == 400 and "har en CAP-form, ikke text" in body
    status, body = await _cap(http, pair.staff.url, "00" * 16)
    assert status == 404
    status, body = await _cap(http, pair.staff.url, "not-hex")
    assert status == 404
