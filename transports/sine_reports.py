"""SDS-TL delivery reports on a SINE link: the frames that wait for one, and what each report means.

Every frame asks for a "received" report under an SDS-TL reference (0-255) that is unique per peer
among the frames still waiting. ``ReportBook`` hands out those references, follows a frame whose
reference the radio replaced with its own, and settles the frame's future when its report comes:
delivered; ``LinkDown`` for an unreachable peer (held down in ``PeerHold`` as well) or a busy one;
``DeliveryRefused`` for any other definitive failure. A temporary status keeps the frame waiting. A
report without its calling party is matched by its reference alone when that names one waiting frame.
"""

from __future__ import annotations

import asyncio
import logging
import random

from hardware import tetra_pei as pei
from hub.core.errors import BudgetExhausted, DeliveryRefused, LinkDown, TransportError
from transports.sine_peers import PeerHold
from transports.sine_queue import settle

_UNREACHABLE = {pei.DeliveryStatus.DESTINATION_NOT_REGISTERED, pei.DeliveryStatus.DESTINATION_NOT_REACHABLE}


class ReportBook:
    """The frames of the link named ``name`` awaiting their report, by (peer ISSI, reference)."""

    def __init__(self, name: str, peers: PeerHold, log: logging.Logger) -> None:
        self._name = name
        self._peers = peers
        self._log = log
        self._waiting: dict[tuple[str, int], asyncio.Future[None]] = {}
        self._next_ref = random.randrange(256)

    def __len__(self) -> int:
        return len(self._waiting)

    def allocate(self, peer: str, retry_after: float) -> int:
        """A reference no frame to ``peer`` waits under; ``BudgetExhausted`` if all 256 are taken."""
        for _ in range(256):
            self._next_ref = (self._next_ref + 1) % 256
            if (peer, self._next_ref) not in self._waiting:
                return self._next_ref
        raise BudgetExhausted(
            "256 frames await reports", transport=self._name, peer=peer, retry_after=retry_after
        )

    def wait(self, peer: str, ref: int, future: asyncio.Future[None]) -> None:
        self._waiting[(peer, ref)] = future

    def forget(self, peer: str, ref: int, future: asyncio.Future[None]) -> None:
        """The sender stopped waiting (settled or given up): free its reference."""
        if self._waiting.get((peer, ref)) is future:
            del self._waiting[(peer, ref)]

    def rekey(self, peer: str, ref: int, radio_ref: int) -> None:
        """The radio put its own reference on the frame: its report will come back under that one."""
        future = self._waiting.pop((peer, ref), None)
        if future is not None:
            self._waiting[(peer, radio_ref)] = future

    def fail_all(self, error: TransportError) -> None:
        for future in self._waiting.values():
            settle(future, error)

    def on_report(self, source: str | None, report: pei.Report) -> None:
        if source is None:
            waiting = [peer for peer, ref in self._waiting if ref == report.ref]
            if len(waiting) != 1:
                self._log.info("%s: report for ref %d without a calling party", self._name, report.ref)
                return
            source = waiting[0]
        future = self._waiting.get((source, report.ref))
        if future is None or future.done():
            if pei.outcome(report.status) is pei.Outcome.DELIVERED:
                self._peers.up(source, "a late delivery report came")  # it is alive after all
            self._log.debug("%s: report for no waiting frame: %s from %s", self._name, report, source)
            return
        name = pei.status_name(report.status)
        match pei.outcome(report.status):
            case pei.Outcome.DELIVERED:
                self._peers.up(source)
                future.set_result(None)
            case pei.Outcome.TEMPORARY:
                self._log.info("%s: %s to %s delayed: %s", self._name, report.ref, source, name)
            case pei.Outcome.FLOW_CONTROL:
                future.set_exception(LinkDown(f"destination busy: {name}", transport=self._name, peer=source))
            case pei.Outcome.FAILED if report.status in _UNREACHABLE:
                self._peers.down(source, name)
                future.set_exception(LinkDown(name, transport=self._name, peer=source))
            case pei.Outcome.FAILED:
                future.set_exception(DeliveryRefused(name, transport=self._name, peer=source, reason=name))
