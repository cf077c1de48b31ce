"""A roll-call's question and an alert's headline are typed words that may name a person: both log books,
the sender's and the recipient's, record a reference to them, kept beside the chain like a typed note,
and the console shows the words while they are held."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hub.console.logbook import EntryType, LogBook
from hub.core.clock import ManualClock
from hub.core.frame import Kind
from tests.console.conftest import Pair

QUESTION = "Er hr. Jensen fra stue 4 kommet med?"
HEADLINE = "Eftersøgning: Karl Holm, 84 år"


async def entries_naming(book: LogBook, words: str) -> list[str]:
    return [e.text for e in await book.entries() if words in e.text]


async def test_a_question_and_a_headline_stay_beside_both_books(pair: Pair) -> None:
    staff, care = pair.staff.console, pair.care.console
    care_id = pair.care.hub.identity.node_id.hex()
    await staff.start_rollcall(QUESTION, 30, [care_id], author="hansen")
    alert = {"event": "Savnet person", "urgency": "Immediate", "severity": "Severe", "certainty": "Observed",
             "headline": HEADLINE}  # fmt: skip
    await staff.send(Kind.ALERT, bytes.fromhex(care_id), alert, author="hansen")

    async def received() -> list[str]:
        return [e.text for e in await care.logbook.entries() if e.type is EntryType.RECEIVED]

    deadline = asyncio.get_running_loop().time() + 30
    while not any("Savnet person" in t for t in await received()) or not any(
        "statusrunde" in t for t in await received()
    ):
        assert asyncio.get_running_loop().time() < deadline, await received()
        await asyncio.sleep(0.1)
    for book in (staff.logbook, care.logbook):
        assert not await entries_naming(book, "Jensen") and not await entries_naming(book, "Holm")
        shown = {view["note"] for view in await book.views(await book.entries())}
        assert QUESTION in shown  # the console shows the words while they are held
    assert HEADLINE in {view["note"] for view in await care.logbook.views(await care.logbook.entries())}
    assert await staff.logbook.verify() is None and await care.logbook.verify() is None


async def test_words_kept_while_entries_are_appended_break_no_append(tmp_path: Path) -> None:
    """Received messages' typed words are kept while a person's entries are written: a note's insert
    opened a transaction on the book's connection that an append then could not begin ("cannot start a
    transaction within a transaction", or "Safety level may not be changed" for a received entry's
    NORMAL sync), and the console refused the person's status with "hubbens lager svigtede"."""
    book = await LogBook.open(tmp_path / "console.db", ManualClock(), "a1b2c3d4e5f60718")
    try:
        words = [f"Borger nr. {n} hentet" for n in range(20)]
        kept, *_ = await asyncio.gather(
            asyncio.gather(*(book.notes.keep(w) for w in words)),
            *(book.append(EntryType.SENT, f"Status til staben {n}", author="lindely") for n in range(20)),
            *(book.append_many([(EntryType.RECEIVED, f"Besked {n}", "")], durable=False) for n in range(20)),
        )
        entries = await book.entries()
        assert len([e for e in entries if e.type is EntryType.SENT]) == 20 and len(entries) == 40
        assert await book.verify() is None
        held = await book.notes.held(kept)
        assert sorted(held.values()) == sorted(words)
    finally:
        await book.aclose()
