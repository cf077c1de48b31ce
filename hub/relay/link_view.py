"""Links and peers as people see them (``/v1/links``, ``/v1/peers``, ``beredt links``, the console).

``queue_depth`` of a row is everything waiting that this link could carry: the unfinished deliveries on
disk (queued, or sent and awaiting their hop ack) to that row's peer when the link has an address for it,
and for a link's own row (no peer) to every peer it has an address for. Counted from the store, so it
includes deliveries not yet resumed into memory after a restart, not just the attempts in the link's
worker queue (``sending``). A delivery to a peer two links can reach counts in both links' rows: either
could carry it.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from hub.core.clock import Clock
from hub.core.transport import Transport
from hub.relay.health import HealthBoard
from hub.relay.inbound import Inbound
from hub.relay.link_reasons import NOT_USED, Reason
from hub.relay.links import LinkSet
from hub.relay.roster import Roster
from hub.relay.route_learning import RouteLearning
from hub.relay.router import Router
from hub.relay.store import Store


class Hub(Protocol):
    """The parts of the engine (``hub.relay.hub.Hub``) the summaries read."""

    store: Store
    links: LinkSet
    health: HealthBoard
    router: Router
    clock: Clock
    roster: Roster
    inbound: Inbound
    routes: RouteLearning


log = logging.getLogger("beredt.hub")


async def links_summary(hub: Hub) -> list[dict[str, Any]]:
    waiting = await hub.store.open_by_hop()

    def depth(link: str, peer: str | None) -> int:
        hops = [bytes.fromhex(peer)] if peer is not None else list(waiting)
        return sum(waiting.get(h, 0) for h in hops if (p := hub.links.peers.get(h)) and p.address(link))

    rows = []
    for entry in hub.health.entries():
        transport = hub.links.transports.get(entry.link)
        if transport is None:
            continue
        peer_name = None
        if entry.peer is not None:
            try:
                peer = hub.links.peers.get(bytes.fromhex(entry.peer))
            except ValueError:
                peer = None
            peer_name = peer.name if peer else None
        # an exercise's simulated outage is what the router acts on, so it is what people see
        simulated = hub.health.simulated(entry.link, entry.peer)
        state, reason = ("down", simulated) if simulated else (entry.state.label, entry.reason)
        rows.append(
            _row(hub, entry.link, transport, entry.peer, peer_name, state, reason)
            | {
                "simulated": simulated is not None,
                "since": _wall(hub.clock, entry.since),
                "last_success": _wall(hub.clock, entry.last_success),
                "queue_depth": depth(entry.link, entry.peer) if peer_name else 0,
                "last_failover": hub.links.last_failover.get(entry.peer or ""),
            }
        )
    for name, transport in hub.links.transports.items():
        if not any(r["link"] == name for r in rows):
            rows.append(
                _row(hub, name, transport, None, None, "up", NOT_USED) | {"queue_depth": depth(name, None)}
            )
    return rows


def _row(
    hub: Hub,
    link: str,
    transport: Transport,
    peer: str | None,
    peer_name: str | None,
    state: str,
    reason: Reason,
) -> dict[str, Any]:
    caps = transport.capabilities
    return {
        "link": link,
        "kind": hub.links.kind_of(link),
        "peer": peer,
        "peer_name": peer_name,
        "state": state,
        "since": None,
        **reason.as_json(),
        "last_success": None,
        "queue_depth": 0,
        "sending": hub.router.queue_depth(link),
        "mtu": caps.mtu,
        "cost": caps.cost.name.lower(),
        "last_failover": None,
        "simulated": False,
        **_transport_status(transport),
        **_route_credits(hub, link),
    }


def _route_credits(hub: Hub, link: str) -> dict[str, int]:
    """On a paid link that asked for route announcements: the credits they cost since the hub started."""
    spent = hub.routes.paid_spent.get(link)
    return {} if spent is None else {"route_credits": spent.credits}


def peers_summary(hub: Hub) -> list[dict[str, Any]]:
    out = []
    for peer in hub.links.peers.values():
        entry = hub.roster.get(peer.node_id)
        out.append(
            {
                "node": peer.node_id.hex(),
                "name": peer.name,
                "trusted": entry is not None,
                "role": entry.role.value if entry else None,
                "links": {link: peer.address(link) for link in hub.links.transports if peer.address(link)},
                "state": {
                    link: hub.links.state(link, peer.node_id).label
                    for link in hub.links.transports
                    if peer.address(link)
                },
                "radio_status": [
                    {"link": s.link, "status": s.status, "value": s.value}
                    for s in hub.inbound.radio_status.values()
                    if s.peer == peer.node_id.hex()
                ],
            }
        )
    return out


def _wall(clock: Clock, monotonic: float | None) -> float | None:
    if monotonic is None or monotonic == 0.0:
        return None
    return clock.time() - (clock.monotonic() - monotonic)


def _transport_status(transport: Transport) -> dict[str, Any]:
    """Extra figures a transport may offer (airtime used, credits, drain estimate) via ``status()``."""
    status = getattr(transport, "status", None)
    if callable(status):
        try:
            value = status()
        except Exception:  # a figure that cannot be read must not break the links view
            log.exception("reading %s's status failed", transport.name)
            return {}
        if isinstance(value, dict):
            return {"details": value}
    return {}
