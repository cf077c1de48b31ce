"""Where a peer was last proven to be on a link, and when to believe that it moved.

On a link with signed address cards (internet) the card itself names the address, so a newer card simply
moves it. On a link without (LoRa) the address is the radio node a signed frame came *from*, which the
signature does not cover: anyone's radio can put a recorded frame back on the air. So, per peer and link:

- an address is learned from a signed frame that is new to us and fresh (``hub.relay.inbound``), and only
  a frame stamped *later* than the one that set the current address can change it: the same frame played
  again from another radio node, or an older one, teaches nothing (``STALE``);
- the address is *confirmed* once a second, later signed frame of the peer comes from the same radio
  node: its key holder is behind that radio, not one recording played back;
- a confirmed address that is working is not given up for a later frame from another radio node: that
  node is kept as the *candidate* (``HELD``) and takes over only when the link to the confirmed one is
  down (``promote``), which is also how a radio really replaced is found. An unconfirmed address moves at
  once (``MOVED``), so a care home whose first frame was replayed from elsewhere is found at its own
  radio with its next frame.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Learning(enum.Enum):
    """What one signed frame did to a peer's address on one link (counted per outcome)."""

    NEW = "new"
    CONFIRMED = "confirmed"
    MOVED = "moved"
    HELD = "held"
    STALE = "stale"
    SAME = "same"
    FULL = "full"
    """A new peer refused: the table holds ``MAX_LEARNED_PEERS`` already."""


MAX_LEARNED_PEERS = 4096
"""Peers learned without configuration, at most: only roster members are learned, so a municipality's
roster bounds the table long before this; the cap keeps it bounded whatever the roster says."""


@dataclass(slots=True)
class LearnedAddress:
    address: str
    stamped: int
    """Creation time of the newest signed frame that came from ``address``."""
    confirmed: bool = False
    candidate: str | None = None
    """Another address a later signed frame came from, while ``address`` was confirmed and working."""
    candidate_stamped: int = 0

    def offer(self, address: str, stamped: int, *, vouched: bool, working: bool) -> Learning:
        """A signed frame stamped ``stamped`` came from ``address``; ``vouched``: the address itself is
        signed (an address card); ``working``: the link to the current address is not down."""
        if address == self.address:
            if stamped <= self.stamped:
                return Learning.SAME
            self.stamped = stamped
            self.candidate = None  # the peer spoke again from here, later than from the candidate
            if self.confirmed:
                return Learning.SAME
            self.confirmed = True
            return Learning.CONFIRMED
        if vouched:
            self._move(address, stamped)
            return Learning.MOVED
        if stamped <= self.stamped:
            return Learning.STALE
        if self.confirmed and working:
            if stamped > self.candidate_stamped:
                self.candidate, self.candidate_stamped = address, stamped
            return Learning.HELD
        self._move(address, stamped)
        return Learning.MOVED

    def promote(self) -> str | None:
        """The link to the current address is down: the candidate, if any, takes over; its address."""
        if self.candidate is None:
            return None
        self._move(self.candidate, self.candidate_stamped)
        return self.address

    def _move(self, address: str, stamped: int) -> None:
        self.address, self.stamped, self.confirmed = address, stamped, False
        self.candidate, self.candidate_stamped = None, 0
