"""Where a paced message's time goes on its way A -> B -> C (``bench_relay.py --stages``).

Each paced message is stamped, all on this machine's wall clock:

    sent      A hands the POST carrying it to B's link port (the generator, before the POST)
    taken     B answered that POST (2xx): B's link has read the body and queued the frame
    hop ack   B's hop ack for it reached A: B has committed it (B acks only after its commit), plus
              B's hop-ack gathering delay and the ack's POST back to A
    received  B's POST carrying it reached C's link (C's receive queue took it): B verified, committed,
              routed and POSTed it, including the link's batch delay and any POST ahead of it
    committed C published ``MessageReceived`` (after its commit)

The stages are the differences: A -> B taken, B taken -> C received, C received -> C committed (these
three add up to the end-to-end latency), and, alongside, B taken -> hop ack at A. For the slowest 1 %
and for all messages the report gives each stage's median and mean, which stage was the largest for how
many of the slowest, and the size of the POST from B that carried them to C.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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


STAGES = ("A -> B taken", "B taken -> C received", "C received -> C committed")


def report(
    sent: dict[str, float],
    taken: dict[str, float],
    hop_acked: dict[str, float],
    receipts: ReceiptClock,
    committed: dict[str, float],
) -> list[str]:
    """Lines describing where the time of the slowest 1 % went, next to all messages'."""
    rows = []
    for key, start in sent.items():
        if key in committed and key in taken and key in receipts.at:
            stamps = (start, taken[key], receipts.at[key], committed[key])
            parts = [(b - a) * 1000 for a, b in itertools.pairwise(stamps)]
            ack = (hop_acked[key] - taken[key]) * 1000 if key in hop_acked else float("nan")
            rows.append(((committed[key] - start) * 1000, parts, ack, receipts.post_size.get(key, 0)))
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
    return lines


def _pair(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} / {statistics.fmean(values):.1f}"
