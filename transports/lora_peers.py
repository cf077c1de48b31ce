"""Which mesh peers a LoRa link can reach, and when to spend airtime asking.

A radio that is connected says nothing about the far radio: a partitioned mesh looks healthy from the
USB port. ``PeerBook`` (pure logic, times passed in) keeps per peer address the last proof of life (a
packet from it, its routing ACK, its answer to a traceroute), whether it is *suspect* (a send to it
ended without its ACK) or *down* (a traceroute went unanswered), and when it was last checked. ``due``
says when a check should go out: at once for a suspect peer (the failed send already cost several
packets, one more settles the question), after ``RECHECK_DOWN`` seconds (or ``check_interval`` if
shorter) for a down peer, and after ``check_interval`` of silence for any other; a peer heard from
within the interval is never checked, so busy peers cost no probe airtime. One check per peer at a time.

``PeerWatch`` runs the checks for a link: it keys peers by lower-case node id (remembering how the hub
spells each, for its events), starts a background check through the link's ``trace`` (a traceroute)
when one is due and the link's ``may_spend`` allows it, and reports changes as ``LinkChanged(peer=...)``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hub.core.tasks import cancel_and_wait
from hub.core.transport import LinkChanged

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


TraceOutcome = str | None
"""What a check found: None when the peer answered, else why not ("" when the radio itself failed)."""


class PeerWatch:
    """Reachability of one link's peers, checked in the background; see the module docstring."""

    def __init__(
        self,
        check_interval: float,
        *,
        trace: Callable[[str], Awaitable[TraceOutcome]],
        may_spend: Callable[[], bool],
        emit: Callable[[LinkChanged], None],
        log: logging.Logger,
    ) -> None:
        self._book = PeerBook(check_interval)
        self._trace = trace
        self._may_spend = may_spend
        self._emit = emit
        self._log = log
        self._spelling: dict[str, str] = {}
        """Book key (lower case) -> the node id as the hub wrote it."""
        self._checks: set[asyncio.Task[None]] = set()
        self.checks_started = 0

    def key(self, address: str) -> str:
        """The book's key for a node id the hub uses; remembers its spelling for events."""
        key = address.lower()
        self._spelling.setdefault(key, address)
        return key

    def knows(self, peer: str) -> bool:
        return self._book.knows(peer)

    def doubt(self, peer: str) -> str | None:
        """Why ``peer`` cannot be counted on now (down, or suspect and being checked), or None."""
        if self._book.is_down(peer):
            return "the peer's radio did not answer over the mesh"
        if self._book.is_suspect(peer):
            return "the last frame got no ACK; checking the peer"
        return None

    def down_peers(self) -> list[str]:
        return [self._spelling.get(peer, peer) for peer in self._book.down_peers()]

    def heard(self, peer: str) -> None:
        """A packet, ACK or answer came from ``peer``."""
        if self._book.heard(peer, time.monotonic()):
            self._emit(
                LinkChanged(up=True, reason="heard over the mesh", peer=self._spelling.get(peer, peer))
            )

    def suspect(self, peer: str) -> None:
        """A send to ``peer`` got no ACK: lost on the way, or the peer is gone; a check tells which."""
        self._book.suspect(peer)
        self.poke(peer)

    def poke(self, peer: str) -> None:
        """Start a check of ``peer`` if one is due and the airtime budget allows it."""
        if not self._book.due(peer, time.monotonic()) or not self._may_spend():
            return
        self._book.start_check(peer, time.monotonic())
        self.checks_started += 1
        task = asyncio.create_task(self._check(peer), name=f"lora-check-{peer}")
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def settled(self) -> None:
        """Wait until the checks running now have finished (for tests and shutdown)."""
        await asyncio.gather(*self._checks)

    async def aclose(self) -> None:
        for check in list(self._checks):
            await cancel_and_wait(check)

    async def _check(self, peer: str) -> None:
        try:
            outcome = await self._trace(peer)
        finally:
            self._book.end_check(peer)
        if outcome is None:
            self.heard(peer)
        elif outcome and self._book.failed(peer):  # "" is our own radio failing: nothing learnt
            self._log.warning("peer %s unreachable over the mesh: %s", peer, outcome)
            self._emit(LinkChanged(up=False, reason=outcome, peer=self._spelling.get(peer, peer)))
