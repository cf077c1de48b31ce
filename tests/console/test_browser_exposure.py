"""A real Chromium against a real ``beredt run`` hub: the console works through the API's gate, and a page
from another site cannot make the browser send or log in.

The hostile page is served from 127.0.0.2 (another site to the browser) and fires the requests any page
may send without asking: a ``text/plain`` POST to ``/v1/messages`` and a login POST, both ``no-cors``.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator

import playwright.async_api as playwright_api
import pytest
from aiohttp import web

from tests.console.test_browser import CHROMIUM, FLAGS
from tests.console.test_hub_process import PASSWORD, add_user
from tests.hubproc import HubProcess, staff_and_care_home

expect = playwright_api.expect


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, HubProcess]]:
    staff, home = staff_and_care_home(tmp_path_factory.mktemp("hubs"))
    add_user(staff, "hansen", "coordinator")
    staff.start()
    home.start()
    try:
        yield staff, home
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


@pytest.fixture
async def hostile_site(hubs: tuple[HubProcess, HubProcess]) -> AsyncIterator[str]:
    staff, home = hubs
    target = staff.api_url
    message = json.dumps({"to": home.node_id, "kind": "text", "body": "fra en fremmed side"})
    login = json.dumps({"username": "hansen", "password": PASSWORD})
    page = f"""<!doctype html><title>tilbud</title><script>
    const hits = [
      fetch("{target}/v1/messages", {{method: "POST", mode: "no-cors", body: {json.dumps(message)},
                                      headers: {{"Content-Type": "text/plain"}}}}),
      fetch("{target}/console/api/login", {{method: "POST", mode: "no-cors", credentials: "include",
                                            body: {json.dumps(login)},
                                            headers: {{"Content-Type": "text/plain"}}}}),
    ];
    Promise.allSettled(hits).then(() => {{ document.title = "done"; }});
    </script>"""

    async def serve_page(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve_page)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.create_server(("127.0.0.2", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.2:{port}/"
    finally:
        await runner.cleanup()


async def test_the_console_works_through_the_gate(
    hubs: tuple[HubProcess, HubProcess], browser: playwright_api.Browser
) -> None:
    staff, _ = hubs
    page = await (await browser.new_context()).new_page()
    page.on("pageerror", lambda error: pytest.fail(f"JavaScript error: {error}"))
    await page.goto(staff.api_url + "/")
    await page.fill("input[name=username]", "hansen")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#logout")).to_be_visible(timeout=20_000)
    refused = staff.get("/healthz")["http_refused"]
    assert not {"cross_origin", "foreign_host"} & set(refused), refused


async def test_a_page_from_another_site_cannot_send_or_log_in(
    hubs: tuple[HubProcess, HubProcess], browser: playwright_api.Browser, hostile_site: str
) -> None:
    staff, home = hubs
    before = staff.get("/healthz")["live_messages"]
    page = await (await browser.new_context()).new_page()
    await page.goto(hostile_site)
    await expect(page).to_have_title("done", timeout=20_000)
    health = staff.get("/healthz")
    assert health["http_refused"].get("cross_origin", 0) >= 2, health["http_refused"]
    assert health["live_messages"] == before, "nothing was sent"
    assert "fra en fremmed side" not in [m["body"] for m in home.inbox()]
