"""The hub's HTTP API (aiohttp), described in ``hub/api/openapi.yaml``.

JSON at the edge only: bodies are validated and turned into compact payloads by ``hub.core.kinds`` before a
frame is signed. ``POST /v1/messages`` answers 202 only after the durable commit. Errors are JSON
``{"code": "...", "error": "..."}``: a stable English code for programs and a Danish text for people,
with a 4xx status that says whose fault it is; a full store answers 507. Who may call
which route is decided by ``hub.api.gate``: anyone who can open the Unix socket, and on the network port
only a bearer token with the route's scope (``ROUTES``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from hub.api.board_routes import board, rollcalls, start_rollcall
from hub.api.common import HUB, api_error
from hub.api.data_routes import data_erase, data_search, logbook_witnessed
from hub.api.enrolment import enrol
from hub.api.exercise_routes import exercise_action, exercise_state
from hub.api.fieldwork import setup_fieldwork
from hub.api.gate import GATE_KEY, Gate, Handler, host_names
from hub.api.health import (
    GUARDS_KEY,
    HEALTH_RATE_KEY,
    HEALTHZ_BURST,
    HEALTHZ_RATE,
    OPEN_COUNT_KEY,
    OpenCount,
    healthz,
)
from hub.api.radio_status import send_radio_status
from hub.api.tokens import Scope, TokenStore
from hub.citizens.service import FollowUp
from hub.console.routes import ConsoleOptions, setup_console
from hub.core.bounded_http import ConnectionGuard
from hub.core.errors import (
    ConfigError,
    ProtocolError,
    RoutingError,
    SealError,
    StoreError,
    StoreFull,
)
from hub.core.frame import BROADCAST, Kind, Priority, Status, decode_frame
from hub.core.kinds import decode_payload, encode_payload
from hub.core.source_rate import SourceRate
from hub.relay.enrolment_requests import ENROL_PATH
from hub.relay.group_sends import progress
from hub.relay.groups import group_address
from hub.relay.hub import Hub
from hub.relay.route_view import routes_summary
from hub.relay.store_records import StoredMessage

MAX_BODY = 64 * 1024
MESSAGE_ID = re.compile(r"[0-9a-f]{4,32}")
REVOKED_REASON = (
    "Modtageren er tilbagekaldt af kommunen og kan ikke længere modtage beskeder: send den til en anden"
)
"""A message id, or a short id: its first digits, as the CLI and the console show them."""
_HTTP_DA = {
    404: "Ukendt adresse i API'et (se /v1/openapi.yaml)",
    405: "Metoden er ikke tilladt på denne adresse",
}
OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")


@dataclass(slots=True)
class CitizensSlot:
    """The follow-up of power-dependent citizens once it runs (``hub.service.server`` fills it after the
    app has started; None on a hub without a register)."""

    service: FollowUp | None = None


CITIZENS_KEY: web.AppKey[CitizensSlot] = web.AppKey("citizens", CitizensSlot)


def _enum(value: Any, enum: type[Priority] | type[Status], field: str) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"{field}: forventede tekst")
    try:
        return enum[value.upper().replace("-", "_")]
    except KeyError:
        choices = ", ".join(m.name.lower().replace("_", "-") for m in enum)
        raise ValueError(f"{field}: ukendt værdi {value!r}; brug en af {choices}") from None


def parse_recipient(value: Any) -> bytes:
    if value in ("*", "all", "broadcast"):
        return BROADCAST
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(raw) == 8:
            return raw
    raise ValueError(f"to: forventede et node-id på 16 hex-cifre, 'group:NAVN' eller '*', fik {value!r}")


async def send_message(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    try:
        body = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return api_error(400, "invalid_json", f"Indholdet er ikke gyldig JSON: {exc}")
    if not isinstance(body, dict):
        return api_error(
            400, "invalid_request", "Indholdet skal være et JSON-objekt med 'to', 'kind' og 'body'"
        )
    unknown = set(body) - {"to", "kind", "body", "priority", "ttl_minutes", "status", "public"}
    if unknown:
        return api_error(400, "unknown_field", f"Ukendte felter: {', '.join(sorted(unknown))}")
    group = group_address(body["to"]) if isinstance(body.get("to"), str) else None
    try:
        recipient = BROADCAST if group is not None else parse_recipient(body.get("to"))
        kind_name = body.get("kind", "text")
        try:
            kind = Kind[str(kind_name).upper().replace("-", "_")]
        except KeyError:
            raise ValueError(f"kind: ukendt slags besked {kind_name!r}") from None
        if kind in (Kind.ACK, Kind.HOP_ACK, Kind.ROSTER):
            raise ValueError(f"kind: {kind.name.lower()}-beskeder laves kun af hubben selv")
        try:
            payload = encode_payload(kind, body.get("body"))
        except ValueError as exc:  # the field's own words name it: status.fuel_hours: -1 is outside 0..9999
            raise ValueError(f"Ugyldigt indhold for en {kind.name.lower()}-besked: {exc}") from None
        priority = _enum(body.get("priority", "normal"), Priority, "priority")
        # a person who names no status during an exercise sends an exercise message; real only by choice
        status = (
            hub.exercise.default_status()
            if body.get("status") is None
            else _enum(body["status"], Status, "status")
        )
        ttl = body.get("ttl_minutes")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 < ttl <= 0xFFFF):
            raise ValueError("ttl_minutes: forventede et helt antal minutter fra 1 til 65535")
        public = body.get("public", False)
        if not isinstance(public, bool):
            raise ValueError(
                "public: forventede true (kan læses af alle hubber på vejen) eller false (forseglet)"
            )
    except ValueError as exc:
        return api_error(400, "invalid_request", str(exc))
    if group is not None:
        return await _send_to_group(hub, group, kind, payload, priority, ttl, status, public)
    if recipient != BROADCAST and hub.roster.get(recipient) is None:
        return api_error(
            422,
            "unknown_recipient",
            f"Ukendt modtager {recipient.hex()}: ikke i rosteren; tilføj dens kort med 'beredt roster add'"
            " (ellers kunne dens kvitteringer ikke efterprøves)",
        )
    try:
        message_id = await hub.submit(
            kind, recipient, payload, priority=priority, ttl_minutes=ttl, status=status, public=public
        )
    except (RoutingError, SealError, StoreError) as exc:
        return _not_accepted(exc)
    return web.json_response(
        {"id": message_id.hex(), "state": "accepted", "status": status.name.lower()}, status=202
    )


def _not_accepted(exc: RoutingError | SealError | StoreError) -> web.Response:
    """Why the hub did not accept a message (for a group: members sent before are in its group message)."""
    if isinstance(exc, SealError):
        return api_error(422, "cannot_seal", str(exc))
    if isinstance(exc, RoutingError):
        return api_error(422, "cannot_send", str(exc))
    if isinstance(exc, StoreFull):
        return api_error(
            507, "store_full",
            "Ikke modtaget: hubbens lager er fuldt, og der kunne ikke gøres plads (livsvigtige beskeder"
            " ryddes aldrig); se hubbens log",
        )  # fmt: skip
    return api_error(
        503, "store_failed", "Ikke modtaget: hubbens lager svigtede; se hubbens log og prøv igen"
    )


async def _send_to_group(
    hub: Hub,
    group: str,
    kind: Kind,
    payload: bytes,
    priority: Priority,
    ttl: int | None,
    status: Status,
    public: bool,
) -> web.Response:
    """One message per member of the group as it is now, tracked as one group message."""
    try:
        sent = await hub.submit_group(
            kind, group, payload, priority=priority, ttl_minutes=ttl, status=status, public=public
        )
    except (RoutingError, SealError, StoreError) as exc:
        return _not_accepted(exc)
    messages = [
        {"to": node, "to_name": name_of_node(hub, node), "id": message} for node, message in sent.members
    ]
    return web.json_response(
        {
            "id": sent.id,
            "group": sent.group,
            "state": "accepted",
            "messages": messages,
            "status": status.name.lower(),
        },
        status=202,
    )


def name_of_node(hub: Hub, node: str) -> str | None:
    entry = hub.roster.get(bytes.fromhex(node))
    return entry.name if entry else None


async def groups(request: web.Request) -> web.Response:
    """Every group with at least one trusted member, and its members now."""
    hub = request.app[HUB]
    out = []
    for name, count in hub.groups.names().items():
        members = [{"node": m.hex(), "name": name_of_node(hub, m.hex())} for m in hub.groups.members(name)]
        out.append({"name": name, "count": count, "members": members})
    return web.json_response({"groups": out})


async def group_messages(request: web.Request) -> web.Response:
    """The newest group messages sent from this hub, each with how many members have received it."""
    hub = request.app[HUB]
    try:
        limit = max(1, min(int(request.query.get("limit", "50")), 500))
    except ValueError:
        return api_error(400, "invalid_query", "limit skal være et tal")
    sends = hub.group_sends.newest(limit)
    return web.json_response({"group_messages": await progress(sends, hub.store, hub.roster)})


async def group_message(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    sent = hub.group_sends.get(request.match_info["id"])
    if sent is None:
        return api_error(404, "not_found", f"Ingen gruppebesked {request.match_info['id']}")
    return web.json_response((await progress([sent], hub.store, hub.roster))[0])


def _message_json(hub: Hub, message: StoredMessage) -> dict[str, Any]:
    frame = decode_frame(message.wire)
    sender, recipient = hub.roster.get(frame.sender), hub.roster.get(frame.recipient)
    body: Any
    try:
        body = decode_payload(frame.kind, hub.open_payload(frame))
    except SealError:
        body = "(sealed)"
    except ProtocolError as exc:
        body = {"undecodable": str(exc)}
    return {
        "id": message.id.hex(),
        "kind": frame.kind.name.lower(),
        "from": frame.sender.hex(),
        "from_name": sender.name if sender else None,
        "to": frame.recipient.hex(),
        "to_name": recipient.name if recipient else None,
        "priority": frame.priority.name.lower().replace("_", "-"),
        "status": frame.status.name.lower(),
        "created": frame.created,
        "expires": frame.expires,
        "received": message.accepted_at,
        "via": message.via,
        "sealed": frame.sealed,
        "body": body,
    }


async def get_message(request: web.Request) -> web.Response:
    """One message by its id, or by a short id (its first 4 to 31 hex digits) that only it begins with."""
    hub = request.app[HUB]
    wanted = request.match_info["id"].lower()
    if not MESSAGE_ID.fullmatch(wanted):
        return api_error(400, "invalid_id", "Et besked-id er 32 hex-cifre, eller de første (mindst 4) af dem")
    found = await hub.store.ids_starting(wanted)
    if len(found) > 1:
        return api_error(
            409, "ambiguous_id", f"Flere beskeder begynder med {wanted}: giv flere cifre af besked-id'et"
        )
    message = await hub.store.message(found[0]) if found else None
    if message is None:
        return api_error(404, "not_found", f"Ingen besked {wanted}")
    message_id = message.id
    deliveries = await hub.store.deliveries(message_id)
    out = _message_json(hub, message)
    out.update(
        {
            "local": message.local,
            "state": message.state,
            "reason": REVOKED_REASON if message.state == "revoked" else None,
            "end_to_end_acked": message.e2e_acked_at is not None,
            "end_to_end_acked_at": message.e2e_acked_at,
            "hops": [
                {
                    "hop": d.hop.hex(),
                    "next_hop": d.next_hop.hex() if d.next_hop else None,
                    "state": d.state,
                    "attempts": d.attempts,
                    "link": d.link,
                    "last_error": d.last_error,
                    "updated": d.updated,
                }
                for d in deliveries
            ],
        }
    )
    return web.json_response(out)


async def inbox(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    try:
        limit = int(request.query.get("limit", "100"))
        since = float(request.query.get("since", "0"))
    except ValueError:
        return api_error(400, "invalid_query", "limit og since skal være tal")
    messages = await hub.store.inbox(limit=max(1, min(limit, 1000)), since=since)
    return web.json_response({"messages": [_message_json(hub, m) for m in messages]})


async def links(request: web.Request) -> web.Response:
    return web.json_response({"links": await request.app[HUB].links_summary()})


async def peers(request: web.Request) -> web.Response:
    return web.json_response({"peers": request.app[HUB].peers_summary()})


async def learned_routes(request: web.Request) -> web.Response:
    return web.json_response(routes_summary(request.app[HUB]))


async def roster_reload(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    try:
        count = hub.reload_roster()
    except ConfigError as exc:
        return api_error(400, "invalid_roster", f"Rosteren blev ikke genindlæst: {exc}")
    return web.json_response({"nodes": count})


async def openapi(request: web.Request) -> web.FileResponse:
    return web.FileResponse(OPENAPI_PATH, headers={"Content-Type": "application/yaml"})


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return api_error(413, "too_large", f"Indholdet er større end {MAX_BODY} bytes")
    except web.HTTPException as exc:
        if exc.status >= 400:
            return api_error(exc.status, f"http_{exc.status}", _HTTP_DA.get(exc.status, exc.reason))
        raise


ROUTES: tuple[tuple[str, str, Handler, Scope | None], ...] = (
    ("POST", "/v1/messages", send_message, Scope.SEND),
    ("GET", "/v1/messages/{id}", get_message, Scope.READ),
    ("GET", "/v1/inbox", inbox, Scope.READ),
    ("GET", "/v1/links", links, Scope.READ),
    ("GET", "/v1/peers", peers, Scope.READ),
    ("GET", "/v1/routes", learned_routes, Scope.READ),
    ("POST", "/v1/roster/reload", roster_reload, Scope.ADMIN),
    ("GET", "/v1/groups", groups, Scope.READ),
    ("GET", "/v1/group-messages", group_messages, Scope.READ),
    ("GET", "/v1/group-messages/{id}", group_message, Scope.READ),
    ("POST", "/v1/links/{link}/status", send_radio_status, Scope.SEND),
    ("GET", "/v1/openapi.yaml", openapi, None),
    ("GET", "/v1/board", board, Scope.READ),
    ("GET", "/v1/rollcalls", rollcalls, Scope.READ),
    ("POST", "/v1/rollcalls", start_rollcall, Scope.SEND),
    ("GET", "/v1/exercise", exercise_state, Scope.READ),
    ("POST", "/v1/exercise/{action}", exercise_action, Scope.SEND),
    ("POST", "/v1/data/search", data_search, Scope.ADMIN),
    ("POST", "/v1/data/erase", data_erase, Scope.ADMIN),
    ("GET", "/v1/logbook/witnessed/{node}", logbook_witnessed, Scope.READ),
)
"""Every ``/v1`` route with the token scope it needs on the network port (None: any valid token)."""


def build_app(
    hub: Hub,
    *,
    tokens: TokenStore | None = None,
    hosts: tuple[str, ...] = (),
    guards: tuple[ConnectionGuard, ...] = (),
    console: ConsoleOptions | None = None,
) -> web.Application:
    """The API and the console in one app. Without ``tokens`` no network client can use ``/v1``; ``hosts``
    are host names the network port answers to besides its addresses and the machine's own names;
    ``guards`` bound the connections of the sites that serve the app (their refusals show in /healthz);
    ``console`` is the console's options (from the config's ``[console]`` table)."""
    gate = Gate(tokens, host_names(hosts))
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_json_errors, gate.middleware])
    app[HUB] = hub
    app[CITIZENS_KEY] = CitizensSlot()
    app[GATE_KEY] = gate
    app[GUARDS_KEY] = guards
    app[HEALTH_RATE_KEY] = SourceRate(rate=HEALTHZ_RATE, burst=HEALTHZ_BURST)
    app[OPEN_COUNT_KEY] = OpenCount()
    for method, path, handler, scope in ROUTES:
        app.router.add_route(method, path, gate.scoped(scope, handler))
    app.router.add_get("/healthz", healthz)
    app.router.add_post(ENROL_PATH, enrol)
    setup_console(app, hub, console)
    setup_fieldwork(app, lambda: app[CITIZENS_KEY].service)
    # innermost, so that a body read under the guard's deadline still gets the JSON errors above
    app.middlewares.extend(guard.middleware for guard in guards)
    return app
