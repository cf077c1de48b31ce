"""Task helpers used by every layer: supervise a background loop, and cancel a task without swallowing
the caller's own cancellation.

``cancel_and_wait`` exists because ``task.cancel(); with suppress(CancelledError): await task`` also
swallows a cancel aimed at the *caller* while it waits; the helper re-raises when the caller itself was
cancelled meanwhile (``Task.cancelling()`` rose), so shutdowns are never lost.
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

    A cancel counts as the caller's when its ``cancelling()`` count rose while it waited; one that was
    already in flight when the helper was called (cleanup in a cancelled task's ``finally``) is left to
    propagate by itself, so the rest of that cleanup still runs. The caller's cancel is re-raised even
    when the task swallowed it (asyncio forwards it to the awaited task). The task's own exception,
    other than its cancellation, is logged, not raised: the caller is tearing it down and has nothing
    better to do with it."""
    if task is None or (task.done() and task.cancelled()):
        return
    current = asyncio.current_task()
    before = current.cancelling() if current is not None else 0
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        if current is not None and current.cancelling() > before:
            raise
        return
    except Exception:
        log.exception("task %s failed while being cancelled", task.get_name())
    if current is not None and current.cancelling() > before:
        raise asyncio.CancelledError
