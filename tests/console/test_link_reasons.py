"""A link's reason reaches people as words in their language, never as the transport's own text.

A staff hub whose care home is not running: its probes fail with aiohttp's English ("Cannot connect to
host ..."). The API carries the code, the CLI and the Danish console word it in Danish, the English
console in English, and the raw text stays in the hub's log and the API's ``reason``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.console.test_console_truth import CHROMIUM, FLAGS, I18N, open_page
from tests.console.test_hub_process import add_user
from tests.hubproc import HubProcess, staff_and_care_home

pytestmark = pytest.mark.timeout(300)
FAILING = ("probe_failed", "probe_silent", "send_failed", "link_down")


@pytest.fixture
def lonely_staff(tmp_path: Path) -> Iterator[HubProcess]:
    staff, _never_started = staff_and_care_home(tmp_path, "Plejecenter Lindely")
    add_user(staff, "hansen", "coordinator")
    staff.start(timeout=120)
    try:
        yield staff
    finally:
        staff.kill()


def _failing_row(staff: HubProcess) -> dict[str, Any] | None:
    rows = staff.get("/v1/links")["links"]
    return next((r for r in rows if r["peer_name"] == "Plejecenter Lindely" and r["state"] == "down"), None)


def test_a_failed_probe_is_worded_not_quoted(lonely_staff: HubProcess) -> None:
    staff = lonely_staff
    staff.wait_for("the care home's link down", lambda: _failing_row(staff) is not None, timeout=90)
    row = _failing_row(staff)
    assert row is not None
    code = row["reason_code"]
    assert code in FAILING, row
    raw = row["reason"].split(": ", 1)[1]  # the transport's own words, for programs and the log
    assert len(raw) > 10, row
    # while down, the reason moves between the failing codes as probes and the link report alternate
    words = {
        lang: [json.loads((I18N / f"{lang}.json").read_text())[f"reason_{c}"] for c in FAILING]
        for lang in ("da", "en")
    }

    table = staff.cli("links")
    assert any(said in table for said in words["da"]) and raw[:20] not in table, table

    with sync_playwright() as driver:
        browser: Browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            for lang, said in words.items():
                page = open_page(browser, staff, "hansen", lang=lang)
                page.click("#tabbtn-links")
                row_text = page.locator("#links tbody tr", has_text="Plejecenter Lindely")
                expect(row_text).to_contain_text(re.compile("|".join(map(re.escape, said))))
                expect(row_text).not_to_contain_text(raw[:20])
                assert page.locator("#links [lang=en]").count() == 0
                page.context.close()
        finally:
            browser.close()
