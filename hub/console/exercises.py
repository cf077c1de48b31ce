"""The exercise page and banner: run an exercise from the console, follow its timeline, add notes.

The runner (``hub.exercise.runner``) and its journal (``exercises.db`` in the data folder) live with the
web application, beside the console, so the CLI's ``/v1/exercise`` routes and the console drive the same
exercise. Every hub shows the banner of the exercise it takes part in (``Hub.exercise``); the coordinator's
hub also has the timeline: starts, pauses and ends, injects as sent, outages, observers' notes, and the
answers that came back marked Exercise, newest first.

Roles: a coordinator starts, pauses, resumes and ends; a coordinator or a viewer (an observer) adds notes;
everyone logged in sees the banner and the timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from hub.console.messages import decode_message, local_zone, summary
from hub.core.errors import BeredtError, ConfigError, StoreError, UsageError
from hub.core.frame import Status
from hub.core.tasks import cancel_and_wait, supervised
from hub.exercise.entries import Exercise
from hub.exercise.record import ExerciseRecord
from hub.exercise.runner import ExerciseRunner
from hub.exercise.summary import send_forever
from hub.relay.hub import Hub

log = logging.getLogger("beredt.console")

EXERCISE_KEY: web.AppKey[ExerciseRunner] = web.AppKey("exercise", ExerciseRunner)
EXERCISES_DB = "exercises.db"
TIMELINE_ANSWERS = 500
"""Answers read back for one timeline: enough for a day's exercise, bounded for a long one."""
MAX_SCENARIO = 60_000
"""Characters of scenario TOML accepted from a browser or the CLI (the sample is under 3,000)."""

PHASES_DA = {"running": "Øvelsen kører", "paused": "Øvelsen er sat på pause", "ended": "Øvelsen er slut"}


def lifecycle(hub: Hub) -> Callable[[web.Application], contextlib.AbstractAsyncContextManager[None]]:
    """An aiohttp cleanup context: open the journal, pick up a running exercise, run the injects; and
    send the coordinator of each exercise this hub takes part in its own account of it."""

    @contextlib.asynccontextmanager
    async def running(app: web.Application) -> AsyncIterator[None]:
        summaries = asyncio.create_task(
            supervised("exercise summaries", lambda: send_forever(hub)), name="exercise-summaries"
        )
        try:
            async with _runner(app):
                yield
        finally:
            await cancel_and_wait(summaries)

    @contextlib.asynccontextmanager
    async def _runner(app: web.Application) -> AsyncIterator[None]:
        try:
            record = await ExerciseRecord.open(
                hub.config.data_dir / EXERCISES_DB, hub.clock, keep_days=hub.config.retention.days
            )
        except StoreError as exc:  # the relay matters more than its exercises: they alone are off
            log.critical("exercises are unavailable, the hub relays on: %s", exc)
            yield
            return
        try:
            runner = ExerciseRunner(hub, record, local_zone())
            await runner.restore()
            app[EXERCISE_KEY] = runner
            task = asyncio.create_task(supervised("exercise runner", runner.run_forever), name="exercise")
            try:
                yield
            finally:
                await cancel_and_wait(task)
        finally:
            await record.aclose()

    def context(app: web.Application) -> contextlib.AbstractAsyncContextManager[None]:
        return running(app)

    return context


async def state(hub: Hub, runner: ExerciseRunner, exercise_id: str | None = None) -> dict[str, Any]:
    """The banner, the exercise shown (``exercise_id``, else the current one, else the latest) with its
    timeline, the current one, and the exercises on record."""
    current = runner.current
    past = await runner.record.exercises()
    # without an id: the exercise running now, else the latest one, for its evaluation
    chosen = await runner.record.exercise(exercise_id) if exercise_id else current or next(iter(past), None)
    if exercise_id and chosen is None:
        raise UsageError(f"ingen øvelse {exercise_id!r}")
    return {
        "banner": hub.exercise.active.view() if hub.exercise.active else None,
        "current": _exercise_view(current) if current else None,
        "shown": _exercise_view(chosen) if chosen else None,
        "timeline": await timeline(hub, runner, chosen) if chosen else [],
        "upcoming": runner.upcoming()
        if current is not None and chosen is not None and chosen.id == current.id
        else [],
        "exercises": [
            {"id": e.id, "name": e.name, "started": e.started, "ended": e.ended} for e in past[:50]
        ],
    }


