"""The field page and the district board in a real headless Chromium against a real in-process hub.

A nurse on a phone records two visits with the network off, reloads the page while still offline, and
comes back online: both visits reach the hub once (measured: the sync time). The coordinator's district
board shows the counts, the soonest run-out first, and handhelds' personal alarms live (a registered
one with the citizen's name and address), and passes axe-core's WCAG 2.1 A/AA checks at phone width.
Both pages switch to English with their language button, remember the choice like the console, and
speak one language at a time.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import playwright.async_api as playwright_api
import pytest
from aiohttp import web

from drill.proxy import SwitchableProxy
from hub.api.fieldwork import FIELD_VISITS, setup_fieldwork
from hub.citizens.followup import OUTCOME_DANISH
from hub.citizens.records import EQUIPMENT_DANISH, Citizen, to_csv
from hub.citizens.register import Reader
from hub.citizens.service import FollowUp
from hub.citizens.settings import CitizensConfig
from hub.console.options import ConsoleOptions
from hub.console.routes import CONSOLE_KEY, setup_console
from hub.console.service import Console
from hub.console.users import Role
from hub.core.handhelds import FILE_NAME as HANDHELDS
from hub.core.identity import Identity
from hub.core.transport import PersonalAlarm
from tests.citizens.conftest import follow_up
from tests.console.conftest import PASSWORD
from tests.console.test_browser import CHROMIUM, FLAGS, Outside, _page
from tests.console.test_console_truth import AXE, VISIBLE_DANISH_TEXT, WCAG, _english_words
from tests.inproc import hub_config, medium_name

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "bypass_csp": True}
"""A phone; the CSP is bypassed only so that the axe-core checker can be injected."""
COORDINATOR = Reader("hansen", "coordinator")
HANDHELD_KEY = b"\x02" * 32
expect = playwright_api.expect
expect.set_options(timeout=20_000)


@dataclass
class Site:
    follow_up: FollowUp
    console: Console
    proxy: SwitchableProxy
    """The phone reaches the hub only through this: switched off, the hub is really unreachable."""

    @property
    def url(self) -> str:
        return self.proxy.url


def _person(n: int, district: str, hours: float) -> Citizen:
    return Citizen(f"Borger {n}", f"00{n:02d}50-{n:04d}", f"Vej {n}, {district}", district, ("oxygen",),
                   hours, "", "", f"{n:08x}")  # fmt: skip


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    identity = Identity.generate("Aarhus krisestab", "staff")
    config = hub_config(tmp_path, identity.name, medium_name())
    async with follow_up(config, identity, CitizensConfig()) as service:
        people = [_person(1, "Nord", 4), _person(2, "Nord", 10), _person(3, "Syd", 2), _person(4, "Syd", 30)]
        await service.register.import_csv(to_csv(people), COORDINATOR)
        await service.mark_outage(COORDINATOR, districts=["Nord", "Syd"])
        key = base64.b64encode(HANDHELD_KEY).decode()  # the handheld at Borger 2's home
        (config.data_dir / HANDHELDS).write_text(
            f'[[handheld]]\nnode = "!000000d2"\npublic_key = "{key}"\ncitizen = "00000002"\n'
        )
        app = web.Application()
        setup_console(app, service.hub, ConsoleOptions(tick_interval=0.1))
        setup_fieldwork(app, lambda: service)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        try:
            server = web.TCPSite(runner, "127.0.0.1", 0)
            await server.start()
            console = app[CONSOLE_KEY]
            await console.users.add("anna", PASSWORD, Role.NURSE, display_name="Sygeplejerske Anna")
            await console.users.add("hansen", PASSWORD, Role.COORDINATOR)
            proxy = SwitchableProxy(("127.0.0.1", runner.addresses[0][1]))
            proxy.reserve()
            await proxy.switch_on()
            yield Site(service, console, proxy)
            await proxy.aclose()
        finally:
            await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[playwright_api.Browser]:
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def _login(page: playwright_api.Page, username: str) -> None:
    await page.fill("#login-form input[name=username]", username)
    await page.fill("#login-form input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")


async def _field_rows(site: Site) -> list[Any]:
    await site.follow_up.register.db.execute(FIELD_VISITS)
    async with site.follow_up.register.db.execute("SELECT key FROM field_visits") as cursor:
        return list(await cursor.fetchall())


async def _axe(page: playwright_api.Page) -> list[dict[str, Any]]:
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    return [{"id": v["id"], "nodes": [n["target"] for n in v["nodes"]][:3]} for v in result["violations"]]


def _english() -> set[str]:
    """The English console's words plus the register's English codes (equipment, visit outcomes)."""
    codes = " ".join([*EQUIPMENT_DANISH, *OUTCOME_DANISH]).replace("_", " ")
    danish = " ".join([*EQUIPMENT_DANISH.values(), *OUTCOME_DANISH.values()])  # 'hospital' is both
    return _english_words() | (set(re.findall(r"[a-z]{4,}", codes)) - set(re.findall(r"\w+", danish)))


PAGE_TEXT = """() => {
  const words = (table) => JSON.stringify(table).replace(/"[a-z_]+":/g, " ").replace(/\\{\\w+\\}/g, " ");
  return typeof TEXT === "undefined" ? ["", ""] : [words(TEXT.da), words(TEXT.en)];
}"""
"""The page's own word tables (its keys and placeholders left out), for pages that carry them."""
VISIBLE_OWN_TEXT = VISIBLE_DANISH_TEXT.replace(
    "node.closest('.sr-only')", "node.closest('.sr-only') || node.closest('[lang]:not(html)')"
)
"""The visible words in the page's language: the language button and the hub's own words are marked."""
FIXTURE_WORDS = {"borger", "nord"}
"""Names and places of the test's citizens, which no language table translates."""


