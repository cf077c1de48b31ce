"""The exercise journal at the coordinator's hub: what was planned, what was sent and what was seen.

The after-action report and the live timeline read an exercise back from here; the hub's own stores hold
the messages themselves (every one carries CAP status Exercise), joined by the message ids kept here.
One SQLite database (``exercises.db`` in the data folder), written only by the coordinator's hub::

    record = await ExerciseRecord.open(path, clock)
    ex = await record.begin(name, scenario_text, participants, coordinator="hansen", planned_end=t)
    await record.inject_sent(ex.id, number=1, kind="message", text="...", due=t0, message_ids=["ab12.."])
    await record.outage_applied(ex.id, number=3, hub="Solbakken", link="internet", starts=t1, ends=t2)
    await record.note(ex.id, author="observatør", text="Solbakken svarede over LoRa")
    await record.pause(ex.id, by="hansen"); await record.resume(ex.id, by="hansen")
    await record.end(ex.id, by="hansen")
    await record.exercise(ex.id) -> Exercise      # state, times, participants, pauses
    await record.injects(ex.id), record.outages(ex.id), record.notes(ex.id)

Times are Unix seconds (people see them in Danish local time). The scenario's TOML text is kept as it was
started, so the targets it measures against cannot drift from what ran. Rows are only added, never
changed, except that an exercise's end and an outage's lifting are written once, when they happen.
At most one exercise is active (running or paused) at a time; ``begin`` refuses a second. What it hands
back (``Exercise``, ``InjectSent``, ...) is defined in ``hub.exercise.entries``.

An observer's note is typed words that may name a person, so its text is sealed under the day key (the
key folder beside the journal, ``hub.core.at_rest``), as the console seals its records: a copied
``exercises.db`` reads none of it, and once the day key is destroyed at the end of its retention the note
reads as ``NOTE_EXPIRED``. A note written in clear by an older version is read as it is.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from hub.core.at_rest import DEFAULT_RETENTION_DAYS, KEY_FOLDER, DataKeys, DocumentSealer
from hub.core.clock import Clock
from hub.core.errors import StoreError, UsageError
from hub.exercise.entries import (
    CHANGE_DA,
    STATE_DA,
    Exercise,
    InjectSent,
    Note,
    OutageApplied,
    Participant,
    Phase,
    State,
)

MAX_NOTE = 2000
MAX_NOTES = 5000
"""Notes per exercise: observers type, they do not flood; the cap keeps a runaway script bounded."""
NOTE_EXPIRED = "(notatet er slettet: opbevaringstiden er udløbet)"
"""In place of a note whose day key was destroyed."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS exercises (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    scenario TEXT NOT NULL,
    coordinator TEXT NOT NULL,
    started INTEGER NOT NULL,
    planned_end INTEGER NOT NULL,
    ended INTEGER
);
CREATE TABLE IF NOT EXISTS participants (
    exercise TEXT NOT NULL REFERENCES exercises(id),
    node TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (exercise, node)
);
CREATE TABLE IF NOT EXISTS phases (
    exercise TEXT NOT NULL REFERENCES exercises(id),
    time INTEGER NOT NULL,
    state TEXT NOT NULL,
    author TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS injects (
    exercise TEXT NOT NULL REFERENCES exercises(id),
    number INTEGER NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    due INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    message_ids TEXT NOT NULL,
    recipients TEXT NOT NULL,
    PRIMARY KEY (exercise, number)
);
CREATE TABLE IF NOT EXISTS outages (
    exercise TEXT NOT NULL REFERENCES exercises(id),
    number INTEGER NOT NULL,
    hub TEXT NOT NULL,
    link TEXT NOT NULL,
    starts INTEGER NOT NULL,
    ends INTEGER NOT NULL,
    lifted INTEGER,
    PRIMARY KEY (exercise, number)
);
CREATE TABLE IF NOT EXISTS notes (
    exercise TEXT NOT NULL REFERENCES exercises(id),
    time INTEGER NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL
);
"""


class ExerciseRecord:
    """The journal; one writer at a time through a lock, each call committed when it returns."""

    def __init__(self, db: aiosqlite.Connection, clock: Clock, sealer: DocumentSealer) -> None:
        self._db = db
        self._clock = clock
        self._sealer = sealer
        self._lock = asyncio.Lock()

    @classmethod
    async def open(
        cls, path: Path | str, clock: Clock, *, keep_days: int = DEFAULT_RETENTION_DAYS
    ) -> ExerciseRecord:
        """Open (creating if needed) the journal at ``path``, its notes sealed with the day keys in the key
        folder beside it and kept ``keep_days`` (the hub's ``[retention] days``); ``aclose`` closes it."""
        if not Path(path).parent.is_dir():
            raise StoreError(f"kan ikke åbne øvelsesjournalen {path}: mappen {Path(path).parent} findes ikke")
        try:
            db = await aiosqlite.connect(path)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.executescript(_SCHEMA)
            await db.commit()
        except Exception as exc:
            raise StoreError(f"kan ikke åbne øvelsesjournalen {path}: {exc}") from exc
        keys = DataKeys(Path(path).parent / KEY_FOLDER)
        return cls(db, clock, DocumentSealer(keys, keep_days, clock.time))

    async def aclose(self) -> None:
        await self._db.close()

    # -- writing --------------------------------------------------------------------------------------

    async def begin(
        self,
        name: str,
        scenario: str,
        participants: Sequence[Participant],
        *,
        coordinator: str,
        planned_end: float,
    ) -> Exercise:
        """Record a new running exercise; ``UsageError`` while another one is running or paused."""
        active = await self.active()
        if active is not None:
            raise UsageError(
                f"øvelsen {active.name!r} ({active.id}) er {STATE_DA[active.state]}; afslut den først"
            )
        exercise_id = secrets.token_hex(4)
        now = int(self._clock.time())
        await self._write(
            [
                ("INSERT INTO exercises (id, name, scenario, coordinator, started, planned_end) "
                 "VALUES (?,?,?,?,?,?)", (exercise_id, name, scenario, coordinator, now, int(planned_end))),
                *(("INSERT INTO participants (exercise, node, name) VALUES (?,?,?)",
                   (exercise_id, p.node, p.name)) for p in participants),
                ("INSERT INTO phases (exercise, time, state, author) VALUES (?,?,?,?)",
                 (exercise_id, now, State.RUNNING.value, coordinator)),
            ]
        )  # fmt: skip
        exercise = await self.exercise(exercise_id)
        assert exercise is not None
        return exercise

    async def pause(self, exercise_id: str, *, by: str) -> Exercise:
        return await self._change(exercise_id, State.PAUSED, by, allowed_from=State.RUNNING)

    async def resume(self, exercise_id: str, *, by: str) -> Exercise:
        return await self._change(exercise_id, State.RUNNING, by, allowed_from=State.PAUSED)

    async def end(self, exercise_id: str, *, by: str) -> Exercise:
        """End a running or paused exercise, and mark every outage still in force as lifted now."""
        return await self._change(exercise_id, State.ENDED, by, allowed_from=None)

    async def inject_sent(
        self,
        exercise_id: str,
        *,
        number: int,
        kind: str,
        text: str,
        due: float,
        message_ids: Sequence[str] = (),
        recipients: Sequence[str] = (),
    ) -> InjectSent:
        """Record that inject ``number`` went out now (once per inject: a second call is refused)."""
        sent = int(self._clock.time())
        row = InjectSent(number, kind, text, int(due), sent, tuple(message_ids), tuple(recipients))
        await self._write(
            [("INSERT INTO injects (exercise, number, kind, text, due, sent, message_ids, recipients) "
              "VALUES (?,?,?,?,?,?,?,?)",
              (exercise_id, number, kind, text, row.due, sent, json.dumps(row.message_ids),
               json.dumps(row.recipients)))]
        )  # fmt: skip
        return row

    async def outage_applied(
        self, exercise_id: str, *, number: int, hub: str, link: str, starts: float, ends: float
    ) -> OutageApplied:
        """Record a simulated outage of ``link`` at ``hub`` from ``starts`` to ``ends``."""
        row = OutageApplied(number, hub, link, int(starts), int(ends), None)
        await self._write(
            [("INSERT INTO outages (exercise, number, hub, link, starts, ends) VALUES (?,?,?,?,?,?)",
              (exercise_id, number, hub, link, row.starts, row.ends))]
        )  # fmt: skip
        return row

    async def note(self, exercise_id: str, *, author: str, text: str) -> Note:
        """An observer's note, stamped now; ``UsageError`` for an empty or too long one."""
        text = text.strip()
        if not text or len(text) > MAX_NOTE:
            raise UsageError(f"et notat er 1 til {MAX_NOTE} tegn, ikke {len(text)}")
        if await self._exercise_row(exercise_id) is None:
            raise UsageError(f"ingen øvelse {exercise_id!r}")
        async with self._db.execute("SELECT COUNT(*) FROM notes WHERE exercise = ?", (exercise_id,)) as cur:
            (count,) = await cur.fetchone() or (0,)
        if count >= MAX_NOTES:
            raise UsageError(f"øvelsen har allerede {MAX_NOTES} notater")
        row = Note(int(self._clock.time()), author, text)
        sealed = await asyncio.to_thread(self._sealer.seal, text, _note_place(exercise_id))
        await self._write(
            [("INSERT INTO notes (exercise, time, author, text) VALUES (?,?,?,?)",
              (exercise_id, row.time, author, sealed))]
        )  # fmt: skip
        return row

    # -- reading --------------------------------------------------------------------------------------

    async def exercise(self, exercise_id: str) -> Exercise | None:
        row = await self._exercise_row(exercise_id)
        if row is None:
            return None
        async with self._db.execute(
            "SELECT node, name FROM participants WHERE exercise = ? ORDER BY name", (exercise_id,)
        ) as cur:
            participants = tuple(Participant(str(n), str(m)) for n, m in await cur.fetchall())
        async with self._db.execute(
            "SELECT time, state, author FROM phases WHERE exercise = ? ORDER BY rowid", (exercise_id,)
        ) as cur:
            phases = tuple(Phase(int(t), State(s), str(a)) for t, s, a in await cur.fetchall())
        id_, name, scenario, coordinator, started, planned_end, ended = row
        return Exercise(
            str(id_), str(name), str(scenario), str(coordinator), int(started), int(planned_end),
            None if ended is None else int(ended), participants, phases,
        )  # fmt: skip

    async def exercises(self) -> list[Exercise]:
        """Every exercise recorded, newest first."""
        async with self._db.execute("SELECT id FROM exercises ORDER BY started DESC, rowid DESC") as cur:
            ids = [str(r[0]) for r in await cur.fetchall()]
        found = [await self.exercise(i) for i in ids]
        return [e for e in found if e is not None]

    async def active(self) -> Exercise | None:
        """The exercise that is running or paused, if any."""
        async with self._db.execute("SELECT id FROM exercises WHERE ended IS NULL LIMIT 1") as cur:
            row = await cur.fetchone()
        return None if row is None else await self.exercise(str(row[0]))

    async def injects(self, exercise_id: str) -> list[InjectSent]:
        """The injects sent, in the order they went out."""
        async with self._db.execute(
            "SELECT number, kind, text, due, sent, message_ids, recipients FROM injects "
            "WHERE exercise = ? ORDER BY sent, number",
            (exercise_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [InjectSent(int(n), str(k), str(t), int(d), int(s), tuple(json.loads(m)), tuple(json.loads(r)))
                for n, k, t, d, s, m, r in rows]  # fmt: skip

    async def outages(self, exercise_id: str) -> list[OutageApplied]:
        async with self._db.execute(
            "SELECT number, hub, link, starts, ends, lifted FROM outages WHERE exercise = ? ORDER BY starts",
            (exercise_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [OutageApplied(int(n), str(h), str(k), int(s), int(e), None if x is None else int(x))
                for n, h, k, s, e, x in rows]  # fmt: skip

    async def notes(self, exercise_id: str) -> list[Note]:
        async with self._db.execute(
            "SELECT time, author, text FROM notes WHERE exercise = ? ORDER BY time, rowid", (exercise_id,)
        ) as cur:
            rows = await cur.fetchall()
        place = _note_place(exercise_id)
        return [Note(int(t), str(a), self._note_text(x, place)) for t, a, x in rows]

    def _note_text(self, stored: object, place: str) -> str:
        if not isinstance(stored, bytes):  # written in clear before notes were sealed
            return str(stored)
        text = self._sealer.open(stored, place)
        return NOTE_EXPIRED if text is None else str(text)

    # -- internals ------------------------------------------------------------------------------------

    async def _exercise_row(self, exercise_id: str) -> aiosqlite.Row | None:
        async with self._db.execute(
            "SELECT id, name, scenario, coordinator, started, planned_end, ended FROM exercises WHERE id = ?",
            (exercise_id,),
        ) as cur:
            return await cur.fetchone()

    async def _change(
        self, exercise_id: str, state: State, by: str, *, allowed_from: State | None
    ) -> Exercise:
        exercise = await self.exercise(exercise_id)
        if exercise is None:
            raise UsageError(f"ingen øvelse {exercise_id!r}")
        if exercise.state == State.ENDED or (allowed_from is not None and exercise.state != allowed_from):
            raise UsageError(
                f"øvelsen {exercise.name!r} er {STATE_DA[exercise.state]}; den kan ikke {CHANGE_DA[state]} nu"
            )
        now = int(self._clock.time())
        statements: list[tuple[str, tuple[object, ...]]] = [
            ("INSERT INTO phases (exercise, time, state, author) VALUES (?,?,?,?)",
             (exercise_id, now, state.value, by)),
        ]  # fmt: skip
        if state == State.ENDED:
            statements += [
                ("UPDATE exercises SET ended = ? WHERE id = ?", (now, exercise_id)),
                ("UPDATE outages SET lifted = ? WHERE exercise = ? AND lifted IS NULL AND ends > ?",
                 (now, exercise_id, now)),
            ]  # fmt: skip
        await self._write(statements)
        changed = await self.exercise(exercise_id)
        assert changed is not None
        return changed

    async def _write(self, statements: Sequence[tuple[str, Sequence[object]]]) -> None:
        async with self._lock:
            try:
                for sql, params in statements:
                    await self._db.execute(sql, params)
                await self._db.commit()
            except aiosqlite.IntegrityError as exc:
                await self._db.rollback()
                raise UsageError(f"allerede registreret: {exc}") from exc
            except aiosqlite.Error as exc:
                await self._db.rollback()
                raise StoreError(f"øvelsesjournalen kunne ikke skrives: {exc}") from exc


def _note_place(exercise_id: str) -> str:
    """What a note's sealed text is bound to: its exercise (a note cannot be moved to another one)."""
    return f"exercise_note:{exercise_id}"
