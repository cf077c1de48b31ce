"""``POST /v1/links/{link}/status``: a status-plan value (a SINE status SDS) sent to a peer as it is, the
cheapest and most robust report there is; a link that cannot send one says so."""

from __future__ import annotations

import json

from aiohttp import web

from hub.api.common import HUB, api_error
from hub.core.errors import BudgetExhausted, DeliveryRefused, TransportError
from hub.core.frame import Priority


async def send_radio_status(request: web.Request) -> web.Response:
    """Send a status-plan value (a SINE status SDS) to a peer: the cheapest, most robust report there is."""
    hub = request.app[HUB]
    link = request.match_info["link"]
    transport = hub.links.transports.get(link)
    if transport is None:
        return api_error(404, "unknown_link", f"Ingen forbindelse ved navn {link!r}")
    send_status = getattr(transport, "send_status", None)
    if send_status is None:
        return api_error(
            409, "no_status_messages",
            f"Forbindelsen {link!r} ({hub.links.kind_of(link)}) kan ikke sende statusbeskeder;"
            " brug en SINE-forbindelse",
        )  # fmt: skip
    try:
        body = await request.json()
        to, status = body["to"], body["status"]
        if not isinstance(to, str) or not isinstance(status, str):
            raise TypeError
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        return api_error(
            400, "invalid_request",
            'Indholdet skal være {"to": "<node-id eller adresse>", "status": "<navn fra statusplanen>"}',
        )  # fmt: skip
    address = to
    try:
        peer = hub.links.peers.get(bytes.fromhex(to))
    except ValueError:
        peer = None
    if peer is not None:
        address = peer.address(link) or ""
        if not address:
            return api_error(422, "no_address", f"{peer.name} har ingen adresse på forbindelsen {link!r}")
    try:
        await send_status(address, status, priority=int(Priority.URGENT))
    except DeliveryRefused as exc:
        return api_error(409, "refused_by_link", f"Forbindelsen afviste statusbeskeden: {exc}")
    except BudgetExhausted as exc:
        return web.json_response(
            {"code": "budget_exhausted", "retry_after": exc.retry_after,
             "error": f"Forbindelsens sendebudget er brugt; prøv igen om {exc.retry_after:.0f} s"},
            status=503,
        )  # fmt: skip
    except TransportError as exc:
        return api_error(503, "link_failed", f"Forbindelsen svigtede: {exc}")
    return web.json_response({"link": link, "to": address, "status": status, "state": "sent"}, status=202)
