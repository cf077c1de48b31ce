"""The personal-data page in a real headless Chromium against two real in-process hubs.

The care home sends the staff a sealed text and a status naming a made-up person. A coordinator on a
phone-width page finds both by name, downloads them as CSV, erases them after a confirmation, and finds
nothing after; the page has no axe-core WCAG 2.1 A/AA violation and no sideways scrolling, in Danish and
in English, and speaks no English in Danish. The log book still verifies and holds the erasure's counts,
not the name. A viewer and an institution are refused the page's API.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import playwright.async_api as playwright_api
import pytest

from hub.core.frame import Kind, Priority
from tests.console.conftest import Pair
from tests.console.test_browser import Outside, _login, _page, browser  # noqa: F401
from tests.console.test_console_truth import AXE, WCAG, _english_words
from tests.console.test_routes import Client, clients  # noqa: F401
from tests.inproc import eventually

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "bypass_csp": True}
"""A phone; the CSP is bypassed only so that the axe-core checker can be injected."""
NAME, CPR = "Vinterberg", "170345-1234"
PAGE_WORDS = """() => {
  const skip = (node) => node.closest('[lang="en"]') || node.closest('[hidden]') || node.closest('.content');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const out = [];
  while (walker.nextNode()) {
    if (!skip(walker.currentNode.parentElement)) out.push(walker.currentNode.textContent);
  }
  return out.join(' ');
}"""
"""The page's own words: a finding's content is what a person wrote, in whatever language."""
expect = playwright_api.expect
expect.set_options(timeout=30_000)
pytestmark = pytest.mark.timeout(400)  # two hubs and a browser on a loaded 2-core machine


async def _checked(page: playwright_api.Page, lang: str) -> list[str]:
    problems = []
    scroll, inner = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if scroll > inner:
        problems.append(f"{lang}: scrollWidth {scroll} > innerWidth {inner}")
    await page.add_script_tag(path=str(AXE))
    result = await page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    problems += [
        f"{lang}: axe {v['id']} {[n['target'] for n in v['nodes']][:3]}" for v in result["violations"]
    ]
    if lang == "da":
        seen = {w.lower() for w in re.findall(r"[A-Za-z][a-z]{3,}", await page.evaluate(PAGE_WORDS))}
        if leaked := sorted(seen & _english_words()):
            problems.append(f"English in the Danish page: {leaked}")
    return problems


async def test_a_coordinator_finds_exports_and_erases_one_person(
    pair: Pair,
    browser: playwright_api.Browser,  # noqa: F811
    clients: Callable[[str], Client],  # noqa: F811
    tmp_path: Path,
) -> None:
    staff, care = pair.staff, pair.care
    staff_node = staff.hub.identity.node_id
    await care.console.send(Kind.TEXT, staff_node, f"Karen {NAME} ({CPR}) mangler ilt", author="lindely")
    status = {"facility": "Compromised", "text": f"fru {NAME} på ilt"}
    await care.console.quick_status(status, Priority.URGENT, author="lindely")
    await care.console.send(Kind.TEXT, staff_node, "Generatoren kører", author="lindely")
    await eventually(lambda: len(staff.console.messages) >= 3, timeout=60)

    for username in ("laeser",):
        viewer = clients(staff.url)
        await viewer.login(username)
        assert (await viewer.call("POST", "data/search", {"term": NAME}))[0] == 403
    institution = clients(care.url)
    await institution.login("lindely")
    assert (await institution.call("POST", "data/search", {"term": NAME}))[0] == 403
    coordinator = clients(staff.url)
    await coordinator.login("hansen")
    assert (await coordinator.call("POST", "data/search", {"term": "ab"}))[0] == 400

    outside = Outside()
    page = await _page(browser, outside, accept_downloads=True, **PHONE)
    await _login(page, staff.url, "hansen")
    await expect(page.locator("#link-persondata")).to_be_visible()
    await page.goto(staff.url + "/console/persondata")
    await page.fill("#term", NAME.lower())
    await page.click("#search button[type=submit]")
    rows = page.locator("#findings tbody tr")
    await expect(page.locator("#status")).to_have_text(re.compile(r"^\d+ fund\.$"))
    assert await rows.count() >= 3  # the text, the status message and the status on the board
    await expect(page.locator("#findings")).to_contain_text(CPR)
    await expect(page.locator("#findings")).not_to_contain_text("Generatoren")
    problems = await _checked(page, "da")

    await page.click("#lang")
    await expect(page.locator("h1")).to_have_text("Access and erasure for one person")
    await expect(page.locator("#status")).to_have_text(re.compile("found|fund"))
    problems += await _checked(page, "en")
    await page.click("#lang")
    await expect(page.locator("h1")).to_have_text("Indsigt og sletning for én person")
    assert problems == []

    async with page.expect_download() as download_info:
        await page.click("#export-csv")
    exported = tmp_path / "persondata.csv"
    await (await download_info.value).save_as(exported)
    text = exported.read_text()
    assert text.startswith("place,id,time,kind,sender,recipient,content") and CPR in text

    await page.click("#erase")
    await expect(page.locator("#confirm")).to_be_visible()
    await expect(page.locator("#confirm-text")).to_contain_text("for altid")
    await page.click("#erase-cancel")
    await expect(page.locator("#confirm")).to_be_hidden()
    assert await rows.count() >= 3, "cancelled: nothing erased"
    await page.click("#erase")
    await page.click("#erase-now")
    await expect(page.locator("#status")).to_have_text(
        re.compile(r"^Slettet: 2 beskeder, 0 sendte, 1 statusser")
    )
    await page.click("#search button[type=submit]")
    await expect(page.locator("#status")).to_have_text("Intet fundet.")
    assert outside.requests == []

    assert await staff.console.logbook.verify() is None
    book = " ".join(entry.text for entry in await staff.console.logbook.page(limit=50))
    assert "Personoplysninger slettet efter anmodning: 2 beskeder" in book and NAME not in book
    assert "Generatoren" in str([m["body"] for m in staff.console.messages])
    await page.context.close()
