"""What the console's JSON API reads from a request: its JSON object and whole-number query parameters.
Bad input is a ``ValueError`` with the words for the person, which the route guard answers with 400."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; anything else is a ``ValueError`` (400 at the route guard)."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # nested too deep: not a 500
        raise ValueError("body: ikke gyldig JSON") from None
    if not isinstance(body, dict):
        raise ValueError("body: forventede et JSON-objekt")
    return body


def int_param(request: web.Request, name: str, default: int | None) -> int | None:
    """A whole-number query parameter, ``default`` when absent."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}: forventede et helt tal, fik {raw!r}") from None
