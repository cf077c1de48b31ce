"""How often each institution is expected to be heard from: the board raises *TAVS* after that long.

A care home on a generator with its own radio may report every half hour, a botilbud without one twice a
day; one interval for all would either cry wolf or stay silent too long. The interval of a node is, first
found:

1. set in the console by a coordinator (saved in ``console.db``; "standard" removes it);
2. ``contact_minutes`` in its roster entry: the root-signed roster (``beredt enrol approve
   --contact-minutes``) or its ``[[node]]`` table in ``roster.toml`` (``beredt roster add
   --contact-minutes``);
3. ``contact_minutes`` in its ``[[peers]]`` table of the hub's config;
4. the console's default (``ConsoleOptions.contact_interval``, one hour).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.core.kinds.roster import MAX_CONTACT_MINUTES

if TYPE_CHECKING:
    from hub.relay.hub import Hub

SOURCES = ("console", "roster", "config", "default")


class ContactIntervals:
    """Expected contact intervals in seconds per node (hex id), with where each comes from."""

    def __init__(self, hub: Hub, default: float) -> None:
        self.hub = hub
        self.default = default
        self.set_here: dict[str, int] = {}  # minutes a coordinator chose, by node

    def expected(self, node: str) -> tuple[float, str]:
        """Seconds, and which of ``SOURCES`` decided it."""
        if node in self.set_here:
            return self.set_here[node] * 60.0, "console"
        try:
            raw = bytes.fromhex(node)
        except ValueError:
            return self.default, "default"
        entry = self.hub.roster.get(raw)
        if entry is not None and entry.contact_minutes:
            return entry.contact_minutes * 60.0, "roster"
        peer = next((p for p in self.hub.config.peers if p.node_id == raw), None)
        if peer is not None and peer.contact_minutes:
            return peer.contact_minutes * 60.0, "config"
        return self.default, "default"

    def choose(self, node: str, minutes: object) -> None:
        """A coordinator's choice for ``node``: whole minutes, or None for the roster's or the default."""
        if minutes is None:
            self.set_here.pop(node, None)
            return
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int)
            or not 1 <= minutes <= MAX_CONTACT_MINUTES
        ):
            raise ValueError(f"minutes: forventede hele minutter fra 1 til {MAX_CONTACT_MINUTES}, eller null")
        self.set_here[node] = minutes

    def restore(self, saved: object) -> None:
        if isinstance(saved, dict):
            self.set_here = {str(k): int(v) for k, v in saved.items() if isinstance(v, int)}