def _exercise_view(exercise: Exercise) -> dict[str, Any]:
    return {"id": exercise.id, "name": exercise.name, "state": exercise.state.value,
            "coordinator": exercise.coordinator, "started": exercise.started,
            "planned_end": exercise.planned_end, "ended": exercise.ended,
            "participants": [{"node": p.node, "name": p.name} for p in exercise.participants]}  # fmt: skip


async def timeline(hub: Hub, runner: ExerciseRunner, exercise: Exercise) -> list[dict[str, Any]]:
    """What happened in ``exercise``, newest first: each item has time, type, text and author."""
    items: list[dict[str, Any]] = [
        {"time": p.time, "type": "phase", "text": PHASES_DA[p.state.value], "author": p.author}
        for p in exercise.phases
    ]
    for inject in await runner.record.injects(exercise.id):
        count = len(inject.message_ids)
        sent = f" (sendt til {count})" if count else ""
        label = {"message": "Besked", "rollcall": "Statusrunde"}.get(inject.kind, "")
        text = f"{label}: {inject.text}" if label else inject.text
        items.append({"time": inject.sent, "type": "inject", "text": f"Indspil {inject.number}. {text}{sent}",
                      "author": "øvelsen"})  # fmt: skip
    for note in await runner.record.notes(exercise.id):
        items.append({"time": note.time, "type": "note", "text": note.text, "author": note.author})
    end = exercise.ended or hub.clock.time() + 1
    for message in await hub.store.inbox(limit=TIMELINE_ANSWERS, since=exercise.started - 1):
        if message.accepted_at > end:
            continue
        item = decode_message(hub, message)
        if item.get("status") != Status.EXERCISE.name.lower():
            continue
        text = f"Svar fra {item['from_name']}: {summary(item)}".rstrip(": ")
        items.append(
            {"time": int(message.accepted_at), "type": "answer", "text": text, "author": item["from_name"]}
        )
    return sorted(items, key=lambda i: i["time"], reverse=True)


async def act(runner: ExerciseRunner, action: str, body: dict[str, Any], author: str) -> Exercise | None:
    """Carry out ``action`` (start, pause, resume, end, note, collect) for ``author``; ``UsageError`` or
    ``ConfigError`` say what is wrong with the request."""
    match action:
        case "start":
            scenario = body.get("scenario")
            if not isinstance(scenario, str) or not scenario.strip() or len(scenario) > MAX_SCENARIO:
                raise UsageError(f"scenario: forventede scenariets TOML-tekst, højst {MAX_SCENARIO} tegn")
            return await runner.start(scenario, by=author, file=str(body.get("file") or "scenario"))
        case "pause":
            return await runner.pause(by=author)
        case "resume":
            return await runner.resume(by=author)
        case "end":
            return await runner.end(by=author)
        case "note":
            text, exercise = body.get("text"), body.get("exercise")
            if not isinstance(text, str) or (exercise is not None and not isinstance(exercise, str)):
                raise UsageError('body skal være {"text": "...", "exercise": "<id, valgfri>"}')
            await runner.note(text, author=author, exercise_id=exercise)
            return None
        case "collect":
            exercise = body.get("exercise")
            if exercise is not None and not isinstance(exercise, str):
                raise UsageError('body skal være {"exercise": "<id, valgfri>"}')
            await runner.ask_for_summaries(exercise)
            return None
    raise UsageError(f"ukendt handling {action!r}")


def unavailable() -> str:
    return "øvelser er ikke til rådighed på denne hub (øvelsesjournalen kunne ikke åbnes; se hubbens log)"


def error_status(exc: BeredtError) -> int:
    """HTTP status for a refused exercise request: the request's fault (400/409), or the hub's (503)."""
    if isinstance(exc, ConfigError):
        return 400
    if isinstance(exc, UsageError):
        return 409
    return 503
