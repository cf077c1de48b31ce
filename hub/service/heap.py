"""The process's heap once the hub is up: what start-up made is set aside from garbage collection.

Python's full (oldest-generation) collection walks every container object the process holds, and stops
the event loop while it does: every frame in flight waits. In ``beredt run`` some 60 000 of them are the
modules, classes and functions imported at start and the hub's long-lived parts; in the relay benchmark a
full collection took 57-68 ms of CPU there (development machine, under load), which at 500 messages/s
delayed some 30 frames by that much: the bulk of the worst 1 %. Objects that live as long as the process
need never be walked again, so once the hub is ready ``settle`` collects what start-up left behind and
freezes the rest (``gc.freeze``): later full collections walk only what was made since.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("beredt.server")


def settle() -> None:
    """Collect start-up's garbage, then leave every object alive now out of later collections."""
    gc.collect()
    gc.freeze()
    log.debug("heap settled: %d objects left out of garbage collection", gc.get_freeze_count())
