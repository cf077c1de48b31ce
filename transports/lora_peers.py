"""Which mesh peers a LoRa link can reach, and when to spend airtime asking.

A radio that is connected says nothing about the far radio: a partitioned mesh looks healthy from the
USB port. ``PeerBook`` keeps, per peer address, the last proof of life (a packet from it, its routing
ACK, its answer to a traceroute), whether it is down (a send failed for want of an answer, or a
traceroute went unanswered) and when it was last checked. ``due`` rate-limits checks to one per peer
per ``check_interval`` and never checks a peer heard from within the interval, so busy peers cost no
probe airtime at all. Pure logic: times are passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Peer:
    heard_at: float | None = None
    down: bool = False
    checked_at: float | None = None
    checking: bool = False


class PeerBook:
    """Reachability of the peers of one LoRa link."""

    def __init__(self, check_interval: float) -> None:
        self.check_interval = check_interval
        self._peers: dict[str, _Peer] = {}

    def heard(self, peer: str, now: float) -> bool:
        """``peer`` proved it is reachable at ``now``; True if it was down until now."""
        entry = self._peers.setdefault(peer, _Peer())
        was_down, entry.down, entry.heard_at = entry.down, False, now
        return was_down

    def failed(self, peer: str) -> bool:
        """``peer`` did not answer; True if it was not down until now."""
        entry = self._peers.setdefault(peer, _Peer())
        was_up, entry.down = not entry.down, True
        return was_up

    def knows(self, peer: str) -> bool:
        return peer in self._peers

    def is_down(self, peer: str) -> bool:
        entry = self._peers.get(peer)
        return entry is not None and entry.down

    def due(self, peer: str, now: float) -> bool:
        """Whether a reachability check of ``peer`` should start at ``now``."""
        entry = self._peers.setdefault(peer, _Peer())
        if entry.checking:
            return False
        latest = max((t for t in (entry.heard_at, entry.checked_at) if t is not None), default=None)
        return latest is None or now - latest >= self.check_interval

    def start_check(self, peer: str, now: float) -> None:
        entry = self._peers.setdefault(peer, _Peer())
        entry.checking, entry.checked_at = True, now

    def end_check(self, peer: str) -> None:
        self._peers.setdefault(peer, _Peer()).checking = False

    def down_peers(self) -> list[str]:
        return sorted(peer for peer, entry in self._peers.items() if entry.down)
