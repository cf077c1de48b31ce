"""The console serves the after-action report of the exercise played in conftest, from the coordinator's
own data folder: to coordinators and viewers, not to institutions; only the report's own files; the
exercise tab links it, and the page loads in Chromium under the console's content security policy with
every chart, fits a 390 px phone and passes axe-core's WCAG 2.1 A/AA checks."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import async_playwright

from hub.console.options import ConsoleOptions
from hub.console.users import Role
from hub.core.identity import Identity
from hub.relay.roster import Role as NodeRole
from tests.console.conftest import PASSWORD, Site, serve
from tests.console.test_field_pages import _axe
from tests.exercise.report.conftest import Played
from tests.exercise.report.test_report import CHROMIUM
from tests.inproc import hub_config, medium_name, running


@pytest.fixture
async def coordinator_site(played: Played, tmp_path: Path) -> AsyncIterator[Site]:
    """The coordinator's hub started again on a copy of its data folder, with its console."""
    folder = tmp_path / "staff"
    shutil.copytree(played.staff_dir, folder)
    identity = Identity.load(folder / "identity.key")
    config = hub_config(folder, "Beredskabsstaben", medium_name(), role=NodeRole.STAFF)
    async with running(config, identity) as hub, serve(hub, ConsoleOptions(tick_interval=0.1)) as site:
        await site.console.users.add("leder", PASSWORD, Role.COORDINATOR)
        await site.console.users.add("observator", PASSWORD, Role.VIEWER)
        await site.console.users.add("lindely", PASSWORD, Role.INSTITUTION, institution=played.care_id)
        yield site


async def _get(site: Site, user: str, path: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        login = {"username": user, "password": PASSWORD}
        async with http.post(f"{site.url}/console/api/login", json=login) as r:
            assert r.status == 200
        async with http.get(f"{site.url}/console/api/exercise-report/{path}") as r:
            return r.status, r.headers.get("Content-Type", ""), await r.read()


@pytest.mark.timeout(400)  # plays the exercise first (the package's fixture): slow on a loaded machine
async def test_the_console_serves_the_report_to_staff_and_observers_under_its_policy(
    coordinator_site: Site, played: Played
) -> None:
    base = played.exercise_id
    status, kind, body = await _get(coordinator_site, "observator", f"{base}/rapport.html")
    assert (status, kind) == (200, "text/html") and "Strømsvigt i distrikt Syd" in body.decode()
    status, kind, body = await _get(coordinator_site, "leder", f"{base}/figurer/timeline.png")
    assert (status, kind) == (200, "image/png") and body.startswith(b"\x89PNG")
    status, _, body = await _get(coordinator_site, "leder", f"{base}/rapport.pdf")
    assert status == 200 and body.startswith(b"%PDF")
    status, _, body = await _get(coordinator_site, "leder", f"{base}/csv/beskeder.csv")
    assert status == 200 and body.decode("utf-8-sig").startswith("id,til,art")
    assert (await _get(coordinator_site, "lindely", f"{base}/rapport.html"))[0] == 403
    for path in (f"{base}/../store.db", f"{base}/console.db", "0000abcd/rapport.html", "x/rapport.html"):
        assert (await _get(coordinator_site, "leder", path))[0] == 404, path

    # the page in Chromium, logged in to the console: under its content security policy
    errors: list[str] = []
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        try:
            page = await browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{coordinator_site.url}/console/")
            await page.fill("input[name=username]", "leder")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("#login-form button[type=submit]")
            await page.wait_for_selector("#logout", state="visible")
            await page.click("#tabbtn-exercise")  # the exercise tab links the report of the exercise shown
            link = page.locator("#exercise-report")
            await link.wait_for(state="visible")
            assert await link.inner_text() == "Evalueringsrapport (side, PDF og CSV)"
            href = await link.get_attribute("href")
            assert href == f"/console/api/exercise-report/{played.exercise_id}/rapport.html"
            errors.clear()  # the console's own page is tested elsewhere: from here on, only the report
            await page.goto(f"{coordinator_site.url}{href}")
            images = await page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
            )
            styled = await page.eval_on_selector("h2", "h => getComputedStyle(h).color")
            # on a phone, with the policy bypassed only so that the axe-core checker can be injected
            phone = await browser.new_page(viewport={"width": 390, "height": 844}, bypass_csp=True)
            await phone.context.add_cookies(await page.context.cookies())
            await phone.goto(f"{coordinator_site.url}{href}")
            fits = await phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            violations = await _axe(phone)
        finally:
            await browser.close()
    assert errors == []
    assert len(images) == 4 and all(images)
    assert fits, "the report scrolls sideways at 390 px"
    assert violations == []
    assert styled == "rgb(31, 78, 121)"  # the report's stylesheet applied: the console's CSP allows it