def _words(text: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Za-zæøåÆØÅ][a-zæøå]{3,}", text)}


async def _fits_and_speaks_danish(page: playwright_api.Page) -> list[str]:
    """No sideways scrolling at phone width and no English word in the rendered page."""
    return await _fits_and_speaks(page, "da")


async def _fits_and_speaks(page: playwright_api.Page, lang: str) -> list[str]:
    """No sideways scrolling at phone width, and no word of the other language in the rendered page:
    English words are the console's and the page's own; Danish words are the page's own."""
    problems = []
    scroll, inner = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if scroll > inner:
        problems.append(f"scrollWidth {scroll} > innerWidth {inner}")
    if await page.evaluate("document.documentElement.lang") != lang:
        problems.append(f"the page is not marked lang={lang}")
    danish, english = (_words(text) for text in await page.evaluate(PAGE_TEXT))
    danish |= _words(" ".join([*EQUIPMENT_DANISH.values(), *OUTCOME_DANISH.values()]))  # the hub's words
    foreign = (_english() | english) - danish if lang == "da" else danish - english - FIXTURE_WORDS
    if leaked := sorted(_words(await page.evaluate(VISIBLE_OWN_TEXT)) & foreign):
        problems.append(f"{'English' if lang == 'da' else 'Danish'} in the {lang} page: {leaked}")
    return problems


