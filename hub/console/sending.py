"""The console's messages and what it sends: the received list, messages composed to nodes, every
institution or a group (one message per recipient, so each gets its own end-to-end ack and read receipt),
an institution's status from a preset, and "read and understood" receipts. Mounted by
``hub.console.routes``, which checks the session and role first."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from hub.console.request_body import json_body
from hub.console.service import Console
from hub.console.users import Session
from hub.core.errors import RoutingError
from hub.core.frame import BROADCAST, Kind, Priority, Status
from hub.core.kinds import encode_payload
from hub.relay.groups import group_address

PRESETS: dict[str, tuple[dict[str, Any], Priority]] = {
    "ok": ({"facility": "Normal"}, Priority.NORMAL),
    "help": ({"facility": "Compromised"}, Priority.URGENT),
    "emergency": ({"facility": "Compromised"}, Priority.LIFE_SAFETY),
}


async def messages(request: web.Request, console: Console, session: Session) -> web.Response:
    items = [console.message_view(m) for m in console.messages]
    return web.json_response({"messages": items, "open_rollcall": console.open_rollcall()})


def _priority(value: object) -> Priority:
    try:
        return Priority[str(value).upper().replace("-", "_")]
    except KeyError:
        raise ValueError(f"priority: ukendt værdi {value!r}") from None


def _status(value: object) -> Status:
    try:
        return Status[str(value).upper()]
    except KeyError:
        raise ValueError(f"status: ukendt værdi {value!r}; forventede actual, exercise eller test") from None


def _status_or_default(console: Console, value: object) -> Status:
    """The status the person chose, or (none chosen) Exercise while this hub takes part in an exercise:
    a real message during an exercise is only ever an explicit choice."""
    return console.hub.exercise.default_status() if value in (None, "") else _status(value)


def _recipient(value: object) -> bytes:
    if value in ("*", "all"):
        return BROADCAST
    try:
        raw = bytes.fromhex(str(value))
    except ValueError:
        raw = b""
    if len(raw) != 8:
        raise ValueError(f"to: forventede et node-id på 16 hex-cifre eller '*', fik {value!r}")
    return raw


def _recipients(console: Console, value: object) -> list[bytes]:
    """One node, or every institution ('*', 'all' or 'care-homes'): one message each, so every
    recipient gets its own end-to-end ack and read receipt."""
    if value in ("*", "all", "care-homes"):
        nodes = [bytes.fromhex(n) for n in console.institutions()]
        if not nodes:
            raise ValueError("to: ingen institutioner i rosteren at sende til")
        return nodes
    node = _recipient(value)
    if console.hub.roster.get(node) is None:
        raise RoutingError(f"to: {value} er ikke i rosteren; tilføj først dens kort")
    return [node]


async def compose(request: web.Request, console: Console, session: Session) -> web.Response:
    body = await json_body(request)
    kind_name = str(body.get("kind", "text")).replace("-", "_")
    if kind_name not in ("text", "sitrep", "alert", "resource_request", "commitment"):
        raise ValueError(f"kind: {kind_name!r} kan ikke skrives her")
    kind = Kind[kind_name.upper()]
    content = body.get("body")
    encode_payload(kind, content)  # refuse a malformed body before anything is signed or stored
    group = group_address(str(body.get("to", "")))
    recipients = [] if group is not None else _recipients(console, body.get("to"))
    priority = _priority(body.get("priority", "normal"))
    status = _status_or_default(console, body.get("status"))
    if (
        kind is Kind.SITREP
        and isinstance(content, dict)
        and content.get("number", 0) <= console.sitrep_number
    ):
        raise ValueError(
            f"number: situationsrapport {content.get('number')} er allerede sendt; den næste er"
            f" {console.sitrep_number + 1}"
        )
    if group is not None:
        return await _compose_to_group(console, session, group, kind, content, priority, status)
    batch = secrets.token_hex(4)
    ids = [
        await console.send(kind, node, content, author=session.user.username, priority=priority,
                           status=status, batch=batch)
        for node in recipients
    ]  # fmt: skip
    return web.json_response({"ids": ids, "batch": batch}, status=202)


async def _compose_to_group(
    console: Console,
    session: Session,
    group: str,
    kind: Kind,
    content: object,
    priority: Priority,
    status: Status,
) -> web.Response:
    """One message per member the group has now, recorded as one group message (see hub.relay.groups)."""
    hub = console.hub
    members = hub.groups.members(group)
    if not members:
        raise RoutingError(f"to: gruppen {group!r} har ingen medlemmer i rosteren")
    name = hub.groups.canonical(group) or group
    send_id = secrets.token_hex(8)

    async def one(node: bytes) -> bytes:
        sent = await console.send(
            kind,
            node,
            content,
            author=session.user.username,
            priority=priority,
            status=status,
            batch=send_id,
            group=name,
        )
        return bytes.fromhex(sent)

    sent = await hub.group_sends.send(
        name, members, one, kind=kind.name.lower(), now=hub.clock.time(), send_id=send_id
    )
    return web.json_response({"ids": [m for _, m in sent.members], "batch": send_id, "group": name},
                             status=202)  # fmt: skip


async def sent(request: web.Request, console: Console, session: Session) -> web.Response:
    return web.json_response({"sent": await console.sent_view(), "now": console.hub.clock.time()})


async def send_status(request: web.Request, console: Console, session: Session) -> web.Response:
    body = await json_body(request)
    preset = body.pop("preset", "ok")
    if preset not in PRESETS:
        raise ValueError(f"preset: forventede en af {', '.join(PRESETS)}")
    chosen = body.pop("status", None)
    cap_status = None if chosen in (None, "") else _status(chosen)  # None: the hub's default
    base, priority = PRESETS[preset]
    status = {**base, **{k: v for k, v in body.items() if v not in (None, "", [])}}
    message_id = await console.quick_status(
        status, priority, author=session.user.username, preset=preset, cap_status=cap_status
    )
    return web.json_response({"id": message_id}, status=202)


async def read(request: web.Request, console: Console, session: Session) -> web.Response:
    receipt = await console.confirm_read(request.match_info["id"], author=session.user.username,
                                         by=session.user.display_name)  # fmt: skip
    return web.json_response({"id": receipt}, status=202)
