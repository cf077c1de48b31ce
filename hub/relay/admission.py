"""Admission of inbound frames: who sent it, is it genuine, is it still valid, may they send it.

Every frame from a link passes ``Admission.check`` before it touches the store. Refusals raise
``TrustError`` with a ``RefusalReason`` and are counted per reason so operators can see an attack or a
misconfigured peer. Replay (an id already stored) is decided by the store, but counted here too.
Expiry is only enforced while the clock is trusted: a Pi that booted in 1970 must not refuse every
fresh frame, nor accept every stale one as fresh (``created`` far in the future is also refused when
the clock is trusted).
"""

from __future__ import annotations

import logging
from collections import Counter

from cryptography.exceptions import InvalidSignature

from hub.core.clock import Clock
from hub.core.errors import RefusalReason, TrustError
from hub.core.frame import Frame, Kind
from hub.relay.roster import Roster, RosterEntry
from hub.relay.roster_updates import RosterUpdates

log = logging.getLogger("beredt.trust")

MAX_HOPS = 16
MAX_FUTURE_SKEW = 600  # seconds a sender's clock may run ahead of ours
LOG_BURST = 20  # refusals logged per reason per window; the rest are only counted
LOG_WINDOW = 60.0


class Admission:
    def __init__(self, roster: Roster, clock: Clock, updates: RosterUpdates | None = None) -> None:
        self.roster = roster
        self.clock = clock
        self.updates = updates
        self.refused: Counter[str] = Counter()
        self._log_windows: dict[RefusalReason, list[float]] = {}

    def refuse(self, reason: RefusalReason, detail: str, source: str) -> TrustError:
        self.refused[reason.value] += 1
        self._log(reason, detail, source)
        return TrustError(reason, detail)

    def _log(self, reason: RefusalReason, detail: str, source: str) -> None:
        """Log a refusal, at most ``LOG_BURST`` per reason per ``LOG_WINDOW`` seconds: a flood of refused
        frames must not fill the disk with log lines (the counters still count every one)."""
        now = self.clock.monotonic()
        window = self._log_windows.get(reason)
        if window is None or now - window[0] >= LOG_WINDOW:
            if window is not None and window[1] > LOG_BURST:
                log.warning(
                    "%d more %s refusals in the last %.0f s were not logged",
                    window[1] - LOG_BURST,
                    reason.value,
                    now - window[0],
                )
            window = self._log_windows[reason] = [now, 0]
        window[1] += 1
        if window[1] <= LOG_BURST:
            log.warning("refused frame from %s: %s (%s)", source, reason.value, detail)

    def check(self, frame: Frame, source: str) -> RosterEntry:
        """Return the sender's roster entry, or raise ``TrustError`` (already counted and logged)."""
        entry = self.roster.get(frame.sender) or self._vouched(frame, source)
        if entry is None:
            if self.roster.is_revoked(frame.sender):
                raise self.refuse(
                    RefusalReason.REVOKED, f"sender {frame.sender.hex()} is revoked by the roster", source
                )
            if self.roster.out_of_scope(frame.sender):
                raise self.refuse(
                    RefusalReason.OUT_OF_SCOPE,
                    f"sender {frame.sender.hex()} is outside the scope our root cross-certified",
                    source,
                )
            raise self.refuse(
                RefusalReason.UNKNOWN_SENDER, f"sender {frame.sender.hex()} not in roster", source
            )
        try:
            entry.verify_key.verify(frame.signature, frame.signed_bytes)
        except InvalidSignature:
            raise self.refuse(
                RefusalReason.BAD_SIGNATURE, f"signature of {entry.name} does not verify", source
            ) from None
        if frame.kind not in entry.kinds:
            raise self.refuse(
                RefusalReason.NOT_ALLOWED, f"{entry.name} may not send {frame.kind.name}", source
            )
        if frame.hops > MAX_HOPS:
            raise self.refuse(RefusalReason.HOP_LIMIT, f"{frame.hops} hops", source)
        if self.clock.trusted:
            now = self.clock.time()
            if entry.valid_until and now >= entry.valid_until:
                raise self.refuse(RefusalReason.EXPIRED, f"{entry.name}'s place in the roster ended", source)
            if frame.expires <= now:
                raise self.refuse(RefusalReason.EXPIRED, f"expired {int(now - frame.expires)} s ago", source)
            if frame.created > now + MAX_FUTURE_SKEW:
                raise self.refuse(
                    RefusalReason.EXPIRED, f"created {int(frame.created - now)} s in the future", source
                )
        return entry

    def _vouched(self, frame: Frame, source: str) -> RosterEntry | None:
        """A sender we do not know yet, vouched for by the root-signed roster version it carries.

        This is how a new hub, configured with only the root key, trusts its first ROSTER frame: the
        version must verify against the root and list the sender; the frame's own signature is then
        checked against that card as for any other sender. A later page of the same version is vouched
        for by the card in an earlier one this hub holds."""
        if frame.kind is not Kind.ROSTER or self.updates is None or self.roster.is_revoked(frame.sender):
            return None
        try:
            collector, page = self.updates.check_any(frame.payload)
        except TrustError as exc:
            raise self.refuse(exc.reason, str(exc), source) from None
        return collector.vouched(page, frame.sender)
