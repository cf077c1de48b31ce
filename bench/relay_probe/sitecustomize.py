"""A probe loaded into the relay `beredt run` process by ``bench_relay.py --stages`` (through PYTHONPATH;
Python imports ``sitecustomize`` at start-up). It changes nothing the hub does; it only writes, to the
file named by ``BEREDT_BENCH_PROBE``, one line per event-loop stall and per garbage collection:

    loop <wall-clock time the stall ended> <ms a 5 ms timer ran late>   (only when more than 1 ms late)

(5 ms rather than 1 ms: 200 wake-ups a second cost the relay little; a stall shorter than the period
may end unseen, but the tail's stalls are tens of milliseconds.)
    gc <wall-clock time it ended> <ms it took> <generation>

With ``BEREDT_BENCH_PROBE_LOOP=0`` only the collections are written (no timer: the hub's CPU is measured).
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
from typing import Any, TextIO

_PATH = os.environ.get("BEREDT_BENCH_PROBE")
PERIOD = 0.005


def _install(out: TextIO) -> None:
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            out.write(
                f"gc {time.time():.6f} {(time.perf_counter() - started[0]) * 1000:.3f} {info['generation']}\n"
            )

    gc.callbacks.append(on_gc)
    if os.environ.get("BEREDT_BENCH_PROBE_LOOP") == "0":
        return
    base = asyncio.get_event_loop_policy()

    class Policy(type(base)):  # type: ignore[misc]
        def new_event_loop(self) -> asyncio.AbstractEventLoop:
            loop = super().new_event_loop()

            def tick(due: float) -> None:
                late = (loop.time() - due) * 1000
                if late > 1.0:
                    out.write(f"loop {time.time():.6f} {late:.3f}\n")
                loop.call_later(PERIOD, tick, loop.time() + PERIOD)

            loop.call_soon(tick, loop.time())
            return loop

    asyncio.set_event_loop_policy(Policy())


if _PATH:
    _install(open(_PATH, "a", buffering=1))  # noqa: SIM115 - open for the life of the process
