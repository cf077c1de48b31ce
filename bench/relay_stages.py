"""Where a paced message's time goes on its way A -> B -> C (``bench_relay.py --stages``).

Each paced message is stamped, all on this machine's wall clock:

    sent      A hands it to its internet link (the link's pump then POSTs it to B's link port)
    taken     B answered that POST (2xx): B's link has read the body and queued the frame
    hop ack   B's hop ack for it reached A: B has committed it (B acks only after its commit), plus
              B's hop-ack gathering delay and the ack's POST back to A
    received  B's POST carrying it reached C's link (C's receive queue took it): B verified, committed,
              routed and POSTed it, including the link's batch delay and any POST ahead of it
    committed C published ``MessageReceived`` (after its commit)

The stages are the differences: A -> B taken, B taken -> C received, C received -> C committed (these
three add up to the end-to-end latency), and, alongside, B taken -> hop ack at A. For the slowest 1 %
and for all messages the report gives each stage's median and mean, which stage was the largest for how
many of the slowest, the size of the POST from B that carried them to C, and the longest stall of C's
event loop (a 1 ms timer run late) while each was between B and C: B's POST is read only when C's loop
gets to it, so such a stall counts in "B taken -> C received". B's own loop stalls and garbage
collections in the same interval come from a probe loaded into B (relay_probe/sitecustomize.py), which
only observes: a 5 ms timer on B's loop and ``gc.callbacks``.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.core.frame import decode_frame
from hub.core.transport import Received


@dataclass
class ReceiptClock:
    """When each frame B POSTed reached C's link, and how many frames that POST carried (stamped where
    C's link queues a frame for the hub: the queue's ``put_nowait``, observed, not replaced)."""

    at: dict[str, float] = field(default_factory=dict)
    post_size: dict[str, int] = field(default_factory=dict)
    _post: list[str] = field(default_factory=list)

    def observe(self, queue: Any) -> None:
        put: Callable[[object, int], None] = queue.put_nowait
        loop = asyncio.get_running_loop()

        def stamped(item: object, rank: int) -> None:
            put(item, rank)
            if isinstance(item, Received):
                if not self._post:
                    loop.call_soon(self.end_post)
                key = decode_frame(item.data).id.hex()
                self.at.setdefault(key, time.time())
                self._post.append(key)

        queue.put_nowait = stamped

    def end_post(self) -> None:
        """Runs right after the handler that queued the frames stamped since: they were one POST's (a
        handler queues a POST's frames in one go, without an await)."""
        for key in self._post:
            self.post_size.setdefault(key, len(self._post))
        self._post.clear()


@dataclass
class LoopLag:
    """How late C's event loop ran a 1 ms timer, over time: a late timer means the loop was busy (or the
    process waited for a CPU), and B's POSTs waited for C's loop to be read as long."""

    late: list[tuple[float, float]] = field(default_factory=list)  # (wall-clock time, ms late)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + 0.001
            await asyncio.sleep(0.001)
            lateness = (loop.time() - due) * 1000
            if lateness > 1.0:
                self.late.append((time.time(), lateness))

    def worst(self, start: float, end: float) -> float:
        """The longest stall that ended between ``start`` and ``end`` (ms; 0 if none)."""
        return max((ms for when, ms in self.late if start <= when <= end), default=0.0)

    def total(self, start: float, end: float) -> float:
        """Milliseconds of the stalls (or pauses) that ended between ``start`` and ``end``."""
        return sum(ms for when, ms in self.late if start <= when <= end)


def relay_probe(path: Path) -> tuple[LoopLag, LoopLag]:
    """B's loop stalls and B's garbage collections, as its probe (relay_probe/sitecustomize.py) wrote."""
    stalls, collections = LoopLag(), LoopLag()
    text = path.read_text() if path.exists() else ""
    for line in text.splitlines():
        kind, when, ms, *_ = line.split()
        (stalls if kind == "loop" else collections).late.append((float(when), float(ms)))
    return stalls, collections


STAGES = ("A -> B taken", "B taken -> C received", "C received -> C committed")


def report(
    sent: dict[str, float],
    taken: dict[str, float],
    hop_acked: dict[str, float],
    receipts: ReceiptClock,
    committed: dict[str, float],
    lag: LoopLag,
    relay: tuple[LoopLag, LoopLag] | None,
) -> list[str]:
    """Lines describing where the time of the slowest 1 % went, next to all messages'."""
    rows = []
    for key, start in sent.items():
        if key in committed and key in taken and key in receipts.at:
            stamps = (start, taken[key], receipts.at[key], committed[key])
            parts = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
            ack = (hop_acked[key] - taken[key]) * 1000 if key in hop_acked else float("nan")
            between = (taken[key], receipts.at[key])
            b_stall, b_gc = (relay[0].worst(*between), relay[1].total(*between)) if relay else (0.0, 0.0)
            rows.append(
                (
                    (committed[key] - start) * 1000, parts, ack, receipts.post_size.get(key, 0),
                    lag.worst(*between), b_stall, b_gc,
                )
            )  # fmt: skip
    if not rows:
        return ["stages: no message has every stamp"]
    rows.sort(key=lambda row: row[0])
    tail = rows[-max(1, len(rows) // 100) :]
    lines = [
        f"stages of the slowest 1 % ({len(tail)} messages, end-to-end {tail[0][0]:.1f}-{tail[-1][0]:.1f} ms)"
        f" and of all {len(rows):,}, ms (median / mean):",
        f"  {'stage':<34}{'slowest 1 %':>18}{'all':>18}{'largest in tail':>18}",
    ]
    for index, name in enumerate(STAGES):
        largest = sum(1 for row in tail if max(range(3), key=row[1].__getitem__) == index)
        lines.append(
            f"  {name:<34}{_pair([r[1][index] for r in tail]):>18}{_pair([r[1][index] for r in rows]):>18}"
            f"{largest:>18}"
        )
    acks = [r[2] for r in rows if r[2] == r[2]]
    tail_acks = [r[2] for r in tail if r[2] == r[2]]
    lines.append(f"  {'(B taken -> B hop ack at A)':<34}{_pair(tail_acks):>18}{_pair(acks):>18}")
    lines.append(
        f"  {'(frames in B POST to C that held it)':<34}{_pair([float(r[3]) for r in tail]):>18}"
        f"{_pair([float(r[3]) for r in rows]):>18}"
    )
    lines.append(
        f"  {'(longest C loop stall meanwhile)':<34}{_pair([r[4] for r in tail]):>18}"
        f"{_pair([r[4] for r in rows]):>18}"
    )
    if relay is not None:
        start, end = min(sent.values()), max(committed.values())
        pauses = [ms for when, ms in relay[1].late if start <= when <= end]
        stalls = [ms for when, ms in relay[0].late if start <= when <= end]
        lines.append(
            f"  over the whole phase, B: {len(pauses)} garbage collections, {sum(pauses):.0f} ms in all,"
            f" longest {max(pauses, default=0):.1f} ms; loop stalls over 1 ms: {len(stalls)},"
            f" {sum(stalls):.0f} ms in all, longest {max(stalls, default=0):.1f} ms"
        )
        for index, label in (
            (5, "(longest B loop stall meanwhile)"),
            (6, "(B garbage collection meanwhile)"),
        ):
            lines.append(
                f"  {label:<34}{_pair([r[index] for r in tail]):>18}{_pair([r[index] for r in rows]):>18}"
            )
    return lines


def _pair(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {statistics.fmean(values):.1f}"
