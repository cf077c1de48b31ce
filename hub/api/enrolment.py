"""``POST /enrol``: a new node asks the hub holding the root key to enrol it (``beredt enrol --request``).

No token: the new node has none yet. The body is ``{"card": CARD, "signature": BASE64}``, the signature
made with the card's own key (``hub.relay.enrolment_requests``). It only puts the card on the list the
coordinator sees in the console; it trusts nothing. A hub without ``[trust] root_key`` answers 404. Every
refusal is counted with the API's (``/healthz`` -> ``http_refused``): ``enrol_invalid`` for a request
that is not one, ``enrol_busy`` (429) while the list takes no more for now.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

from aiohttp import web

from hub.api.common import HUB, api_error
from hub.api.gate import GATE_KEY
from hub.core.bounded_http import source_of
from hub.core.errors import UsageError

MAX_REQUEST = 2048


async def enrol(request: web.Request) -> web.Response:
    requests = request.app[HUB].enrolment_requests
    refusals = request.app[GATE_KEY].refusals
    if requests is None:
        return api_error(
            404, "not_enrolling", "denne hub godkender ikke tilmeldinger (den har ingen [trust] root_key)"
        )
    if request.content_type != "application/json" or (request.content_length or 0) > MAX_REQUEST:
        refusals["enrol_invalid"] += 1
        return api_error(
            400, "invalid_request", "forventede en lille JSON-anmodning fra 'beredt enrol --request'"
        )
    wait = requests.wait()
    if wait > 0:
        refusals["enrol_busy"] += 1
        response = api_error(429, "busy", "hubben modtager mange tilmeldinger lige nu: prøv igen om lidt")
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response
    source = source_of(request.transport) if request.transport is not None else "local"
    try:
        raw = await request.read()  # a chunked body has no Content-Length: its size is checked here
        if len(raw) > MAX_REQUEST:
            raise ValueError(f"mere end {MAX_REQUEST} bytes")
        body = json.loads(raw)
        card, signature = str(body["card"]), base64.b64decode(str(body["signature"]), validate=True)
        pending = requests.add(card, signature, source=source)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        refusals["enrol_invalid"] += 1
        return api_error(400, "invalid_request", f"ikke en tilmeldingsanmodning: {exc}")
    except UsageError as exc:
        refusals["enrol_invalid"] += 1
        return api_error(400, "invalid_request", str(exc))
    return web.json_response({"code": pending.code}, status=202)
