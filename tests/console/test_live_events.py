"""What live events carry, and to whom: changed rows for the views, log-book entries only to its readers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from tests.console.conftest import Pair
from tests.console.test_routes import Client, clients  # noqa: F401 (a fixture)


async def read_events(
    stream: aiohttp.ClientResponse, until: str, *, carrying: str | None = None
) -> dict[str, Any]:
    """Events (topic -> data of its latest) until ``until`` has come (with the key ``carrying`` in its
    data, if given: a link's health change also tells the board to refresh, with no rows)."""
    seen: dict[str, Any] = {}
    topic = ""
    async with asyncio.timeout(60):
        while until not in seen or (carrying is not None and carrying not in seen[until]):
            line = (await stream.content.readline()).decode()
            if line.startswith("event: "):
                topic = line[7:].strip()
            elif line.startswith("data: "):
                seen[topic] = json.loads(line[6:])
    return seen


async def test_an_institution_hears_that_the_log_book_changed_not_what_it_says(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    care = clients(pair.care.url)
    await care.login("lindely")
    async with care.session.get(f"{pair.care.url}/console/api/events") as stream:
        await care.ok("POST", "status", {"preset": "help"})  # logged on the care hub as sent
        events = await read_events(stream, "logbook")
    assert events["logbook"] == {}
    assert (await care.call("GET", "logbook"))[0] == 403


async def test_a_received_status_event_carries_its_board_row_and_message(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    staff, care = clients(pair.staff.url), clients(pair.care.url)
    await staff.login("hansen")
    await care.login("lindely")
    async with staff.session.get(f"{pair.staff.url}/console/api/events") as stream:
        await care.ok("POST", "status", {"preset": "help"})
        events = await read_events(stream, "board", carrying="rows")
    node = pair.care.hub.node_id.hex()
    (row,) = events["board"]["rows"]
    assert row["node"] == node and row["concern"] == "help" and row["contact"]["last_heard"] is not None
    (item,) = events["message"]["items"]
    assert item["kind"] == "status" and item["from"] == node and item["read"] is False
    board = (await staff.ok("GET", "board"))["institutions"]
    assert board[0]["status"] == row["status"]  # the same row the view gives
