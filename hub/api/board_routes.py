"""``/v1/board`` and ``/v1/rollcalls``: the console's status board and roll-calls for ``beredt board``,
``beredt rollcall`` and local apps; they live in the console, so without it they answer 503 and say why."""

from __future__ import annotations

import json

from aiohttp import web

from hub.api.common import api_error
from hub.console.routes import CONSOLE_KEY, console_status


def _console_unavailable(request: web.Request) -> web.Response:
    return api_error(
        503, "console_unavailable",
        f"Statustavle og statusrunder bor i konsollen, som ikke kører ({console_status(request.app)})",
    )  # fmt: skip


async def board(request: web.Request) -> web.Response:
    """The status board of institutions, as the console shows it (for `beredt board` and local apps)."""
    if CONSOLE_KEY not in request.app:
        return _console_unavailable(request)
    return web.json_response({"institutions": request.app[CONSOLE_KEY].board_rows()})


async def rollcalls(request: web.Request) -> web.Response:
    if CONSOLE_KEY not in request.app:
        return _console_unavailable(request)
    return web.json_response({"rollcalls": request.app[CONSOLE_KEY].rollcalls.summary()})


async def start_rollcall(request: web.Request) -> web.Response:
    """Ask institutions to report status by a deadline; overdue ones are re-sent to, then escalated."""
    if CONSOLE_KEY not in request.app:
        return _console_unavailable(request)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return api_error(400, "invalid_json", f"Indholdet er ikke gyldig JSON: {exc}")
    if not isinstance(body, dict):
        return api_error(
            400,
            "invalid_request",
            'Indholdet skal være {"question": ..., "minutes": ..., "institutions": [...]}',
        )
    question = body.get("question") or "Meld status"
    minutes = body.get("minutes", 30)
    institutions = body.get("institutions") or []
    if not isinstance(question, str) or len(question.encode()) > 200:
        return api_error(400, "invalid_request", "question: forventede tekst på højst 200 bytes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 24 * 60:
        return api_error(400, "invalid_request", "minutes: forventede et helt antal minutter fra 1 til 1440")
    if not isinstance(institutions, list) or not all(isinstance(i, str) for i in institutions):
        return api_error(400, "invalid_request", "institutions: forventede en liste af node-id'er")
    try:
        request_id = await request.app[CONSOLE_KEY].start_rollcall(
            question, minutes, institutions, author="api"
        )
    except ValueError as exc:
        return api_error(422, "rollcall_refused", str(exc))
    return web.json_response({"request": request_id}, status=202)
