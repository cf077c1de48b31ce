"""A hub's log-book head is witnessed by the staff hub, at intervals and on every export: a care home's log
book rewritten later by someone holding the whole SD card (the chain key too), its hashes recomputed so
that it verifies on its own, no longer matches the anchor the witness holds."""

from __future__ import annotations

import asyncio
import hmac
import re
import sqlite3
from pathlib import Path

import aiohttp
import pytest

from hub.console.logbook import GENESIS, EntryType, LogBook, canonical_bytes
from hub.console.logbook_chain import KEY_FILE
from hub.console.logbook_upkeep import witnessed_heads
from hub.console.options import ConsoleOptions
from hub.console.users import Role
from hub.core.at_rest import KEY_FOLDER
from hub.core.clock import ManualClock
from tests.console.conftest import PASSWORD, Pair

ANCHOR = re.compile(r"anker (\d+):([0-9a-f]{64})")


@pytest.fixture
def console_options() -> ConsoleOptions:
    return ConsoleOptions(tick_interval=0.1, witness_interval=0.2)


def rewrite(path: str, seq: int, text: str) -> None:
    """What a thief with the whole SD card can do: change an entry and recompute every hash with the key."""
    key = (Path(path).parent / KEY_FOLDER / KEY_FILE).read_bytes()
    with sqlite3.connect(path) as raw:
        raw.execute("DROP TRIGGER logbook_no_update")
        raw.execute("UPDATE logbook SET text = ? WHERE seq = ?", (text, seq))
        previous = GENESIS
        rows = raw.execute("SELECT seq, time, author, node, type, text FROM logbook ORDER BY seq").fetchall()
        for row in rows:
            previous = hmac.digest(key, previous + canonical_bytes(*row), "sha256")
            raw.execute("UPDATE logbook SET hash = ? WHERE seq = ?", (previous, row[0]))


async def test_a_rewritten_log_book_verifies_alone_but_not_against_its_witnessed_anchor(pair: Pair) -> None:
    care, staff = pair.care.console, pair.staff.console
    await care.note(EntryType.DECISION, "Beboer flyttet til stuen", author="lindely")

    async def witnessed() -> list[tuple[int, str]]:
        return [(int(m[1]), m[2]) for e in await staff.logbook.entries() if (m := ANCHOR.search(e.text))]

    # the care hub sends its head on its own tick; the staff hub logs it when it arrives
    deadline = asyncio.get_running_loop().time() + 30
    while not (anchors := await witnessed()):
        assert asyncio.get_running_loop().time() < deadline, "no anchor reached the staff hub's log book"
        await asyncio.sleep(0.1)
    seq, digest = anchors[-1]
    assert not [m for m in staff.messages if m["kind"] == "logbook_head"]  # in the log book only
    # the witness finds them again by the sender's node id (what ``beredt log verify --witness`` asks for)
    care_id = pair.care.hub.identity.node_id.hex()
    assert (seq, digest) in await witnessed_heads(staff.logbook, care_id)
    path = str(pair.care.hub.config.data_dir / "console.db")
    book = await LogBook.open(path, ManualClock(), "x")
    try:
        assert await book.verify(anchor=(seq, digest)) is None  # the true book matches its witness
        rewrite(path, 1, "Intet at bemærke")
        assert await book.verify() is None  # consistent on its own: the hashes were recomputed
        assert await book.verify(anchor=(seq, digest)) == seq  # the witness's anchor tells
    finally:
        await book.aclose()


@pytest.mark.parametrize("console_options", [ConsoleOptions(tick_interval=0.1, witness_interval=3600.0)])
async def test_an_export_sends_the_head_it_prints_to_the_witness(pair: Pair) -> None:
    care, staff = pair.care.console, pair.staff.console
    await care.users.add("leder", PASSWORD, Role.COORDINATOR)
    await care.note(EntryType.DECISION, "Beboer flyttet til stuen", author="lindely")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        login = {"username": "leder", "password": PASSWORD}
        async with session.post(f"{pair.care.url}/console/api/login", json=login) as response:
            assert response.status == 200
        async with session.get(f"{pair.care.url}/console/api/logbook.html") as response:
            assert response.status == 200
            report = await response.text()
    printed = re.search(r"Sidste post (\d+), SHA-256: ([0-9a-f]{64})", report)
    assert printed is not None
    exported = (int(printed[1]), printed[2])

    async def witnessed() -> list[tuple[int, str]]:
        return [(int(m[1]), m[2]) for e in await staff.logbook.entries() if (m := ANCHOR.search(e.text))]

    # the interval is an hour: only the export can have sent it
    deadline = asyncio.get_running_loop().time() + 60
    while exported not in await witnessed():
        assert asyncio.get_running_loop().time() < deadline, "the exported head never reached the witness"
        await asyncio.sleep(0.1)
