"""Who a scenario's names mean at this hub: groups through the roster's groups, nodes by name or id.

Resolved when an exercise starts, so a name the roster does not know stops the start with a clear error
before anything is sent, instead of an inject going nowhere an hour in.
"""

from __future__ import annotations

from collections.abc import Iterable

from hub.core.errors import UsageError
from hub.exercise.scenario import Audience, Inject, InjectKind, Scenario
from hub.relay.hub import Hub


def node_by_name(hub: Hub, name: str) -> bytes:
    """The node the roster calls ``name`` (compared without case), or whose id is ``name`` in hex."""
    wanted = name.strip().casefold()
    for entry in hub.roster:
        if entry.name.casefold() == wanted or entry.node_id.hex() == wanted:
            return entry.node_id
    known = ", ".join(sorted(e.name for e in hub.roster)) or "ingen"
    raise UsageError(f"ingen node hedder {name!r} i rosteren; kendte noder: {known}")


def members(hub: Hub, audience: Audience) -> tuple[bytes, ...]:
    """The node ids ``audience`` names, in a stable order, without this hub itself."""
    found: dict[bytes, None] = {}
    for group in audience.groups:
        group_members = hub.groups.members(group)
        if not group_members:
            known = ", ".join(hub.groups.names()) or "ingen"
            raise UsageError(f"gruppen {group!r} har ingen medlemmer i rosteren; grupper: {known}")
        found.update(dict.fromkeys(group_members))
    for name in audience.nodes:
        found[node_by_name(hub, name)] = None
    found.pop(hub.node_id, None)
    return tuple(found)


def recipients(hub: Hub, inject: Inject, participants: Iterable[bytes]) -> tuple[bytes, ...]:
    """Whom a message or roll-call inject goes to: its own audience, or every participant."""
    return members(hub, inject.audience) if inject.audience else tuple(participants)


def check(hub: Hub, scenario: Scenario) -> tuple[bytes, ...]:
    """Resolve every name in ``scenario`` now; return the participants. ``UsageError`` names what fails."""
    participants = members(hub, scenario.participants)
    if not participants:
        raise UsageError("scenariets deltagere er kun denne hub: nævn andre hubs eller grupper")
    for inject in scenario.injects:
        if inject.kind == InjectKind.OUTAGE:
            if inject.hub.strip().casefold() != hub.identity.name.casefold():
                node_by_name(hub, inject.hub)
        elif not recipients(hub, inject, participants):
            raise UsageError(f"inject {inject.number} når ingen andre end denne hub")
    return participants
