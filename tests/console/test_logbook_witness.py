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
        raw.execute("DROP TRIGGER logbook_000000001_no_update")
        raw.execute("UPDATE logbook_000000001 SET text = ? WHERE seq = ?", (text, seq))
        previous = GENESIS
        rows = raw.execute("SELECT seq, time, author, node, type, text FROM logbook ORDER BY seq").fetchall()
        for row in rows:
            previous = hmac.digest(key, previous + canonical_bytes(*row), "sha256")
            raw.execute("UPDATE logbook_000000001 SET hash = ? WHERE seq = ?", (previous, row[0]))


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
    held = await witnessed_heads(staff.logbook, care_id)
    assert (seq, digest) in [(h.seq, h.hash) for h in held]
    assert {h.witness for h in held} == {pair.staff.hub.identity.node_id.hex()}  # whose book vouches
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


async def test_heads_logged_before_the_sender_id_was_in_the_line_are_still_found(pair: Pair) -> None:
    """A witness's book from before its head lines named the sender's node id: such a line is matched by
    the message id while the witness's store holds the message, and by the sender's roster name after."""
    care, staff = pair.care.console, pair.staff.console
    care_id = pair.care.hub.identity.node_id.hex()
    await care.note(EntryType.DECISION, "Beboer flyttet til stuen", author="lindely")
    deadline = asyncio.get_running_loop().time() + 30
    while not (heads := await witnessed_heads(staff.logbook, care_id)):
        assert asyncio.get_running_loop().time() < deadline, "no anchor reached the staff hub's log book"
        await asyncio.sleep(0.1)
    logged = next(e for e in await staff.logbook.entries() if e.seq == heads[0].entry)
    found = re.search(r"\[id ([0-9a-f]{32})\]", logged.text)
    assert found is not None, logged.text
    stored_id = found[1]
    assert await pair.staff.hub.store.message(bytes.fromhex(stored_id)) is not None
    digest = "ab" * 32

    def old_line(name: str, message_id: str, seq: int) -> str:
        """As the witness wrote it before: the sender by name only."""
        return f"logbogsanker fra {name} via internet: post {seq}, anker {seq}:{digest} [id {message_id}]"

    gone_id = "0" * 32  # past its retention: the store no longer has it
    await staff.logbook.append(EntryType.RECEIVED, old_line("Et andet navn", stored_id, 901), author="hub")
    await staff.logbook.append(
        EntryType.RECEIVED, old_line("Plejecenter Lindely", gone_id, 902), author="hub"
    )
    await staff.logbook.append(EntryType.RECEIVED, old_line("Aarhus krisestab", gone_id, 903), author="hub")
    await staff.logbook.append(
        EntryType.RECEIVED, "ØVELSE: " + old_line("Plejecenter Lindely", gone_id, 904), author="hub"
    )

    without_hub = {h.seq for h in await witnessed_heads(staff.logbook, care_id)}
    assert not without_hub & {901, 902, 903, 904}  # nothing to tell whose they are
    with_hub = {h.seq for h in await witnessed_heads(staff.logbook, care_id, pair.staff.hub)}
    # by the stored message's sender (its logged name aside), then by the name the roster gives the node
    assert with_hub & {901, 902, 903, 904} == {901, 902, 904}
    other = pair.staff.hub.identity.node_id.hex()
    assert not {h.seq for h in await witnessed_heads(staff.logbook, other, pair.staff.hub)} & {901, 902, 904}
