"""The console's enrolment page for coordinators, on the hub that holds the root key: the cards that asked to
be enrolled (``hub.relay.enrolment_requests``), approve one with role, institution and groups, refuse one,
and revoke an enrolled node. Approving and revoking sign the next roster version with the root key
(``hub.relay.roster_issue``), exactly as ``beredt enrol approve`` and ``beredt revoke`` do; the hub then
applies and broadcasts it. Each action is written in the log book.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub.core.errors import ConfigError, RoutingError, UsageError
from hub.core.identity import PublicCard
from hub.core.kinds.roster import MAX_TEXT, RosterNode, RosterVersion
from hub.relay import roster_issue
from hub.relay.enrolment_requests import EnrolmentRequests
from hub.relay.roster import Role, valid_group_name

if TYPE_CHECKING:
    from hub.relay.hub import Hub


def view(hub: Hub) -> dict[str, Any]:
    """What the page shows: pending requests, newest first, and the nodes of the signed roster."""
    requests = hub.enrolment_requests
    version = hub.roster.version
    own = hub.identity.node_id
    return {
        "available": requests is not None,
        "roles": [r.value for r in Role],
        "requests": [
            {"code": r.code, "name": r.card.name, "role": r.card.role, "node": r.card.node_id.hex(),
             "received": r.received}
            for r in (requests.pending() if requests else [])
        ],
        "nodes": _nodes(version, own),
        "roster_version": version.version if version else 0,
    }  # fmt: skip


def _nodes(version: RosterVersion | None, own: bytes) -> list[dict[str, Any]]:
    retiring = {n.replaces for n in version.nodes if n.replaces} if version else set()
    return [
        {"node": n.node_id.hex(), "name": n.card.name, "role": n.card.role, "institution": n.institution,
         "groups": list(n.groups)}
        for n in (version.nodes if version else ())
        if n.node_id != own and n.node_id not in retiring
    ]  # fmt: skip


async def act(hub: Hub, action: str, body: dict[str, Any]) -> str:
    """Approve, refuse or revoke; the log book's line for it (in Danish, for people)."""
    if action == "approve":
        node, version = await approve(hub, body)
        where = f", {node.institution}" if node.institution else ""
        who = f"{node.card.name} ({node.node_id.hex()})"
        return f"Tilmeldt {who} som {node.card.role}{where} i roster-version {version}"
    if action == "refuse":
        card = refuse(hub, str(body.get("code", "")))
        return f"Anmodning om tilmelding afvist: {card.name} ({card.node_id.hex()})"
    if action == "revoke":
        name, version = await revoke(hub, str(body.get("node", "")))
        return f"Tilbagekaldt {name} ({body.get('node')}) i roster-version {version}"
    raise UsageError(f"handlingen skal være approve, refuse eller revoke, ikke {action!r}")


async def approve(hub: Hub, body: dict[str, Any]) -> tuple[RosterNode, int]:
    """Sign the requested card into the next version with the name, role, institution and groups given."""
    requests = _requests(hub)
    request = requests.get(str(body.get("code", "")))
    try:
        role = Role(str(body.get("role", "")))
    except ValueError:
        raise UsageError(f"rollen skal være en af {', '.join(r.value for r in Role)}") from None
    # The roster's name is what every hub shows; Pis from one image all ask under the image's name.
    name = str(body.get("name", "")).strip() or request.card.name
    if len(name) > MAX_TEXT or ":" in name:
        raise UsageError(f"navnet må højst have {MAX_TEXT} tegn og intet kolon")
    institution = str(body.get("institution", "")).strip()
    if len(institution) > MAX_TEXT:
        raise UsageError(f"institutionens navn må højst have {MAX_TEXT} tegn")
    groups = tuple(g.strip() for g in str(body.get("groups", "")).split(",") if g.strip())
    bad = [g for g in groups if not valid_group_name(g)]
    if bad:
        raise UsageError(f"{bad[0]!r} er intet gruppenavn (1-80 tegn, intet kolon)")
    card = PublicCard(name, role.value, request.card.signing_key, request.card.sealing_key)
    node = RosterNode(card, institution, groups)
    issued = await _issue(hub, lambda current: current.with_node(node))
    requests.remove(request.code)
    return node, issued.version


def refuse(hub: Hub, code: str) -> PublicCard:
    return _requests(hub).remove(code).card


async def revoke(hub: Hub, node_hex: str) -> tuple[str, int]:
    try:
        node_id = bytes.fromhex(node_hex)
    except ValueError:
        node_id = b""
    version = hub.roster.version
    node = version.node(node_id) if version and len(node_id) == 8 else None
    if node is None:
        raise UsageError(f"{node_hex!r} er ingen tilmeldt node")
    if node_id == hub.identity.node_id:
        raise RoutingError("denne hub kan ikke tilbagekalde sig selv")
    issued = await _issue(hub, lambda current: current.with_revoked(node_id))
    return node.card.name, issued.version


def _requests(hub: Hub) -> EnrolmentRequests:
    if hub.enrolment_requests is None:
        raise RoutingError("denne hub har ingen rodnøgle ([trust] root_key) og kan ikke tilmelde noder")
    return hub.enrolment_requests


async def _issue(hub: Hub, change: Callable[[RosterVersion], RosterVersion]) -> RosterVersion:
    try:
        issued = await asyncio.to_thread(
            roster_issue.issue, hub.config.trust, hub.config.data_dir, hub.identity.card, change
        )
    except ConfigError as exc:
        raise RoutingError(f"rodnøglen kan ikke bruges: {exc}") from None
    hub.reload_roster()  # applies the version and broadcasts it at once
    return issued
