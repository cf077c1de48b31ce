"""During an exercise, what people send from the console is an exercise message unless they choose
otherwise, in a real headless Chromium against two real hubs: the compose form and the care home's
status buttons say ØVELSE and send Exercise; "Reel hændelse – ikke øvelse", confirmed, sends one message
marked Actual, and a dismissed confirmation sends nothing."""

from __future__ import annotations

from typing import Any

import playwright.async_api as playwright_api

from hub.core.frame import Status
from tests.console.conftest import Pair
from tests.console.test_browser import Outside, _login, _page, browser, expect
from tests.inproc import eventually

__all__ = ["browser"]

SCENARIO = """
name = "Strømsvigt i distrikt Nord"
duration = "1h"
[participants]
nodes = ["Plejecenter Lindely"]
[[injects]]
at = "30m"
kind = "message"
text = "Vandet er afbrudt"
"""

DEADLINE = 60.0


def _received(site: Any, kind: str, text: str) -> dict[str, Any] | None:
    """The message of ``kind`` whose body mentions ``text``, as the receiving console recorded it."""
    return next((m for m in site.console.messages if m["kind"] == kind and text in str(m["body"])), None)


async def test_console_sends_exercise_by_default_and_real_only_by_choice(
    pair: Pair, browser: playwright_api.Browser
) -> None:
    outside = Outside()
    staff = await _page(browser, outside, viewport={"width": 1280, "height": 900})
    await _login(staff, pair.staff.url, "hansen")
    await expect(staff.locator("#view-staff")).to_be_visible()
    care = await _page(browser, outside, viewport={"width": 1024, "height": 768})
    await _login(care, pair.care.url, "lindely")
    await expect(care.locator("#view-institution")).to_be_visible()
    await expect(staff.locator("#compose-real")).to_be_hidden()  # no exercise: no such choice to make
    await expect(care.locator("#status-real")).to_be_hidden()

    await staff.click(".tabs [data-tab=exercise]")
    await staff.fill("#exercise-start textarea[name=scenario]", SCENARIO)
    await staff.click("#exercise-start button[type=submit]")
    await expect(care.locator("#exercise-banner")).to_contain_text("ØVELSE – Strømsvigt i distrikt Nord")

    # the compose form says what it will do, and does it
    await staff.click(".tabs [data-tab=write]")
    compose = staff.locator("#compose-form")
    send = compose.locator("#compose-send")
    await expect(send).to_have_text("Send som ØVELSE", use_inner_text=True)  # what is shown, not hidden
    await expect(compose.locator(".exercise-note")).to_contain_text("ØVELSE")
    await expect(compose.locator("select[name=status]")).to_be_hidden()
    await compose.locator("textarea[name=text]").fill("Tjek nødstrømmen")
    await send.click()
    await expect(compose.locator(".confirmation")).to_contain_text(
        "Lagt i kø til 1 modtager(e) – ingen har bekræftet endnu"
    )
    await eventually(lambda: _received(pair.care, "text", "Tjek nødstrømmen"), DEADLINE)
    assert _received(pair.care, "text", "Tjek nødstrømmen")["status"] == "exercise"  # type: ignore[index]

    # a real message: a separate, confirmed choice; dismissing the confirmation sends nothing
    await compose.locator("textarea[name=text]").fill("Brand i køkkenet, evakuér fløj B")
    staff.once("dialog", lambda dialog: dialog.dismiss())
    await compose.locator("#compose-real").click()
    await expect(compose.locator("textarea[name=text]")).to_have_value("Brand i køkkenet, evakuér fløj B")
    dialogs: list[str] = []

    async def accept(dialog: playwright_api.Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    staff.once("dialog", accept)
    await compose.locator("#compose-real").click()
    await expect(compose.locator(".confirmation")).to_contain_text("Lagt i kø som REEL HÆNDELSE til 1")
    assert "REEL HÆNDELSE" in dialogs[0]
    await eventually(lambda: _received(pair.care, "text", "Brand i køkkenet"), DEADLINE)
    real = _received(pair.care, "text", "Brand i køkkenet")
    assert real is not None and real["status"] == "actual"
    texts = [m for m in pair.care.console.messages if m["kind"] == "text"]
    assert len(texts) == 2  # the dismissed one was never sent

    # the care home's buttons say ØVELSE and send Exercise
    ok = care.locator("button[data-preset=ok]")
    await expect(ok).to_contain_text("ØVELSE", use_inner_text=True)
    await expect(ok.locator(".real-tag")).to_be_hidden()
    await care.fill("#status-form input[name=text]", "alt vel")
    await ok.click()
    await eventually(lambda: _received(pair.staff, "status", "alt vel"), DEADLINE)
    assert _received(pair.staff, "status", "alt vel")["status"] == "exercise"  # type: ignore[index]

    # ... and "Reel hændelse", confirmed, makes the next status real, then the buttons are exercise again
    care.once("dialog", lambda dialog: dialog.accept())
    await care.click("#status-real")
    help_button = care.locator("button[data-preset=help]")
    await expect(help_button.locator(".real-tag")).to_have_text("REEL")
    await expect(help_button.locator(".exercise-tag")).to_be_hidden()
    await care.fill("#status-form input[name=text]", "vandskade")
    await help_button.click()
    await eventually(lambda: _received(pair.staff, "status", "vandskade"), DEADLINE)
    assert _received(pair.staff, "status", "vandskade")["status"] == "actual"  # type: ignore[index]
    await expect(help_button.locator(".exercise-tag")).to_be_visible()
    assert pair.care.hub.exercise.default_status() is Status.EXERCISE
    assert outside.requests == []
