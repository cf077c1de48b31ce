"""What the relay engine is told at start: links, peers, routes, timing, store limits and paths.

``RelaySettings`` is the shape the engine needs; the service's ``HubConfig`` provides it, and tests may
build one directly. Keeping these types here lets the engine stay below the service layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hub.core.at_rest import Retention
from hub.core.frame import Priority
from hub.relay.policy import Policy


@dataclass(frozen=True, slots=True)
class LinkConfig:
    name: str
    kind: str
    options: Mapping[str, Any]
    announce_gap: float | None = None
    """A paid link (satellite) only: least seconds between two route announcements to one neighbour
    over it, a full table included (``announce = "changes"``); None: routes are never announced over it."""


@dataclass(frozen=True, slots=True)
class PeerConfig:
    node_id: bytes
    name: str
    links: Mapping[str, str]
    groups: tuple[str, ...] = ()  # groups this peer is addressed through besides its roster ones
    contact_minutes: int = 0  # how often it should be heard from (the board's alarm); 0: the default


@dataclass(frozen=True, slots=True)
class Timing:
    hop_ack_timeout: float = 5.0
    retry_initial: float = 1.0
    retry_cap: float = 120.0
    e2e_ack_delay: float = 0.2
    probe_interval: float = 1.0
    default_ttl_minutes: int = 24 * 60
    commit_window: float = 0.0
    """Seconds a received routine or normal message may wait for others to share its fsynced commit (and
    so its hop ack waits as long): fewer fsyncs, fewer SD-card writes at a slow steady rate. A sender waits
    ``hop_ack_timeout`` plus this for the hop ack of such a message, so every hub of a network should have
    the same; a resend of a waiting message ends the wait at once. Urgent and life-safety messages, and
    what this hub sends itself, are committed at once (``may_wait``). 0: at once, always."""

    def window_for(self, priority: Priority) -> float:
        """How long a received message of this priority may wait in the commit window."""
        return self.commit_window if may_wait(priority) else 0.0


def may_wait(priority: Priority) -> bool:
    """Whether a received message of this priority may wait in the commit window: routine and normal ones
    may, urgent and life-safety ones never (the sender's deadline and the receiver's wait agree on it)."""
    return priority < Priority.URGENT


@dataclass(frozen=True, slots=True)
class TrustSettings:
    """The municipality's root of trust (``[trust]``): see ``hub.relay.roster_updates``."""

    root: str | None = None
    """The root's public key (base64); None: only the local roster file is trusted."""
    root_key: Path | None = None
    """The root's private key file, on the hub that approves enrolments; used by the CLI only."""
    announce_interval: float = 0.0
    """Seconds between re-broadcasts of the current signed roster; 0: never (only on a new version)."""
    entry: tuple[str, ...] = ()
    """Internet addresses of the municipality's relays where a hub with no neighbour there announces
    itself (``hub.relay.route_learning``): how a new hub joins without [[peers]]."""


class RelaySettings(Protocol):
    """The settings ``Hub`` reads; ``hub.service.config.HubConfig`` is the implementation."""

    @property
    def name(self) -> str: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def links(self) -> tuple[LinkConfig, ...]: ...
    @property
    def peers(self) -> tuple[PeerConfig, ...]: ...
    @property
    def routes(self) -> Mapping[bytes, tuple[bytes, ...]]: ...
    @property
    def default_route(self) -> tuple[bytes, ...]: ...
    @property
    def policy(self) -> Policy: ...
    @property
    def max_messages(self) -> int: ...
    @property
    def max_bytes(self) -> int: ...
    @property
    def timing(self) -> Timing: ...
    @property
    def roster_path(self) -> Path: ...
    @property
    def trust(self) -> TrustSettings: ...
    @property
    def store_path(self) -> Path: ...
    @property
    def retention(self) -> Retention: ...
