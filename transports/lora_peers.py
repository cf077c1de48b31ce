"""Which mesh peers a LoRa link can reach, and when to spend airtime asking.

A radio that is connected says nothing about the far radio: a partitioned mesh looks healthy from the
USB port. ``PeerBook`` keeps, per peer address, the last proof of life (a packet from it, its routing
ACK, its answer to a traceroute), whether it is *suspect* (a send to it ended without its ACK) or *down*
(a traceroute went unanswered), and when it was last checked.

``due`` says when a check (a traceroute) should go out: at once for a suspect peer (the failed send
already cost several packets, one more settles the question), after ``RECHECK_DOWN`` seconds (or
``check_interval`` if shorter) for a down peer, and after ``check_interval`` of silence for any other;
a peer heard from within the interval is never checked, so busy peers cost no probe airtime at all.
One check per peer at a time. Pure logic: times are passed in by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

RECHECK_DOWN = 60.0
"""Seconds between traceroutes to a peer that is down, so its return is noticed without traffic."""


@dataclass(slots=True)
class _Peer:
    heard_at: float | None = None
    checked_at: float | None = None
    suspect: bool = False
    down: bool = False
    checking: bool = False


class PeerBook:
    """Reachability of the peers of one LoRa link."""

    def __init__(self, check_interval: float) -> None:
        self.check_interval = check_interval
        self._peers: dict[str, _Peer] = {}

    def knows(self, peer: str) -> bool:
        return peer in self._peers

    def heard(self, peer: str, now: float) -> bool:
        """``peer`` proved it is reachable at ``now``; True if it was down or suspect until now."""
        entry = self._peers.setdefault(peer, _Peer())
        doubted = entry.down or entry.suspect
        entry.down = entry.suspect = False
        entry.heard_at = now
        return doubted

    def suspect(self, peer: str) -> None:
        """A send to ``peer`` ended without its ACK: check it before trusting it again."""
        entry = self._peers.setdefault(peer, _Peer())
        entry.suspect = not entry.down

    def failed(self, peer: str) -> bool:
        """``peer`` did not answer a check; True if it was not down until now."""
        entry = self._peers.setdefault(peer, _Peer())
        newly = not entry.down
        entry.down, entry.suspect = True, False
        return newly

    def is_down(self, peer: str) -> bool:
        entry = self._peers.get(peer)
        return entry is not None and entry.down

    def is_suspect(self, peer: str) -> bool:
        entry = self._peers.get(peer)
        return entry is not None and entry.suspect

    def due(self, peer: str, now: float) -> bool:
        """Whether a reachability check of ``peer`` should start at ``now``."""
        entry = self._peers.setdefault(peer, _Peer())
        if entry.checking:
            return False
        if entry.suspect:
            return True
        wait = min(self.check_interval, RECHECK_DOWN) if entry.down else self.check_interval
        latest = max((t for t in (entry.heard_at, entry.checked_at) if t is not None), default=None)
        return latest is None or now - latest >= wait

    def start_check(self, peer: str, now: float) -> None:
        entry = self._peers.setdefault(peer, _Peer())
        entry.checking, entry.checked_at = True, now

    def end_check(self, peer: str) -> None:
        self._peers.setdefault(peer, _Peer()).checking = False

    def down_peers(self) -> list[str]:
        return sorted(peer for peer, entry in self._peers.items() if entry.down)
