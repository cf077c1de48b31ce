"""The console in a real headless Chromium (Debian's, driven by Playwright) against two real hubs.

Staff log in and send a roll-call; the care home's night shift logs in on its own hub, sees the question
and presses "Alt OK"; the staff page shows the answer live (server-sent events, no reload). Screenshots
go to ``test-artifacts/``. Every request the pages make is checked: none may leave 127.0.0.1.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import playwright.async_api as playwright_api
import pytest

from hub.console.options import ConsoleOptions
from hub.core.frame import Kind
from tests.console.conftest import PASSWORD, Pair
from tests.console.test_cap import OUTSIDE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():  # the real browser is the point of these tests: fail, never skip
    raise RuntimeError(
        "Debian chromium is not installed: apt-get install -y chromium (scripts/dev check does)"
    )

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]  # fmt: skip
expect = playwright_api.expect
expect.set_options(timeout=20_000)


@pytest.fixture
def console_options() -> ConsoleOptions:
    """Entries of received messages held up to a second: the log-book tab says they are written together."""
    return ConsoleOptions(tick_interval=0.1, logbook_received_interval=1.0)


@pytest.fixture
async def browser() -> AsyncIterator[playwright_api.Browser]:
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


class Outside:
    """Aborts and records any request that is not to the loopback hub."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    async def __call__(self, route: playwright_api.Route) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            await route.continue_()
        else:
            self.requests.append(route.request.url)
            await route.abort()


async def _page(browser: playwright_api.Browser, outside: Outside, **context: object) -> playwright_api.Page:
    ctx = await browser.new_context(**context)  # type: ignore[arg-type]
    await ctx.route("**/*", outside)
    page = await ctx.new_page()
    page.on("pageerror", lambda error: pytest.fail(f"JavaScript error: {error}"))
    return page


async def _login(page: playwright_api.Page, url: str, username: str) -> None:
    await page.goto(url + "/")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")


