"""Which radios a SINE link holds down after a failed SDS, and for how long.

A peer whose SDS failed (not registered, not reachable, no delivery report in time) counts as down for
``hold`` seconds or until it is heard from; then the router may try it again, since only a send can
tell. ``PeerHold`` keeps the loop time of each peer's last failure and reports every change as
``LinkChanged(peer=...)``. It spends no SDS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hub.core.errors import LinkDown
from hub.core.transport import LinkChanged, TransportEvent


class PeerHold:
    """Peers (ISSIs) whose last SDS failed, for the link named ``name``."""

    def __init__(self, name: str, hold: float, emit: Callable[[TransportEvent], None]) -> None:
        self.hold = hold
        """Seconds ``check`` reports a failed peer as down before letting the router try it again."""
        self._name = name
        self._emit = emit
        self._down: dict[str, float] = {}  # ISSI -> loop time its last SDS failed

    def up(self, peer: str, reason: str = "peer answered") -> None:
        if self._down.pop(peer, None) is not None:
            self._emit(LinkChanged(up=True, reason=reason, peer=peer))

    def down(self, peer: str, reason: str) -> None:
        if peer not in self._down:
            self._emit(LinkChanged(up=False, reason=reason, peer=peer))
        self._down[peer] = asyncio.get_running_loop().time()

    def check(self, peer: str) -> None:
        """``LinkDown`` while ``peer`` is held down after a failed SDS (frames queued for it before then
        included: each would otherwise wait out its own report deadline)."""
        failed_at = self._down.get(peer)
        if failed_at is None:
            return
        if asyncio.get_running_loop().time() - failed_at >= self.hold:
            self.up(peer, "hold after failure expired")
            return
        raise LinkDown("last SDS to this radio failed", transport=self._name, peer=peer)
