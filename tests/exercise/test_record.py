"""The exercise journal: what the timeline and the after-action report read back, across a reopen."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from hub.core.at_rest import KEY_FOLDER, DataKeys
from hub.core.clock import ManualClock
from hub.core.errors import StoreError, UsageError
from hub.exercise.entries import Participant, State
from hub.exercise.record import NOTE_EXPIRED, ExerciseRecord


async def test_a_whole_exercise_is_read_back_after_a_reopen(tmp_path: Path) -> None:
    clock = ManualClock(1_800_000_000)
    path = tmp_path / "exercises.db"
    record = await ExerciseRecord.open(path, clock)
    try:
        ex = await record.begin(
            "Strømsvigt", 'name = "Strømsvigt"', [Participant("aa" * 8, "Solbakken")],
            coordinator="hansen", planned_end=clock.time() + 3600,
        )  # fmt: skip
        clock.advance(60)
        await record.inject_sent(ex.id, number=1, kind="message", text="Strømmen er gået", due=clock.time(),
                                 message_ids=["11" * 16], recipients=["aa" * 8])  # fmt: skip
        await record.outage_applied(ex.id, number=2, hub="Solbakken", link="internet",
                                    starts=clock.time(), ends=clock.time() + 1800)  # fmt: skip
        clock.advance(60)
        await record.pause(ex.id, by="hansen")
        clock.advance(300)
        await record.note(ex.id, author="observatør", text="  Solbakken svarede over LoRa  ")
        await record.resume(ex.id, by="hansen")
        clock.advance(100)
        ended = await record.end(ex.id, by="hansen")
    finally:
        await record.aclose()

    assert ended.state == State.ENDED and ended.ended == 1_800_000_520
    record = await ExerciseRecord.open(path, clock)
    try:
        (again,) = await record.exercises()
        assert again == ended and await record.active() is None
        assert [p.state for p in again.phases] == [State.RUNNING, State.PAUSED, State.RUNNING, State.ENDED]
        assert again.paused_seconds(clock.time()) == 300
        assert again.participants == (Participant("aa" * 8, "Solbakken"),)
        (inject,) = await record.injects(ex.id)
        assert inject.message_ids == ("11" * 16,) and inject.sent == 1_800_000_060
        (outage,) = await record.outages(ex.id)
        assert outage.lifted == 1_800_000_520  # ended before its planned end: undone then
        (note,) = await record.notes(ex.id)
        assert (note.author, note.text, note.time) == (
            "observatør",
            "Solbakken svarede over LoRa",
            1_800_000_420,
        )
    finally:
        await record.aclose()


async def test_wrong_moves_are_refused_and_change_nothing(tmp_path: Path) -> None:
    clock = ManualClock()
    record = await ExerciseRecord.open(tmp_path / "exercises.db", clock)
    try:
        ex = await record.begin("Øvelse", "", [], coordinator="hansen", planned_end=clock.time() + 60)
        with pytest.raises(UsageError, match="afslut den først"):
            await record.begin("Anden", "", [], coordinator="hansen", planned_end=clock.time() + 60)
        with pytest.raises(UsageError, match="kan ikke fortsætte"):
            await record.resume(ex.id, by="hansen")
        await record.inject_sent(ex.id, number=1, kind="message", text="x", due=clock.time())
        with pytest.raises(UsageError, match="allerede registreret"):
            await record.inject_sent(ex.id, number=1, kind="message", text="x", due=clock.time())
        with pytest.raises(UsageError, match="1 til 2000"):
            await record.note(ex.id, author="a", text="   ")
        with pytest.raises(UsageError, match="ingen øvelse"):
            await record.note("nope", author="a", text="x")
        await record.end(ex.id, by="hansen")
        with pytest.raises(UsageError, match="er afsluttet"):
            await record.pause(ex.id, by="hansen")
        assert len(await record.injects(ex.id)) == 1 and await record.notes(ex.id) == []
    finally:
        await record.aclose()


async def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="findes ikke"):
        await ExerciseRecord.open(tmp_path / "nope" / "exercises.db", ManualClock())


def _journal_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.glob("exercises.db*"))


def _note_in_clear(path: Path, exercise_id: str, at: float, text: str) -> None:
    """A note as a journal from before notes were sealed holds it."""
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO notes (exercise, time, author, text) VALUES (?, ?, ?, ?)",
                   (exercise_id, at, "observatør", text))  # fmt: skip
    db.close()


def _destroy_day_keys(folder: Path) -> None:
    keys = DataKeys(folder / KEY_FOLDER)
    for key in keys.held():
        keys.destroy(key)


async def test_an_observers_note_is_sealed_in_the_file_and_reads_as_expired_once_its_key_is_gone(
    tmp_path: Path,
) -> None:
    clock = ManualClock(1_800_000_000)
    path = tmp_path / "exercises.db"
    typed = "Fru Karen Jensen 010203-1234 blev glemt"
    record = await ExerciseRecord.open(path, clock)
    try:
        ex = await record.begin("Strømsvigt", "", [], coordinator="hansen", planned_end=clock.time() + 3600)
        await record.note(ex.id, author="observatør", text=typed)
        assert [n.text for n in await record.notes(ex.id)] == [typed]
    finally:
        await record.aclose()
    copied = await asyncio.to_thread(_journal_bytes, tmp_path)
    assert b"Karen Jensen" not in copied and b"010203" not in copied

    await asyncio.to_thread(_note_in_clear, path, ex.id, clock.time() + 1, "Ældre notat")
    record = await ExerciseRecord.open(path, clock)
    try:
        assert [n.text for n in await record.notes(ex.id)] == [typed, "Ældre notat"]
    finally:
        await record.aclose()

    await asyncio.to_thread(_destroy_day_keys, tmp_path)  # the end of the note's retention
    record = await ExerciseRecord.open(path, clock)
    try:
        assert [n.text for n in await record.notes(ex.id)] == [NOTE_EXPIRED, "Ældre notat"]
    finally:
        await record.aclose()
