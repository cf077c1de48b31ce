"""Time from neighbours, for a hub whose own clock cannot be trusted (a Pi without a real-time clock that
booted in 1970 after a power cut), taken only as far as it is safe.

A signed timestamp proves who stamped a frame, not when it was sent: a recorded frame can be replayed
days later, and the hop counter that says "straight from the signer" is outside the signature. So:

- frames never count; only live readings do: answers to a fresh time challenge, signed by the peer
  asked and back within seconds (``hub.relay.time_challenge``), one latest reading per signer;
- the clock moves only when at least ``quorum`` distinct signers agree, within ``agree`` seconds, on what
  the time is now; one stolen key is not enough;
- once the clock reads right, neighbours may only nudge it by ``max_step`` seconds at a time, and only
  while it is they who set it. A clock that is right by itself (past 2025 on its own) or was set from GPS
  or Iridium network time is never touched, and such a hint replaces neighbours' time at once.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass

from hub.core.clock import PLAUSIBLE_EPOCH, Clock

log = logging.getLogger("beredt.clock")

QUORUM = 2
AGREE = 120.0  # seconds two signers' readings of "now" may differ and still count as agreeing
SAMPLE_LIFETIME = 600.0  # seconds a signer's reading stays usable
MAX_STEP = 60.0  # seconds a clock set from neighbours may move per correction once it reads right
MIN_STEP = 5.0  # smaller differences are transit time and skew, not worth a correction


@dataclass(frozen=True, slots=True)
class _Sample:
    reading: float  # the signer's time when we received it
    received: float  # monotonic


class NeighbourTime:
    """Collects live signed readings from trusted neighbours and corrects ``clock`` by consensus."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.owns_clock = False
        """True while the clock's time came from neighbours (an outside hint takes it back)."""
        self._samples: dict[bytes, _Sample] = {}

    def offer(self, signer: bytes, reading: float) -> None:
        """``signer``'s clock read ``reading`` just now, by its signed answer to our fresh challenge."""
        if reading < PLAUSIBLE_EPOCH or (self.clock.trusted and not self.owns_clock):
            return
        now = self.clock.monotonic()
        self._samples[signer] = _Sample(reading, now)
        readings = {
            who: sample.reading + (now - sample.received)
            for who, sample in self._samples.items()
            if now - sample.received <= SAMPLE_LIFETIME
        }
        self._samples = {who: self._samples[who] for who in readings}
        agreeing = _largest_agreeing(readings)
        if len(agreeing) < QUORUM:
            return
        consensus = statistics.median_low(readings[who] for who in agreeing)
        signers = ", ".join(sorted(who.hex() for who in agreeing))
        if not self.clock.trusted:
            log.warning("clock untrusted; taking time from the signed answers of %s", signers)
            self.clock.correct(consensus, f"signed answers of {signers}")
            self.owns_clock = True
            return
        difference = consensus - self.clock.time()
        if abs(difference) < MIN_STEP:
            return
        step = max(-MAX_STEP, min(MAX_STEP, difference))
        log.info("clock %+.0f s towards the signed answers of %s (%+.0f s off)", step, signers, difference)
        self.clock.correct(self.clock.time() + step, f"signed answers of {signers}")

    def outside_hint(self) -> None:
        """GPS or Iridium time was taken: it outranks neighbours from now on."""
        self.owns_clock = False
        self._samples.clear()


def _largest_agreeing(readings: dict[bytes, float]) -> list[bytes]:
    """The largest group of signers whose readings lie within ``AGREE`` seconds of each other."""
    ordered = sorted(readings, key=readings.__getitem__)
    best: list[bytes] = []
    start = 0
    for end, who in enumerate(ordered):
        while readings[who] - readings[ordered[start]] > AGREE:
            start += 1
        if end + 1 - start > len(best):
            best = ordered[start : end + 1]
    return best
