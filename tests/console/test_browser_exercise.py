"""An exercise in a real headless Chromium against two real hubs: the coordinator starts it from the
exercise tab, both consoles show the permanent ØVELSE banner (the care home's over the live stream, from
the signed control that reached its hub; both pages with the banner pass axe-core and the care home's
fits a 390 px phone), an observer adds a note the coordinator sees in the timeline,
and ending it takes the banner down everywhere; afterwards the coordinator asks every hub for its own
account of its links again from the tab."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import playwright.async_api as playwright_api

from hub.core.frame import Kind
from tests.console.conftest import Pair
from tests.console.test_browser import ARTIFACTS, Outside, _login, _page, browser, expect
from tests.console.test_field_pages import _axe

__all__ = ["browser"]

SCENARIO = """
name = "Strømsvigt i distrikt Syd"
duration = "1h"
[participants]
nodes = ["Plejecenter Lindely"]
[[injects]]
at = "0m"
kind = "message"
text = "Strømmen er gået i hele distrikt Syd"
[[injects]]
at = "0m"
kind = "rollcall"
text = "Kører nødstrømmen?"
[[injects]]
at = "30m"
kind = "rollcall"
text = "Er der varme nok til natten?"
"""


async def test_the_exercise_banner_timeline_and_notes(pair: Pair, browser: playwright_api.Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    outside = Outside()
    staff = await _page(browser, outside, viewport={"width": 1280, "height": 900}, bypass_csp=True)
    await _login(staff, pair.staff.url, "hansen")
    await expect(staff.locator("#view-staff")).to_be_visible()
    await expect(staff.locator("#exercise-banner")).to_be_hidden()
    care = await _page(browser, outside, viewport={"width": 390, "height": 844}, bypass_csp=True)
    await _login(care, pair.care.url, "lindely")
    await expect(care.locator("#view-institution")).to_be_visible()
    await expect(care.locator("#exercise-banner")).to_be_hidden()

    await staff.click(".tabs [data-tab=exercise]")
    await staff.fill("#exercise-start textarea[name=scenario]", SCENARIO)
    await staff.click("#exercise-start button[type=submit]")
    banner = staff.locator("#exercise-banner")
    await expect(banner).to_contain_text("ØVELSE – Strømsvigt i distrikt Syd")
    await expect(staff.locator("#exercise-timeline")).to_contain_text("Indspil 1. Besked: Strømmen er gået")
    await expect(staff.locator("#exercise-upcoming")).to_contain_text("Statusrunde: Er der varme nok")
    await expect(staff.locator("#exercise-start")).to_be_hidden()
    await staff.click(".tabs [data-tab=rollcall]")  # a roll-call started now is the exercise's, and says so
    await expect(staff.locator("#rollcall-form .exercise-note")).to_contain_text("statusrunden er øvelsens")
    await staff.click(".tabs [data-tab=exercise]")

    # the care home's page was not reloaded: its hub applied the signed control and told the page
    await expect(care.locator("#exercise-banner")).to_contain_text("ØVELSE – Strømsvigt i distrikt Syd")
    await expect(care.locator("#instructions")).to_contain_text(
        "ØVELSE: Strømmen er gået i hele distrikt Syd"
    )
    await expect(care.locator("#open-rollcall")).to_contain_text("ØVELSE: Kører nødstrømmen?")
    await care.screenshot(path=ARTIFACTS / "console-exercise-care-home.png", full_page=True)
    assert await care.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert await _axe(care) == []
    await care.click("button[data-preset=ok]")  # the answer to an exercise roll-call is marked Exercise too
    await expect(staff.locator("#exercise-timeline")).to_contain_text("Svar fra Plejecenter Lindely")

    observer = await _page(browser, outside, viewport={"width": 1024, "height": 768})
    await _login(observer, pair.staff.url, "laeser")
    await observer.click(".tabs [data-tab=exercise]")
    await expect(observer.locator("#exercise-end")).to_be_hidden()  # an observer does not run it
    await observer.fill("#exercise-note textarea[name=text]", "Lindely læste beskeden højt for vagten")
    await observer.click("#exercise-note button[type=submit]")
    await expect(staff.locator("#exercise-timeline")).to_contain_text("Lindely læste beskeden højt")
    await staff.screenshot(path=ARTIFACTS / "console-exercise-timeline.png", full_page=True)
    assert await _axe(staff) == []  # the exercise tab with a running exercise, banner shown

    staff.once("dialog", lambda dialog: dialog.accept())
    await staff.click("#exercise-end")
    await expect(staff.locator("#exercise-banner")).to_be_hidden()
    await expect(care.locator("#exercise-banner")).to_be_hidden()
    await expect(staff.locator("#exercise-timeline")).to_contain_text("Øvelsen er slut")
    await expect(staff.locator("#exercise-upcoming")).to_have_text("Ingen indspil tilbage.")

    # the care home sent its own account at the end; the coordinator asks for it again from the tab
    await wait_for_summaries(pair, 1)
    await staff.click("#exercise-collect")
    await expect(staff.locator("#exercise-collected")).to_contain_text("Hubberne er bedt om deres egne tal")
    await wait_for_summaries(pair, 2)
    assert await _axe(staff) == []  # the tab after the end, with the collect button and its answer
    assert outside.requests == []


async def wait_for_summaries(pair: Pair, count: int) -> None:
    """Until the staff hub has stored ``count`` EXERCISE_SUMMARY frames from the care home."""
    sender = pair.care.hub.identity.node_id
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        await pair.staff.hub.store.flush()
        with contextlib.closing(sqlite3.connect(pair.staff.hub.config.data_dir / "store.db")) as db:
            query = "SELECT count(*) FROM messages WHERE kind = ? AND sender = ? AND local = 0"
            (stored,) = db.execute(query, (int(Kind.EXERCISE_SUMMARY), sender)).fetchone()
        if stored >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{stored} summaries, expected {count}"
        await asyncio.sleep(0.2)