async def test_visits_recorded_offline_arrive_once_after_a_reload_and_a_reconnect(
    site: Site, browser: playwright_api.Browser
) -> None:
    outside = Outside()
    page = await _page(browser, outside, **PHONE)
    await page.goto(site.url + "/console/field")
    await _login(page, "anna")
    items = page.locator("#list > li")
    await expect(items).to_have_count(4)
    await expect(items.first).to_contain_text("Borger 3")  # the soonest run-out first
    await expect(items.first).to_contain_text("ilt: ")  # the equipment in Danish, not its code
    await page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    assert await _axe(page) == []
    assert await _fits_and_speaks_danish(page) == []

    # Offline for the browser, and the hub really out of reach (a service worker's requests would not
    # all be stopped by the browser's offline switch alone).
    await page.context.set_offline(True)
    await site.proxy.switch_off()
    await expect(page.locator("#net")).to_contain_text("Uden forbindelse")
    await page.click("#list > li[data-citizen='00000003'] button[data-outcome=needs_oxygen]")
    await page.click("#list > li[data-citizen='00000001'] button[data-outcome=seen_ok]")
    await expect(page.locator("#queue")).to_have_text("2 besøg venter på at blive sendt")
    await page.reload()  # offline: the service worker serves the page, the browser still holds the queue
    await expect(page.locator("#queue")).to_have_text("2 besøg venter på at blive sendt")
    await expect(page.locator("#list > li[data-citizen='00000003'] .state")).to_contain_text("mangler ilt")
    assert await _field_rows(site) == []

    started = time.monotonic()
    await site.proxy.switch_on()
    await page.context.set_offline(False)
    await expect(page.locator("#queue")).to_have_text("Alle besøg er sendt til hubben")
    rows = await _field_rows(site)
    synced = time.monotonic() - started
    print(f"two offline visits synced {synced:.2f} s after the connection came back")
    assert len(rows) == 2
    view = {row["id"]: row for row in await site.follow_up.followup_view(COORDINATOR)}
    assert view["00000001"]["outcome"] == "seen_ok" and view["00000003"]["outcome"] == "needs_oxygen"
    assert not view["00000002"]["seen"]
    assert len(await site.follow_up.incidents.visits()) == 2  # once each, not doubled

    # A lost answer makes the phone send a visit again: the same key counts once.
    key = rows[0][0]
    again = await page.evaluate(
        """async (key) => {
            const me = await (await fetch('/console/api/me')).json();
            const response = await fetch('/console/api/field/visits', {method: 'POST',
              headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf},
              body: JSON.stringify({key, citizen: '00000001', outcome: 'seen_ok', at: 1})});
            return response.json();
        }""",
        key,
    )
    assert again["duplicate"] is True and len(await _field_rows(site)) == 2
    assert outside.requests == []


async def test_district_board_counts_sorts_and_shows_a_handheld_alarm_live(
    site: Site, browser: playwright_api.Browser
) -> None:
    await site.follow_up.record_visit("00000003", "needs_oxygen", by=COORDINATOR)
    page = await _page(browser, Outside(), **PHONE)
    await page.goto(site.url + "/console/")
    await page.fill("input[name=username]", "hansen")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#view-staff")).to_be_visible()
    await expect(page.locator("#link-field")).to_have_text("Besøg i marken")
    await page.click("#link-districts")  # the console's header leads there for roles that may read
    rows = page.locator("#districts tbody tr")
    await expect(rows).to_have_count(2)
    # Nord's first unseen citizen runs out in 4 h, Syd's in 30 h (the 2 h one is seen): Nord first
    await expect(rows.nth(0)).to_contain_text("Nord")
    nord = [await cell.inner_text() for cell in await rows.nth(0).locator("td").all()]
    syd = [await cell.inner_text() for cell in await rows.nth(1).locator("td").all()]
    assert nord[:4] == ["2", "0", "0", "2"] and syd[:4] == ["2", "1", "1", "1"]
    await expect(page.locator("#no-alarms")).to_be_visible()
    await expect(page.locator("#live")).to_have_text("Direkte")

    # A visit from a phone moves Nord's count on the open board, without a reload.
    await page.evaluate(
        """async () => {
            const me = await (await fetch('/console/api/me')).json();
            await fetch('/console/api/field/visits', {method: 'POST',
              headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf},
              body: JSON.stringify({key: 'besoeg-0001', citizen: '00000001', outcome: 'seen_ok',
                                    at: Math.floor(Date.now() / 1000)})});
        }"""
    )
    await expect(rows.nth(0).locator("td").nth(1)).to_have_text("1")

    await site.follow_up.hub.personal_alarms.forward(
        "lora", PersonalAlarm(0xD1, b"\x01" * 32, "Hjælp", "text")
    )
    alarm = page.locator("#alarms > li.open")
    await expect(alarm).to_have_count(1)  # live, without a reload
    await expect(alarm).to_contain_text("UKENDT håndsender")
    await expect(alarm).to_contain_text("Hjælp")
    await expect(page.locator("#announce")).to_contain_text("Nyt nødkald")
    assert await _axe(page) == []
    assert await _fits_and_speaks_danish(page) == []
    await alarm.locator("button").click()
    await expect(page.locator("#alarms > li.handled")).to_contain_text("Kvitteret af hansen")

    # A registered handheld's alarm names the citizen and the address from the register.
    await site.follow_up.hub.personal_alarms.forward("lora", PersonalAlarm(0xD2, HANDHELD_KEY, "", "alert"))
    await expect(alarm).to_have_count(1)
    await expect(alarm).to_contain_text("Borger 2, Vej 2, Nord")
    await expect(alarm).to_contain_text("alarmknap")
    assert await _fits_and_speaks_danish(page) == []


