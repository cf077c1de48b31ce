"""The coordinator enrols a new node from the console, in a real Chromium against real ``beredt run`` hubs.

The staff hub holds the root key. A new care home runs ``beredt enrol --root KEY --request URL`` (its card,
signed with its own key, lands on the staff hub's list) and starts. The coordinator sees the request with
the same code the node printed, approves it with role, institution and groups; the new node gets the
signed roster and is reachable (a message with its end-to-end ack). A second request is refused, and the
enrolled node is revoked from the table. The page passes axe-core, fits a 390 px phone and speaks only
Danish (and passes axe in English too).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import playwright.async_api as playwright_api
import pytest

from hub.relay.enrolment_requests import request_statement
from tests.attacker import identity_of
from tests.console.test_browser import CHROMIUM, FLAGS, Outside, _login, _page
from tests.console.test_field_pages import _axe, _fits_and_speaks_danish
from tests.console.test_hub_process import add_user
from tests.hubproc import HubProcess
from tests.hubs.test_municipal_roster import ANNOUNCE, beredt, roster_version
from tests.inproc import eventually

expect = playwright_api.expect
WAIT = 120.0  # seconds; a loaded two-core machine


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[dict[str, HubProcess]]:
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff")
    home = HubProcess.create(tmp_path / "home", "Plejecenter Solbakken", "care-home")
    other = HubProcess.create(tmp_path / "other", "Ukendt Pi", "care-home")
    staff.config["trust"] = {
        "root": root[1], "root_key": str(tmp_path / "usb" / "root.key"), "announce_interval": ANNOUNCE,
    }  # fmt: skip
    staff.add_peer(home, {"internet": home.internet_url})
    home.add_peer(staff, {"internet": staff.internet_url})
    home.set_default_route([staff])
    add_user(staff, "hansen", "coordinator")
    try:
        staff.start()
        yield {"staff": staff, "home": home, "other": other, "root": root[1]}  # type: ignore[dict-item]
    finally:
        staff.kill()
        home.kill()


@pytest.fixture
async def browser() -> AsyncIterator[playwright_api.Browser]:
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


def request_enrolment(node: HubProcess, root: str, staff: HubProcess) -> str:
    """``beredt enrol --root KEY --request URL`` on the new node; the code it printed."""
    shown = beredt("enrol", "--config", str(node.config_path), f"--root={root}", "--request", staff.api_url)
    code = re.search(r"tilmeldingskode: (\S+)", shown)
    assert code and "Anmodningen er sendt" in shown, shown
    return code[1]


@pytest.mark.timeout(600)
async def test_a_node_enrolled_from_the_console_becomes_reachable_and_can_be_revoked(
    hubs: dict[str, HubProcess], browser: playwright_api.Browser
) -> None:
    staff, home, other = hubs["staff"], hubs["home"], hubs["other"]
    root = str(hubs["root"])
    code = await asyncio.to_thread(request_enrolment, home, root, staff)
    other_code = await asyncio.to_thread(request_enrolment, other, root, staff)
    await asyncio.to_thread(home.start)
    # a card sent with a signature not made by its own key is refused, and a hub without the root key
    # takes no requests at all
    forged = {"card": home.card, "signature": base64.b64encode(
        identity_of(other).sign_statement(request_statement(identity_of(home).card))).decode()}  # fmt: skip
    body, headers = json.dumps(forged).encode(), {"Content-Type": "application/json"}
    assert staff.http("POST", "/enrol", body, headers)[0] == 400
    assert home.http("POST", "/enrol", body, headers)[0] == 404

    outside = Outside()
    page = await _page(browser, outside, viewport={"width": 390, "height": 900}, bypass_csp=True)  # axe-core
    page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await _login(page, staff.api_url, "hansen")
    await page.click("#tabbtn-enrolment")
    request = page.locator(f"form.enrol-request[data-code='{code}']")
    await expect(request).to_contain_text(code)
    await expect(request).to_contain_text("Plejecenter Solbakken")
    await expect(request).to_contain_text(home.node_id)
    await expect(page.locator(f"form.enrol-request[data-code='{other_code}']")).to_be_visible()
    assert await _axe(page) == []
    assert await _fits_and_speaks_danish(page) == []

    # the name the Pi asked under is offered; the coordinator gives the one every hub will show
    await expect(request.locator("input[name=name]")).to_have_value("Plejecenter Solbakken")
    await request.locator("input[name=name]").fill("Plejecenter Solbakken Nord")
    await request.locator("select[name=role]").select_option("care-home")
    await request.locator("input[name=institution]").fill("Plejecenter Solbakken")
    # a group name no roster can hold is refused in Danish, and the request stays on the list
    await request.locator("input[name=groups]").fill("nord:syd")
    await request.get_by_role("button", name="Godkend").click()
    await expect(page.locator("#enrol-error")).to_contain_text("'nord:syd' er intet gruppenavn")
    await expect(request).to_have_count(1)
    await request.locator("input[name=groups]").fill("district-nord, plejehjem")
    await request.get_by_role("button", name="Godkend").click()
    await expect(page.locator("#enrol-done")).to_contain_text("Plejecenter Solbakken Nord er tilmeldt")
    row = page.locator(f"#enrol-nodes tr[data-node='{home.node_id}']")
    await expect(row).to_contain_text("Plejecenter Solbakken Nord")
    await expect(row).to_contain_text("Plejehjem eller institution")
    await expect(request).to_have_count(0)

    # the new node holds the signed roster and is reachable: a message and its end-to-end ack
    await eventually(lambda: roster_version(home) >= 1, timeout=WAIT)
    sent = await asyncio.to_thread(staff.send, home.node_id, "text", "Velkommen i netværket")
    await eventually(lambda: any(m["id"] == sent for m in home.inbox()), timeout=WAIT)
    await eventually(lambda: staff.message(sent)["end_to_end_acked"], timeout=WAIT)

    # a request nobody vouches for is refused; it leaves the list and nothing is signed
    version = roster_version(staff)
    refused = page.locator(f"form.enrol-request[data-code='{other_code}']")
    await refused.get_by_role("button", name="Afvis").click()
    await expect(refused).to_have_count(0)
    await expect(page.locator("#enrol-requests")).to_contain_text("Ingen anmodninger venter")
    assert roster_version(staff) == version
    assert await _fits_and_speaks_danish(page) == []

    # revoked from the table: every hub refuses it, the staff hub's API will not send to it
    await row.get_by_role("button", name="Tilbagekald").click()
    await expect(row).to_have_count(0)
    await eventually(lambda: roster_version(staff) == version + 1, timeout=WAIT)
    status, _ = staff.request("POST", "/v1/messages", {"to": home.node_id, "kind": "text", "body": "hej"})
    assert status >= 400, status

    await page.click("#lang")
    await expect(page.locator("#tabbtn-enrolment")).to_have_text("Enrolment")
    assert await _axe(page) == []
    assert outside.requests == []