async def test_roll_call_answered_live_from_the_care_home(
    pair: Pair, browser: playwright_api.Browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    outside = Outside()

    staff = await _page(browser, outside, viewport={"width": 1280, "height": 900})
    await _login(staff, pair.staff.url, "hansen")
    await expect(staff.locator("#view-staff")).to_be_visible()
    await expect(staff.locator(".tabs [data-tab=board]")).to_have_text("Statustavle")  # Danish by default
    await expect(staff.locator("#live")).to_have_class(re.compile(r"\bon\b"))
    # the hubs are neighbours: the link's probes are contact, though no message came yet
    await expect(staff.locator("#board tbody tr")).to_have_text(
        re.compile(r"Plejecenter Lindely.*I kontakt.*sidst hørt for under et minut siden via memory")
    )

    await staff.click(".tabs [data-tab=rollcall]")
    await staff.fill("#rollcall-form input[name=question]", "Meld status efter stormen")
    await staff.click("#send-rollcall")
    pending = staff.locator("#rollcalls li[data-state=pending]")
    await expect(pending).to_have_count(1)
    await expect(pending).to_contain_text("Plejecenter Lindely")
    await staff.screenshot(path=ARTIFACTS / "console-staff-rollcall-sent.png", full_page=True)

    care = await _page(browser, outside, viewport={"width": 1024, "height": 768}, has_touch=True)
    await _login(care, pair.care.url, "lindely")
    await expect(care.locator("#view-institution")).to_be_visible()
    await expect(care.locator("#open-rollcall")).to_contain_text("Meld status efter stormen")
    await care.screenshot(path=ARTIFACTS / "console-institution-rollcall.png", full_page=True)
    await care.click("button[data-preset=ok]")
    await expect(care.locator("#sent-confirmation")).to_contain_text("Alt OK: modtaget af kommunen")
    await expect(care.locator("#open-rollcall")).to_be_hidden()

    # the staff page was not reloaded: the answer arrives over the live event stream
    answered = staff.locator("#rollcalls li[data-state=answered]")
    await expect(answered).to_have_count(1)
    await expect(answered).to_contain_text("Alt OK")
    await staff.screenshot(path=ARTIFACTS / "console-staff-rollcall-answered.png", full_page=True)

    await staff.click(".tabs [data-tab=board]")
    row = staff.locator("#board tbody tr")
    await expect(row).to_have_class("ok")
    await expect(row).to_contain_text("sidst hørt for under et minut siden via")
    await staff.emulate_media(media="print")
    await staff.screenshot(path=ARTIFACTS / "console-board-print.png", full_page=True)
    await expect(staff.locator(".tabs")).to_be_hidden()
    await staff.emulate_media(media="screen")

    await staff.click(".tabs [data-tab=write]")
    await staff.select_option("#compose-kind", "sitrep")
    await staff.select_option("#compose-to", label="Plejecenter Lindely")
    await staff.fill("#compose-form textarea[name=summary]", "Strømmen er tilbage i Aarhus N kl. 18")
    await staff.fill("#compose-form input[name=evacuated]", "40")
    await staff.click("#compose-form button[type=submit]")
    await expect(staff.locator("#compose-form input[name=number]")).to_have_value("2")
    await expect(care.locator("#instructions li[data-kind=sitrep]")).to_contain_text("Strømmen er tilbage")

    await staff.click(".tabs [data-tab=links]")
    await expect(staff.locator("#links tbody tr").first).to_contain_text("memory")
    await staff.screenshot(path=ARTIFACTS / "console-staff-links.png", full_page=True)

    await staff.click("#lang")
    await expect(staff.locator(".tabs [data-tab=board]")).to_have_text("Status board")
    await expect(row).to_contain_text("last heard under a minute ago via")

    await staff.click(".tabs [data-tab=logbook]")
    await expect(staff.locator("#logbook-verdict")).to_have_text("The log book is intact.")
    await expect(staff.locator("#logbook-held")).to_have_text(
        "Received messages are written to the log book together, at most 1 min after they arrive"
        " (the inbox shows them at once)."
    )
    await expect(staff.locator("#logbook tbody")).to_contain_text("Meld status efter stormen")
    # a new entry arrives in the live event and is added on top: the log book is not fetched again
    fetches: list[str] = []
    staff.on(
        "request", lambda r: fetches.append(r.url) if r.method == "GET" and "api/logbook" in r.url else None
    )
    await staff.fill("#logbook-form input[name=text]", "Tankvogn sendt til Lindely")
    await staff.click("#logbook-form button[type=submit]")
    await expect(staff.locator("#logbook tbody tr").first).to_contain_text("Tankvogn sendt til Lindely")
    assert fetches == []

    assert outside.requests == [], f"requests left localhost: {outside.requests}"


async def test_institution_presses_emergency_and_confirms_an_instruction(
    pair: Pair, browser: playwright_api.Browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    outside = Outside()
    alert = {"event": "Strømsvigt", "urgency": "Immediate", "severity": "Severe", "certainty": "Observed",
             "instruction": "Start generatoren og meld brændstof"}  # fmt: skip
    await pair.staff.console.send(Kind.ALERT, pair.care.hub.node_id, alert, author="hansen")
    care = await _page(browser, outside, viewport={"width": 800, "height": 1280}, has_touch=True)
    await _login(care, pair.care.url, "lindely")
    instruction = care.locator("#instructions li[data-kind=alert]")
    await expect(instruction).to_contain_text("Start generatoren og meld brændstof")
    await instruction.get_by_role("button", name="Læst og forstået").click()
    await expect(instruction).to_contain_text("✔ Læst og forstået")

    await care.select_option("#status-form select[name=power]", "generator")
    await care.fill("#status-form input[name=fuel_hours]", "5")
    await care.check("#status-form input[value=oxygen]")
    await care.click("button[data-preset=emergency]")
    await expect(care.locator("#sent-confirmation")).to_contain_text("NØDSITUATION")
    await expect(care.locator("button[data-preset=emergency]")).to_contain_text("modtaget af kommunen")
    # what the home sent names the message it confirmed, by its words (not by its id)
    await expect(care.locator("#outbox li[data-kind=read_receipt]")).to_contain_text(
        "læst og forstået af Nattevagt Lindely: varsel fra Aarhus krisestab – «Strømsvigt»"
    )
    await care.screenshot(path=ARTIFACTS / "console-institution-emergency.png", full_page=True)

    staff = await _page(browser, outside, viewport={"width": 1280, "height": 900})
    await _login(staff, pair.staff.url, "hansen")
    row = staff.locator("#board tbody tr")
    await expect(row).to_have_class("critical")
    await expect(row).to_contain_text("Generator (5 t brændstof)")
    await expect(row).to_contain_text("Ilt")
    await expect(row).to_contain_text("NØDSITUATION")
    await staff.screenshot(path=ARTIFACTS / "console-staff-board-critical.png", full_page=True)
    await staff.click(".tabs [data-tab=messages]")
    receipt = staff.locator("#messages li[data-kind=read_receipt]")
    await expect(receipt).to_have_count(1)
    await expect(receipt).to_contain_text("Læst og forstået af Nattevagt Lindely")
    await expect(receipt).to_contain_text("Varsel sendt")  # names what was read
    await expect(receipt).to_contain_text("«Strømsvigt»")
    await staff.screenshot(path=ARTIFACTS / "console-staff-emergency.png", full_page=True)

    # a national CAP warning imported by the staff appears live at the care home, marked as an exercise
    document = OUTSIDE.replace("DESCRIPTION", "Vandstanden stiger").encode()
    upload = {"name": "dmi.xml", "mimeType": "application/xml", "buffer": document}
    await staff.click(".tabs [data-tab=write]")
    await staff.set_input_files("#cap-form input[type=file]", files=[upload])
    await staff.click("#cap-form button[type=submit]")
    imported = care.locator("#instructions li[data-kind=alert]", has_text="Forhøjet vandstand")
    await expect(imported).to_contain_text("ØVELSE")
    await care.screenshot(path=ARTIFACTS / "console-institution-cap-alert.png", full_page=True)
    assert outside.requests == [], f"requests left localhost: {outside.requests}"
