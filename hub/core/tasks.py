"""Task helpers used by every layer: supervise a background loop, and cancel a task without swallowing
the caller's own cancellation.

``cancel_and_wait`` exists because ``task.cancel(); with suppress(CancelledError): await task`` also
swallows a cancel aimed at the *caller* while it waits; the helper re-raises when the caller itself is
being cancelled (``Task.cancelling()``), so shutdowns are never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("beredt.tasks")


async def supervised(what: str, run: Callable[[], Awaitable[None]], *, pause: float = 1.0) -> None:
    """Run a background loop; if it fails, log it and start it again after a pause, so one faulty link
    or sensor never stops the hub (a cancel still ends it)."""
    while True:
        try:
            await run()
            return
        except Exception:
            log.exception("%s failed; restarting it in %.0f s", what, pause)
        await asyncio.sleep(pause)
        pause = min(pause * 2, 60.0)


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` and wait until it has finished; never hide a cancel aimed at the caller.

    The task's own exception (other than its cancellation) is logged, not raised: the caller is
    tearing it down and has nothing better to do with it."""
    if task is None or (task.done() and task.cancelled()):
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
    except Exception:
        log.exception("task %s failed while being cancelled", task.get_name())
