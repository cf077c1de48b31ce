"""The console tells the truth, in Chromium against a small municipality of real ``beredt run`` processes.

Staff hub -> relay -> two care homes over the internet link. With the relay stopped, a care home's
emergency says "not confirmed" and the staff board flags the home as out of contact; with the relay back
both turn to confirmed. A coordinator writes to every institution and watches each recipient's state go
to "read". Every view, in both languages, has no sideways scrolling and no axe-core WCAG 2.1 A/AA
violation, and the Danish console shows no English: by default Danish at phone width and English at
desktop width (each layout and each language checked once), with ``--soak`` every language at 360,
390 and 1280 px. One browser and one municipality serve the whole module (the tests run in file order
and build on each other).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.console.test_cap import OUTSIDE
from tests.console.test_hub_process import PASSWORD, add_user
from tests.hubproc import REPO, HubProcess

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = REPO / "build" / "test-tools" / "node_modules" / "axe-core" / "axe.min.js"
for needed, how in ((Path(CHROMIUM), "apt-get install -y chromium"), (AXE, "scripts/dev check installs it")):
    if not needed.exists():  # the real browser and the real checker are the point: fail, never skip
        raise RuntimeError(f"{needed} is missing: {how}")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]  # fmt: skip
ARTIFACTS = REPO / "test-artifacts"
I18N = REPO / "hub" / "console" / "static" / "i18n"
STAFF_TABS = ["board", "write", "sent", "rollcall", "messages", "logbook", "links", "exercise"]
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FULL_MATRIX = os.environ.get("BEREDT_SOAK") == "1"
WIDTHS = {"da": (360, 390, 1280), "en": (360, 390, 1280)} if FULL_MATRIX else {"da": (390,), "en": (1280,)}
"""Phone (390) and desktop (1280) layouts each get axe in some language by default; 360 px, the
narrowest phone, only adds the overflow check, so it waits for the soak run."""
expect.set_options(timeout=30_000)
pytestmark = pytest.mark.timeout(600)  # four hubs and a browser on a loaded 2-core machine


class Municipality:
    def __init__(self, folder: Path) -> None:
        self.staff = HubProcess.create(folder / "staff", "Aarhus krisestab", "staff")
        self.relay = HubProcess.create(folder / "relay", "Relay Nord", "relay")
        self.homes = [
            HubProcess.create(folder / "lindely", "Plejecenter Lindely", "care-home"),
            HubProcess.create(folder / "solbakken", "Plejecenter Solbakken", "care-home"),
        ]
        everyone = [self.staff, self.relay, *self.homes]
        for hub in (self.staff, *self.homes):
            hub.add_peer(self.relay, {"internet": self.relay.internet_url})
            self.relay.add_peer(hub, {"internet": hub.internet_url})
            self.relay.set_route(hub, [hub])
            hub.set_default_route([self.relay])
        for hub in everyone:
            hub.trust(*(other for other in everyone if other is not hub))
        # both homes in one district, as an operator writes it in roster.toml: a group the staff can write to
        roster_file = self.staff.dir / "data" / "roster.toml"
        roster = tomllib.loads(roster_file.read_text())
        for node in roster["node"]:
            if node["card"] in (home.card for home in self.homes):
                node["groups"] = ["distrikt-syd"]
        roster_file.write_text(tomli_w.dumps(roster))
        add_user(self.staff, "hansen", "coordinator", "--display-name", "Vagtleder Hansen")
        add_user(self.homes[0], "lindely", "institution", "--display-name", "Nattevagt Birgit")
        add_user(self.homes[1], "solbakken", "institution", "--display-name", "Nattevagt Ole")
        with ThreadPoolExecutor(len(everyone)) as starting:  # at once: a loaded machine starts slowly
            list(starting.map(lambda hub: hub.start(timeout=120), everyone))

    def stop(self) -> None:
        for hub in (self.staff, self.relay, *self.homes):
            hub.kill()


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Municipality]:
    town = Municipality(tmp_path_factory.mktemp("town"))
    try:
        yield town
    finally:
        town.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(
    browser: Browser, hub: HubProcess, user: str | None, *, width: int = 1280, lang: str = "da"
) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True, locale="da-DK")
    context.add_init_script(f"localStorage.setItem('beredt-lang', '{lang}')")
    page = context.new_page()
    page.on("pageerror", lambda error: pytest.fail(f"JavaScript error: {error}"))
    page.goto(f"http://127.0.0.1:{hub.api_port}/console/")
    if user is not None:
        page.fill("input[name=username]", user)
        page.fill("input[name=password]", PASSWORD)
        page.click("#login-form button[type=submit]")
        expect(page.locator("#logout")).to_be_visible()
    return page


def board_row(page: Page, name: str) -> Any:
    return page.locator("#board tbody tr", has_text=name)


def test_emergency_is_unconfirmed_while_the_relay_is_down_and_confirmed_when_it_is_back(
    town: Municipality, browser: Browser
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    staff = open_page(browser, town.staff, "hansen")
    care = open_page(browser, town.homes[0], "lindely", width=390)
    expect(staff.locator("#live")).to_have_text("Forbindelser: alle 1 oppe")

    town.relay.kill()
    lindely = board_row(staff, "Plejecenter Lindely")
    expect(lindely).to_have_attribute("data-contact", "lost")
    expect(lindely.locator("[data-alarm=route_down]")).to_contain_text("INGEN KONTAKT")
    expect(staff.locator("#live")).to_have_text("Ingen forbindelse ud")

    care.click("button[data-preset=emergency]")
    emergency = care.locator("button[data-preset=emergency] .btn-state")
    expect(emergency).to_contain_text("ikke bekræftet")
    expect(care.locator("#unconfirmed")).to_contain_text(
        "Kommunen har ikke bekræftet jeres melding «NØDSITUATION»"
    )
    expect(care.locator("#outbox li[data-kind=status]").first).to_contain_text("i kø")
    care.screenshot(path=ARTIFACTS / "console-care-emergency-unconfirmed.png", full_page=True)
    staff.screenshot(path=ARTIFACTS / "console-staff-out-of-contact.png", full_page=True)

    town.relay.start()
    expect(emergency).to_contain_text("modtaget af kommunen", timeout=45_000)
    expect(care.locator("#unconfirmed")).to_be_hidden()
    expect(lindely).to_have_attribute("data-contact", "ok", timeout=45_000)
    expect(lindely).to_have_class("critical")
    expect(lindely).to_contain_text("NØDSITUATION")
    expect(staff.locator("#live")).to_have_text("Forbindelser: alle 1 oppe")
    staff.context.close()
    care.context.close()


def test_coordinator_writes_to_every_institution_and_sees_each_read(
    town: Municipality, browser: Browser
) -> None:
    staff = open_page(browser, town.staff, "hansen")
    staff.click("#tabbtn-write")
    staff.select_option("#compose-to", "*")
    staff.fill("#compose-form textarea[name=text]", "Brændstof kommer kl. 14")
    staff.select_option("#compose-form select[name=priority]", "urgent")
    staff.click("#compose-form button[type=submit]")
    expect(staff.locator("#compose-form .confirmation")).to_contain_text(
        "Lagt i kø til 2 modtager(e) – ingen har bekræftet endnu"
    )

    staff.click("#tabbtn-sent")
    sent = staff.locator("#sent > li", has_text="Brændstof kommer kl. 14")
    expect(sent.locator("li[data-node]")).to_have_count(2)
    expect(sent.locator("li[data-state=delivered]")).to_have_count(2, timeout=45_000)

    care = open_page(browser, town.homes[0], "lindely", width=390)
    instruction = care.locator("#instructions li", has_text="Brændstof kommer kl. 14")
    instruction.get_by_role("button", name="Læst og forstået").click()
    expect(instruction.locator(".read-done")).to_be_focused()  # focus stays where the reader was

    read = sent.locator("li[data-state=read]")
    expect(read).to_have_count(1, timeout=45_000)
    expect(read).to_contain_text("læst og forstået af Nattevagt Birgit")
    expect(sent).to_contain_text("Bekræftet af 2 af 2")
    staff.click("#tabbtn-messages")
    receipt = staff.locator("#messages li[data-kind=read_receipt]").first
    expect(receipt).to_contain_text("Brændstof kommer kl. 14")  # the receipt names the message
    staff.screenshot(path=ARTIFACTS / "console-staff-sent.png", full_page=True)
    staff.context.close()
    care.context.close()


def test_coordinator_writes_to_a_group_and_sees_how_many_have_it(
    town: Municipality, browser: Browser
) -> None:
    staff = open_page(browser, town.staff, "hansen")
    staff.click("#tabbtn-write")
    option = staff.locator("#compose-to optgroup option", has_text="distrikt-syd")
    expect(option).to_have_text("Gruppen distrikt-syd (2 modtagere)")
    staff.select_option("#compose-to", "group:distrikt-syd")
    staff.fill("#compose-form textarea[name=text]", "Varmestuen i hallen er åben")
    staff.click("#compose-form button[type=submit]")
    expect(staff.locator("#compose-form .confirmation")).to_contain_text(
        "Lagt i kø til 2 modtager(e) – ingen har bekræftet endnu"
    )

    staff.click("#tabbtn-sent")
    sent = staff.locator("#sent > li", has_text="Varmestuen i hallen er åben")
    expect(sent.locator("li[data-node]")).to_have_count(2)
    expect(sent.locator(".group-count")).to_have_text(
        "Gruppen distrikt-syd: 2 af 2 har modtaget", timeout=45_000
    )
    # the same group message through the API: the hub tracks it as one
    group_messages = town.staff.get("/v1/group-messages")["group_messages"]
    assert group_messages[0]["group"] == "distrikt-syd"
    assert (group_messages[0]["received"], group_messages[0]["total"]) == (2, 2)
    staff.context.close()


def test_the_next_sitrep_number_survives_a_new_login(town: Municipality, browser: Browser) -> None:
    for summary in ("Strømsvigt i Aarhus N", "Strømmen er tilbage"):
        staff = open_page(browser, town.staff, "hansen")
        staff.click("#tabbtn-write")
        staff.select_option("#compose-kind", "sitrep")
        number = staff.locator("#compose-form input[name=number]")
        expected = "1" if summary.startswith("Strømsvigt") else "2"
        expect(number).to_have_value(expected)
        staff.fill("#compose-form textarea[name=summary]", summary)
        staff.click("#compose-form button[type=submit]")
        expect(staff.locator("#compose-form .confirmation")).to_contain_text("Sendt")
        staff.context.close()


def _views(page: Page, role: str) -> Iterator[str]:
    if role == "institution":
        yield "institution"
        return
    for tab in STAFF_TABS:
        page.click(f"#tabbtn-{tab}")
        expect(page.locator(f"#tab-{tab}")).to_be_visible()
        page.wait_for_load_state("networkidle")
        yield tab


def _axe(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
            for v in result["violations"]]  # fmt: skip


def _english_words() -> set[str]:
    """Words of the English console that the Danish one never uses (names and numbers excluded)."""

    def words(path: Path) -> set[str]:
        text = " ".join(json.loads(path.read_text()).values())
        return {w.lower() for w in re.findall(r"[A-Za-z][a-z]{3,}", re.sub(r"\{\w+\}", " ", text))}

    return words(I18N / "en.json") - words(I18N / "da.json")


VISIBLE_DANISH_TEXT = """() => {
  const skip = (node) => node.closest('[hidden]') || node.closest('.sr-only');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const out = [];
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (!skip(n.parentElement)) out.push(n.textContent);
  }
  for (const n of document.querySelectorAll('[aria-label], [placeholder]')) {
    if (!skip(n)) out.push(n.getAttribute('aria-label') || '', n.getAttribute('placeholder') || '');
  }
  return out.join(' ');
}"""


@pytest.mark.parametrize("lang", ["da", "en"])
def test_every_view_fits_a_phone_passes_axe_and_speaks_one_language(
    town: Municipality, browser: Browser, lang: str
) -> None:
    english = _english_words()
    problems: list[str] = []
    for width in WIDTHS[lang]:
        login = open_page(browser, town.staff, None, width=width, lang=lang)
        expect(login.locator("#view-login")).to_be_visible()
        pages = [("login", login)]
        pages.append(("staff", open_page(browser, town.staff, "hansen", width=width, lang=lang)))
        pages.append(("institution", open_page(browser, town.homes[1], "solbakken", width=width, lang=lang)))
        for role, page in pages:
            views = (
                ["login"]
                if role == "login"
                else _views(page, "institution" if role == "institution" else "staff")
            )
            for view in views:
                where = f"{lang} {width}px {view}"
                overflow = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                if overflow[0] > overflow[1]:
                    problems.append(f"{where}: scrollWidth {overflow[0]} > innerWidth {overflow[1]}")
                if not page.title().endswith("– Beredt") or page.title() == "Beredt":
                    problems.append(f"{where}: no view title ({page.title()!r})")
                if width != 360:  # axe once per language and layout
                    problems += [f"{where}: axe {v}" for v in _axe(page)]
                if lang == "da":
                    seen = {
                        w.lower()
                        for w in re.findall(r"[A-Za-z][a-z]{3,}", page.evaluate(VISIBLE_DANISH_TEXT))
                    }
                    leaked = sorted(seen & english)
                    if leaked:
                        problems.append(f"{where}: English in the Danish console: {leaked}")
            if width == 390:
                page.screenshot(path=ARTIFACTS / f"console-{lang}-{role}-390.png", full_page=True)
        for _, page in pages:
            page.context.close()
    assert problems == [], "\n".join(problems)


def test_tabs_follow_the_arrow_keys_and_say_which_is_selected(town: Municipality, browser: Browser) -> None:
    staff = open_page(browser, town.staff, "hansen")
    board = staff.locator("#tabbtn-board")
    expect(board).to_have_attribute("aria-selected", "true")
    board.focus()
    staff.keyboard.press("ArrowRight")
    expect(staff.locator("#tabbtn-write")).to_be_focused()
    expect(staff.locator("#tabbtn-write")).to_have_attribute("aria-selected", "true")
    expect(staff.locator("#tab-write")).to_be_visible()
    expect(staff).to_have_title("Skriv – Beredt")
    staff.keyboard.press("End")
    expect(staff.locator("#tabbtn-exercise")).to_be_focused()  # the last tab
    staff.keyboard.press("ArrowRight")
    expect(staff.locator("#tabbtn-board")).to_be_focused()
    staff.context.close()


def shows_its_words(field: Any, words: dict[str, str], label: str) -> None:
    """A file field's label, its button and "no file chosen", each in the console's language."""
    expect(field.locator(":scope > span").first).to_have_text(words[label])
    expect(field.locator(".file-button")).to_have_text(words["file_choose"])
    expect(field.locator(".file-name")).to_have_text(words["file_none"])


def reached_by_tab(page: Any, before: str, native: Any, after: str) -> None:
    """A keyboard user reaches the file field with Tab from ``before`` (its place in the form's order), sees
    the focus ring on the drawn "Vælg fil" button, and goes on with Tab to ``after`` and back."""
    page.locator(before).evaluate("e => { e.tabIndex = e.tabIndex; e.focus(); }")
    page.keyboard.press("Tab")
    expect(native).to_be_focused()
    button = native.locator("xpath=following-sibling::span[1]/span[contains(@class, 'file-button')]")
    assert (
        button.evaluate("b => getComputedStyle(b).outlineStyle") == "solid"
    )  # the ring shows where focus is
    page.keyboard.press("Tab")
    expect(page.locator(after)).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(native).to_be_focused()


@pytest.mark.parametrize("lang", ["da", "en"])
def test_file_fields_speak_the_console_language_and_still_send(
    town: Municipality, browser: Browser, lang: str
) -> None:
    """The CAP import and the exercise scenario fields show the console's words, not Chromium's own
    "Choose File / No file chosen"; they open from the keyboard, name the chosen file, and the chosen CAP
    file is sent to the care homes."""
    words = json.loads((I18N / f"{lang}.json").read_text())
    staff = open_page(browser, town.staff, "hansen", lang=lang)
    staff.click("#tabbtn-write")
    shows_its_words(staff.locator("#cap-form .file-pick"), words, "cap_import")
    native = staff.locator("#cap-form input[type=file]")
    assert native.evaluate("n => n.getBoundingClientRect().width") <= 1  # the browser's own words unseen
    expect(staff.get_by_label(words["cap_import"])).to_have_attribute("type", "file")  # labelled
    staff.click("#cap-form button[type=submit]")  # nothing chosen: said in the console's language
    expect(staff.locator("#cap-form .error")).to_have_text(words["file_missing"])
    expect(native).to_be_focused()
    problems = [f"{lang} write: axe {v}" for v in _axe(staff)]

    document = OUTSIDE.replace("DMI-2026-0042", f"DMI-2026-{lang}").replace("DESCRIPTION", "Vandet stiger")
    home = open_page(browser, town.homes[0], "lindely")
    alerts = home.locator("#instructions li[data-kind=alert]")
    # the alerts the care home holds (an earlier language's run sent one), once its page shows them: a
    # count read while the page still loads would be short, and the new alert would look like two
    held = home.request.get(f"http://127.0.0.1:{town.homes[0].api_port}/console/api/messages").json()
    before = sum(1 for m in held["messages"] if m["kind"] == "alert")
    expect(alerts).to_have_count(before)
    staff.bring_to_front()  # the care home's page opened last has the window's focus
    reached_by_tab(staff, "#compose-send", native, "#cap-form button[type=submit]")
    with staff.expect_file_chooser() as chosen:  # from the keyboard, as a person without a mouse opens it
        staff.keyboard.press("Space")
    assert chosen.value.element.get_attribute("name") == "file"  # the CAP field's own input
    native.set_input_files({"name": "dmi.xml", "mimeType": "application/xml", "buffer": document.encode()})
    expect(staff.locator("#cap-form .file-name")).to_have_text("dmi.xml")
    staff.click("#cap-form button[type=submit]")
    expect(staff.locator("#cap-form .error")).to_have_text("")
    expect(alerts).to_have_count(before + 1, timeout=45_000)  # the chosen file reached the care home
    expect(staff.locator("#cap-form .file-name")).to_have_text(words["file_none"])  # the form is reset

    staff.click("#tabbtn-exercise")
    scenario = staff.locator("#exercise-start .file-pick")
    expect(scenario).to_be_visible()  # no exercise under way in this town: the start form is shown
    shows_its_words(scenario, words, "exercise_file")
    reached_by_tab(
        staff,
        "#exercise-start h3",
        scenario.locator("input[type=file]"),
        "#exercise-start textarea[name=scenario]",
    )
    with staff.expect_file_chooser() as chosen:  # a click on the drawn button opens the same field
        staff.click("#exercise-start .file-button")
    assert chosen.value.element.get_attribute("accept") == ".toml,text/plain"  # the scenario's input
    scenario.locator("input[type=file]").set_input_files(
        {"name": "storm.toml", "mimeType": "text/plain", "buffer": b'name = "Storm"\n'}
    )
    expect(staff.locator("#exercise-start .file-name")).to_have_text("storm.toml")
    expect(staff.locator("#exercise-start textarea[name=scenario]")).to_have_value('name = "Storm"\n')
    problems += [f"{lang} exercise: axe {v}" for v in _axe(staff)]
    staff.context.close()
    home.context.close()
    assert problems == [], "\n".join(problems)
