"""The console's personal-data page (``/console/persondata``, coordinators only): the handlers behind it.

Search, export and erase for one person (``hub.console.subject_access``). Every request is a POST with the
term in its JSON body (and the session's CSRF token), so a name or a CPR number never stands in a URL, a
browser history or an access log.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from aiohttp import web

from hub.console import subject_access
from hub.console.service import Console
from hub.console.users import Session

PAGE = Path(__file__).resolve().parent / "static" / "persondata.html"
EXPORTS = {"json": "application/json", "csv": "text/csv"}


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-store"})


async def search(request: web.Request, console: Console, session: Session) -> web.Response:
    term, _ = await _body(request)
    findings = await subject_access.search(console, term)
    return web.json_response({"findings": [asdict(f) for f in findings]})


async def export(request: web.Request, console: Console, session: Session) -> web.Response:
    term, body = await _body(request)
    format_ = body.get("format", "json")
    if format_ not in EXPORTS:
        raise ValueError(f"format: expected one of {', '.join(EXPORTS)}")
    findings = await subject_access.search(console, term)
    text = subject_access.export_csv(findings) if format_ == "csv" else subject_access.export_json(findings)
    return web.Response(
        text=text,
        content_type=EXPORTS[format_],
        headers={
            "Content-Disposition": f'attachment; filename="persondata.{format_}"',
            "Cache-Control": "no-store",
        },
    )


async def erase(request: web.Request, console: Console, session: Session) -> web.Response:
    term, _ = await _body(request)
    erasure = await subject_access.erase(console, term, author=session.user.username)
    return web.json_response(asdict(erasure))


async def _body(request: web.Request) -> tuple[str, dict[str, object]]:
    """The term and the whole body; ``ValueError`` (answered 400) for anything else."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("body: not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("term"), str):
        raise ValueError('body: expected {"term": "name or CPR number"}')
    return body["term"], body
