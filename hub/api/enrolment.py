"""``POST /enrol``: a new node asks the hub holding the root key to enrol it (``beredt enrol --request``).

No token: the new node has none yet. The body is ``{"card": CARD, "signature": BASE64}``, the signature
made with the card's own key (``hub.relay.enrolment_requests``). It only puts the card on the list the
coordinator sees in the console; it trusts nothing. A hub without ``[trust] root_key`` answers 404.
"""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from hub.api.exercise_routes import HUB as HUB_KEY
from hub.core.errors import UsageError

MAX_REQUEST = 2048


async def enrol(request: web.Request) -> web.Response:
    requests = request.app[HUB_KEY].enrolment_requests
    if requests is None:
        return _answer(404, "denne hub godkender ikke tilmeldinger (den har ingen [trust] root_key)")
    if request.content_type != "application/json" or (request.content_length or 0) > MAX_REQUEST:
        return _answer(400, "forventede en lille JSON-anmodning fra 'beredt enrol --request'")
    try:
        body = json.loads(await request.read())
        card, signature = str(body["card"]), base64.b64decode(str(body["signature"]), validate=True)
        pending = requests.add(card, signature)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        return _answer(400, f"ikke en tilmeldingsanmodning: {exc}")
    except UsageError as exc:
        return _answer(400, str(exc))
    return web.json_response({"code": pending.code}, status=202)


def _answer(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
