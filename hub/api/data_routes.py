"""``/v1/data``: subject access and erasure (``hub.console.subject_access``), as ``beredt data`` uses them;
and the log-book heads this hub witnessed for another, as ``beredt log verify --witness`` fetches them.

    POST /v1/data/search   {"term": "Jens Hansen"}                 → {"findings": [...]}
    POST /v1/data/erase    {"term": "010203-1234", "by": "hansen"}  → {"messages": n, "sent": n, ...}
    GET /v1/logbook/witnessed/{node}  → {"heads": [{"seq": n, "hash": hex, "witness": id, "entry": n, ...}]}

``witness`` is this hub's node id (whose book records the head), ``entry`` the entry that records it.

POST, not GET, so that a name or a CPR number never stands in a URL or an access log. Admin scope on the
network port (the CLI socket is the machine's own). A term shorter than three characters answers 400.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from aiohttp import web

from hub.api.common import api_error
from hub.console import subject_access
from hub.console.logbook_upkeep import witnessed_heads
from hub.console.routes import CONSOLE_KEY, console_status


async def data_search(request: web.Request) -> web.Response:
    if CONSOLE_KEY not in request.app:
        return _unavailable(request)
    term, _, problem = await _body(request)
    if problem is not None:
        return problem
    try:
        findings = await subject_access.search(request.app[CONSOLE_KEY], term)
    except ValueError as exc:
        return api_error(400, "bad_term", str(exc))
    return web.json_response({"findings": [asdict(f) for f in findings]})


async def data_erase(request: web.Request) -> web.Response:
    if CONSOLE_KEY not in request.app:
        return _unavailable(request)
    term, by, problem = await _body(request)
    if problem is not None:
        return problem
    try:
        erasure = await subject_access.erase(request.app[CONSOLE_KEY], term, author=by)
    except ValueError as exc:
        return api_error(400, "bad_term", str(exc))
    return web.json_response(asdict(erasure))


async def logbook_witnessed(request: web.Request) -> web.Response:
    """The heads of another hub's log book that this hub's log book records it received, oldest first."""
    if CONSOLE_KEY not in request.app:
        why = console_status(request.app)
        return api_error(503, "console_unavailable", f"Logbogen kræver konsollen, som ikke kører ({why})")
    node = request.match_info["node"].lower()
    if len(node) != 16 or any(c not in "0123456789abcdef" for c in node):
        return api_error(400, "bad_node", "node: forventede et node-id på 16 hextegn")
    console = request.app[CONSOLE_KEY]
    heads = await witnessed_heads(console.logbook, node, console.hub)
    return web.json_response({"heads": [asdict(head) for head in heads]})


async def _body(request: web.Request) -> tuple[str, str, web.Response | None]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "", "", api_error(400, "bad_json", "Indholdet er ikke gyldig JSON")
    if not isinstance(body, dict) or not isinstance(body.get("term"), str):
        return "", "", api_error(400, "bad_body", 'Forventede {"term": "navn eller CPR-nummer"}')
    by = body.get("by") or "api"
    if not isinstance(by, str) or len(by) > 60:
        return "", "", api_error(400, "bad_body", "by: et navn på højst 60 tegn")
    return body["term"], by, None


def _unavailable(request: web.Request) -> web.Response:
    why = console_status(request.app)
    return api_error(
        503, "console_unavailable", f"Søgning og sletning kræver konsollen, som ikke kører ({why})"
    )
