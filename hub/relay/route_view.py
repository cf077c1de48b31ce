"""Learned routes as people see them (``GET /v1/routes``): where each destination is reached through.

One row per destination the hub holds a route to, its routes best first: the next hop, the whole path,
the cost, the link the next hop is reached over now, and when that neighbour last told us the route (a
route told again after a relay moved shows a later time, and the new link). Then the neighbours that
offer themselves as the way to everything else (over radio), which take what no route names.
"""

from __future__ import annotations

from typing import Any, Protocol

from hub.core.clock import Clock
from hub.relay.roster import Roster
from hub.relay.route_learning import RouteLearning


class Hub(Protocol):
    """The parts of the engine (``hub.relay.hub.Hub``) the summary reads."""

    clock: Clock
    roster: Roster
    routes: RouteLearning


def routes_summary(hub: Hub) -> dict[str, list[dict[str, Any]]]:
    table = hub.routes.table
    wall = hub.clock.time() - hub.clock.monotonic()  # add to a monotonic time to get Unix time

    def name(node: bytes) -> str | None:
        entry = hub.roster.get(node)
        return entry.name if entry is not None else None

    rows = [
        {
            "destination": destination.hex(),
            "name": name(destination),
            "via": [
                {
                    "next_hop": route.path[0].hex(),
                    "path": [node.hex() for node in route.path],
                    "cost": route.cost,
                    "link": hub.routes.link_to(route.path[0]),
                    "heard": round(route.heard + wall, 3),
                }
                for route in table.routes(destination)
            ],
        }
        for destination in sorted(table.destinations())
    ]
    defaults = [
        {"next_hop": node.hex(), "name": name(node), "link": hub.routes.link_to(node)}
        for node in table.defaults()
    ]
    return {"routes": rows, "defaults": defaults}
