"""Groups as addresses: which trusted nodes a group name ("distrikt-syd", "plejehjem") stands for now.

A node's groups come from three places, merged: the root-signed roster (``--group`` at ``beredt enrol
approve``), the local ``roster.toml`` (``groups = [...]`` in a ``[[node]]`` table) and the config's
``[[peers]]`` tables (``groups = [...]``), so a hub without a municipal root can address groups too.
Membership is read from the roster as it is at the moment of asking: a node revoked by the root, or
removed from the roster, is no member any more, and a node enrolled later is one from then on.

Names match without regard to case or surrounding spaces; ``group:NAME`` is how the API, the CLI and the
console address one. A group message is expanded by the sending hub into one message per member (see
``hub.relay.group_sends`` and "Groups" in docs/message-kinds.md for why).

The resolver API other parts use::

    groups = hub.groups
    groups.members("distrikt-syd")   # -> tuple of node ids (8 bytes), sorted by name; () if unknown
    groups.names()                   # -> {"distrikt-syd": 3, ...}: every group and its member count
    groups.of(node_id)               # -> the groups one node belongs to
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from hub.relay.roster import Roster, RosterEntry
from hub.relay.settings import PeerConfig

PREFIX = "group:"


def group_key(name: str) -> str:
    """The form names are compared in: "Distrikt Syd " and "distrikt syd" are one group."""
    return " ".join(name.split()).casefold()


def group_address(value: str) -> str | None:
    """The group name in an address ``group:NAME``, or None if ``value`` does not address a group."""
    if value[: len(PREFIX)].casefold() != PREFIX:
        return None
    return value[len(PREFIX) :].strip()


class Groups:
    """The groups of the nodes this hub trusts, read from the roster each time they are asked for."""

    def __init__(self, roster: Callable[[], Roster], me: bytes, peers: Sequence[PeerConfig] = ()) -> None:
        self._roster = roster  # a callable: the hub replaces its roster when it is reloaded
        self._me = me
        self._configured = {p.node_id: p.groups for p in peers if p.groups}

    def _entries(self) -> Iterable[tuple[RosterEntry, tuple[str, ...]]]:
        for entry in self._roster():  # trusted and not revoked
            if entry.node_id != self._me:
                yield entry, entry.groups + self._configured.get(entry.node_id, ())

    def of(self, node_id: bytes) -> tuple[str, ...]:
        """The groups ``node_id`` belongs to, each once, in the spelling first seen."""
        entry = self._roster().get(node_id)
        if entry is None or node_id == self._me:
            return ()
        return _unique(entry.groups + self._configured.get(node_id, ()))

    def members(self, group: str) -> tuple[bytes, ...]:
        """The node ids in ``group`` now (never this hub itself), sorted by name; () for no such group."""
        key = group_key(group)
        found = [e for e, names in self._entries() if any(group_key(n) == key for n in names)]
        return tuple(e.node_id for e in sorted(found, key=lambda e: (e.name.casefold(), e.node_id)))

    def names(self) -> dict[str, int]:
        """Every group with at least one member, and how many members it has, sorted by name."""
        counts: dict[str, int] = {}
        spelling: dict[str, str] = {}
        for _entry, names in self._entries():
            for name in _unique(names):
                key = group_key(name)
                spelling.setdefault(key, " ".join(name.split()))
                counts[key] = counts.get(key, 0) + 1
        return {spelling[k]: counts[k] for k in sorted(counts)}

    def canonical(self, group: str) -> str | None:
        """The spelling the roster uses for ``group``, or None if no trusted node is in it."""
        key = group_key(group)
        return next((name for name in self.names() if group_key(name) == key), None)


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(group_key(name), " ".join(name.split()))
    return tuple(seen.values())
