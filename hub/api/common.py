"""What every ``/v1`` handler shares: the application key under which it finds the hub, and the shape of an
error (a stable English code for programs beside a Danish text for people)."""

from __future__ import annotations

from aiohttp import web

from hub.relay.hub import Hub

HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)


def api_error(status: int, code: str, message: str) -> web.Response:
    """An error for a program (``code``: stable, English) and for a person (``error``: Danish)."""
    return web.json_response({"code": code, "error": message}, status=status)
