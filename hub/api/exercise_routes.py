"""``/v1/exercise``: how the CLI (``beredt exercise ...``) runs the exercise the console runs.

    GET  /v1/exercise              banner, current exercise, timeline, upcoming injects (?id= a past one)
    POST /v1/exercise/start        {"scenario": "<TOML text>", "file": "name.toml", "by": "hansen"}
    POST /v1/exercise/pause        {"by": "..."}      (also resume, end)
    POST /v1/exercise/collect      {"exercise": "<id, optional>"}  every hub sends its own account
    POST /v1/exercise/note         {"text": "...", "by": "...", "exercise": "<id, optional>"}

``by`` names the person for the journal and the log book ("api" when left out). A broken scenario answers
400 with the key and the fix, a request that does not fit the exercise's state 409; every error is
``{"code": "...", "error": "..."}`` like the other /v1 routes.
"""

from __future__ import annotations

import json

from aiohttp import web

from hub.api.common import HUB, api_error
from hub.console import exercises
from hub.console.exercises import EXERCISE_KEY
from hub.console.logbook import EXERCISE_MARK, EntryType
from hub.console.routes import CONSOLE_KEY
from hub.core.errors import BeredtError, UsageError


async def exercise_state(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    if EXERCISE_KEY not in request.app:
        return api_error(503, "unavailable", exercises.unavailable())
    try:
        view = await exercises.state(hub, request.app[EXERCISE_KEY], request.query.get("id"))
    except UsageError as exc:
        return api_error(404, "not-found", str(exc))
    return web.json_response(view)


async def exercise_action(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    if EXERCISE_KEY not in request.app:
        return api_error(503, "unavailable", exercises.unavailable())
    runner = request.app[EXERCISE_KEY]
    try:
        body = await request.json() if request.body_exists else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return api_error(400, "bad-json", f"Indholdet er ikke gyldig JSON: {exc}")
    if not isinstance(body, dict):
        return api_error(400, "bad-body", "Indholdet skal være et JSON-objekt")
    by = body.get("by") or "api"
    if not isinstance(by, str) or len(by) > 60:
        return api_error(400, "bad-body", "by: forventede et navn på højst 60 tegn")
    try:
        exercise = await exercises.act(runner, request.match_info["action"], body, by)
    except BeredtError as exc:
        status = exercises.error_status(exc)
        return api_error(status, {400: "bad-scenario", 409: "conflict"}.get(status, "unavailable"), str(exc))
    if exercise is not None and CONSOLE_KEY in request.app:
        console = request.app[CONSOLE_KEY]
        text = f"{exercises.PHASES_DA[exercise.state.value]}: {exercise.name} ({exercise.id})"
        await console.note(EntryType.ACTION, EXERCISE_MARK + text, author=by)
        console.emit("exercise")
    return web.json_response(await exercises.state(hub, runner, exercise.id if exercise else None))