async def test_field_page_and_district_board_in_english_remember_the_choice(
    site: Site, browser: playwright_api.Browser
) -> None:
    page = await _page(browser, Outside(), **PHONE)
    await page.goto(site.url + "/console/field")
    await _login(page, "anna")
    await expect(page.locator("#list > li")).to_have_count(4)
    await expect(page.locator("#lang")).to_have_text("English")
    await page.click("#lang")
    await expect(page.locator("#field h1")).to_have_text("Citizens to visit")
    first = page.locator("#list > li").first
    await expect(first).to_contain_text("oxygen: ")  # the equipment code worded in English
    await expect(first.locator("button[data-outcome=needs_oxygen]")).to_have_text("needs oxygen")
    await page.click("#list > li[data-citizen='00000001'] button[data-outcome=seen_ok]")
    await expect(page.locator("#queue")).to_have_text("All visits have reached the hub")
    await expect(page.locator("#list > li[data-citizen='00000001'] .state")).to_have_text(
        "Last visit: seen, OK"
    )
    await expect(page.locator("#net")).to_have_text("Connected")
    assert await _axe(page) == []
    assert await _fits_and_speaks(page, "en") == []

    await page.reload()  # the choice is remembered, as the console remembers it
    await expect(page.locator("#field h1")).to_have_text("Citizens to visit")
    assert await _fits_and_speaks(page, "en") == []

    await page.goto(site.url + "/console/districts")  # the same choice carries to the board
    rows = page.locator("#districts tbody tr")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#alarms-box h1")).to_have_text("Emergency calls from handhelds")
    await expect(page.locator("#live")).to_have_text("Live")
    await site.follow_up.hub.personal_alarms.forward(
        "lora", PersonalAlarm(0xD1, b"\x01" * 32, "Hjælp", "text")
    )
    alarm = page.locator("#alarms > li.open")
    await expect(alarm).to_contain_text("UNKNOWN handheld")
    await expect(alarm.locator("button")).to_have_text("Acknowledge: someone is on it")
    await expect(rows.nth(0).locator("td").last).to_contain_text(" h ")
    assert await _axe(page) == []
    assert await _fits_and_speaks(page, "en") == []

    await page.click("#lang")  # back to Danish, on the open board
    await expect(page.locator("#alarms-box h1")).to_have_text("Nødkald fra håndsendere")
    await expect(alarm).to_contain_text("UKENDT håndsender")
    await expect(page.locator("#live")).to_have_text("Direkte")
    assert await _axe(page) == []
    assert await _fits_and_speaks(page, "da") == []
    await page.goto(site.url + "/console/field")
    await expect(page.locator("#field h1")).to_have_text("Borgere der skal besøges")
