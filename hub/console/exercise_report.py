"""The after-action report in the console: ``/console/api/exercise-report/{id}/rapport.html``.

The page, its PDF, charts and CSV files are written into ``reports/<id>/`` in the hub's data folder on the
first visit of the page, and again on each visit while the exercise is still running; once it has ended
the written report is served as it is. Drawing it takes a few seconds of CPU, so it runs in a thread, one
report at a time per console. Coordinators and viewers (observers) may read it, as they may the log book.
Without the optional ``report`` extra the page says in Danish how to install it.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from hub.core.errors import UsageError
from hub.exercise.record import ExerciseRecord
from hub.exercise.report import INSTALL_HINT, missing_libraries, write_report
from hub.exercise.report.collect import collect
from hub.exercise.report.from_record import EXERCISES_DB, exercise_facts, hub_facts

if TYPE_CHECKING:
    from hub.console.service import Console
    from hub.console.users import Session

REPORTS = "reports"
"""The folder in the hub's data folder that holds one folder of report files per exercise."""
EXERCISE_ID = re.compile(r"[0-9a-f]{8}")
REPORT_FILE = re.compile(r"rapport\.html|rapport\.pdf|report\.css|figurer/[a-z]+\.png|csv/[a-z_]+\.csv")
"""The only paths served: names the report itself writes, so no request reaches outside its folder."""

_locks: weakref.WeakKeyDictionary[Console, asyncio.Lock] = weakref.WeakKeyDictionary()


async def report_file(request: web.Request, console: Console, session: Session) -> web.StreamResponse:
    exercise_id, name = request.match_info["id"], request.match_info["file"]
    if not EXERCISE_ID.fullmatch(exercise_id) or not REPORT_FILE.fullmatch(name):
        raise web.HTTPNotFound()
    folder = console.hub.config.data_dir / REPORTS / exercise_id
    if name == "rapport.html" or not (folder / name).is_file():
        missing = missing_libraries()
        if missing:
            return web.Response(
                status=503,
                text=f"Evalueringsrapporten kan ikke dannes på denne hub: {', '.join(missing)} mangler."
                f" Installér med: {INSTALL_HINT}",
            )
        try:
            await _write(console, exercise_id, folder, fresh=name == "rapport.html")
        except UsageError as exc:
            raise web.HTTPNotFound(text=str(exc)) from exc
    if not (folder / name).is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(folder / name, headers={"Cache-Control": "no-store"})


async def _write(console: Console, exercise_id: str, folder: Path, *, fresh: bool) -> None:
    """Write the report unless an ended exercise's report is there already."""
    lock = _locks.setdefault(console, asyncio.Lock())
    async with lock:
        hub = console.hub
        record = await ExerciseRecord.open(hub.config.data_dir / EXERCISES_DB, hub.clock)
        try:
            exercise, participants = await exercise_facts(record, exercise_id)
        finally:
            await record.aclose()
        if (folder / "rapport.html").is_file() and (exercise.ended is not None or not fresh):
            return
        names = {entry.node_id.hex(): entry.name for entry in hub.roster} | participants
        facts, now = hub_facts(hub.config, names, hub.open_payload), hub.clock.time()
        await asyncio.to_thread(
            lambda: write_report(collect(exercise, facts, now=now), folder, generated=now)
        )
