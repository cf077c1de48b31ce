"""Live events carry the rows they change: the staff page patches the board, the roll-call and the
message list in place, in a real Chromium, without fetching any of those views again."""

from __future__ import annotations

import re
import time

import playwright.async_api as playwright_api

from hub.core.frame import Priority
from tests.console.conftest import Pair
from tests.console.test_browser import Outside, _login, _page, browser  # noqa: F401 (a fixture)
from tests.inproc import eventually

expect = playwright_api.expect
VIEWS = re.compile(r"/console/api/(board|rollcalls|messages)(\?|$)")


async def test_a_status_patches_its_board_row_roll_call_and_message_without_a_refetch(
    pair: Pair,
    browser: playwright_api.Browser,  # noqa: F811
) -> None:
    outside = Outside()
    staff = await _page(browser, outside, viewport={"width": 1280, "height": 900})
    await staff.clock.install(time=time.time())  # the page's own timers, paused below
    await _login(staff, pair.staff.url, "hansen")
    row = staff.locator(f"#board tbody tr[data-node='{pair.care.hub.node_id.hex()}']")
    await expect(row).to_contain_text("Plejecenter Lindely")
    await expect(staff.locator("#live")).to_have_class(re.compile(r"\bon\b"))
    request = await pair.staff.console.start_rollcall("Meld status", 30, [], author="hansen")
    await expect(staff.locator("#rollcalls li[data-state=pending]")).to_have_count(1)
    await eventually(lambda: pair.care.console.open_rollcall() is not None, timeout=30)

    # From here every fetch of these views fails and is counted, and the page's periodic refresh is
    # paused: what the page shows next can only come from the events themselves. (Events that name a
    # topic alone still ask for a fetch: a link that wavers under load, the roll-call closing once all
    # have answered; none of them may be a fetch of the messages.)
    await staff.clock.pause_at(time.time() + 1)
    fetched: list[str] = []

    async def refuse(route: playwright_api.Route) -> None:
        fetched.append(route.request.url)
        await route.abort()

    await staff.route(VIEWS, refuse)
    status = {"facility": "Compromised", "power": "generator", "fuel_hours": 7}
    await pair.care.console.quick_status(status, Priority.URGENT, author="lindely")

    await expect(row).to_contain_text("7 t brændstof", timeout=30_000)
    await expect(row).to_have_class("help")
    answered = staff.locator(f"#rollcalls [data-request='{request}'] li[data-state=answered]")
    await expect(answered).to_have_count(1)
    await expect(staff.locator("#messages li[data-kind=status]")).to_have_count(1)
    assert not [url for url in fetched if "/messages" in url], fetched
    assert outside.requests == []
