"""Asking trusted peers for the time, live, while this hub's own clock cannot be trusted.

Every ``ASK_INTERVAL`` seconds while the clock is untrusted (and every ``CHECK_INTERVAL`` while the time
in use came from neighbours), each configured peer is sent a fresh random nonce over a link that can
carry a time challenge (``AsksTime``: the internet link's probe). Its reading counts only if the answer
is signed by that peer's roster key, names that very nonce and came back within ``MAX_ROUND_TRIP``
seconds; the reading is its time plus half the round trip. ``NeighbourTime`` then needs two peers that
agree before it sets the clock. Nothing recorded can answer a nonce that did not exist before the
question, so replayed frames or answers never move the clock.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature

from hub.core.clock import Clock
from hub.core.errors import ProtocolError, TransportError
from hub.core.time_answer import MAX_ROUND_TRIP, NONCE_SIZE, TimeAnswer
from hub.core.transport import AsksTime
from hub.relay.links import LinkSet
from hub.relay.roster import Roster
from hub.relay.timesync import NeighbourTime

log = logging.getLogger("beredt.clock")

ASK_INTERVAL = 10.0  # seconds between rounds while the clock is untrusted
CHECK_INTERVAL = 300.0  # seconds between rounds while neighbours' time is in use


class TimeChallenges:
    def __init__(
        self, links: LinkSet, roster: Callable[[], Roster], clock: Clock, neighbour_time: NeighbourTime
    ) -> None:
        self.links = links
        self.roster = roster
        """The roster in force (it is replaced when reloaded)."""
        self.clock = clock
        self.neighbour_time = neighbour_time
        self.answers = 0
        """Answers taken: signed by the peer asked, naming our nonce, in time."""
        self.refused = 0
        """Answers that were malformed, not the peer's, for another nonce, or too slow."""

    async def run(self) -> None:
        """Never returns; asks only while the clock needs it."""
        while True:
            if not self.clock.trusted:
                await self.ask_round()
                await asyncio.sleep(ASK_INTERVAL)
            elif self.neighbour_time.owns_clock:
                await self.ask_round()
                await asyncio.sleep(CHECK_INTERVAL)
            else:
                await asyncio.sleep(ASK_INTERVAL)

    async def ask_round(self) -> None:
        """Ask every configured peer once, all at the same time."""
        await asyncio.gather(*(self._ask(node) for node in list(self.links.peers)))

    async def _ask(self, node: bytes) -> None:
        peer = self.links.peers[node]
        for link, transport in self.links.transports.items():
            address = peer.address(link)
            if address is None or not isinstance(transport, AsksTime):
                continue
            nonce = secrets.token_bytes(NONCE_SIZE)
            asked = self.clock.monotonic()
            try:
                async with asyncio.timeout(MAX_ROUND_TRIP):
                    text = await transport.ask_time(address, nonce)
            except (TimeoutError, TransportError) as exc:
                log.debug("time challenge to %s on %s failed: %s", peer.name, link, exc)
                continue
            if text is not None and self._take(node, nonce, text, asked):
                return  # one reading per peer and round

    def _take(self, node: bytes, nonce: bytes, text: str, asked: float) -> bool:
        entry = self.roster().get(node)
        answered = self.clock.monotonic()
        try:
            answer = TimeAnswer.decode(text)
            if entry is None or answer.node != node or answer.nonce != nonce:
                raise ProtocolError("not this peer's answer to our nonce")
            entry.verify_key.verify(answer.signature, answer.signed_message())
            if answered - asked > MAX_ROUND_TRIP:
                raise ProtocolError(f"answered after {answered - asked:.1f} s")
        except (ProtocolError, InvalidSignature) as exc:
            self.refused += 1
            log.warning("refused time answer from %s: %s", node.hex(), exc or "signature does not verify")
            return False
        self.answers += 1
        self.neighbour_time.offer(node, answer.unix_ms / 1000 + (answered - asked) / 2)
        return True
