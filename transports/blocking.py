"""Blocking library calls from the event loop: each on a daemon thread of its own, with a deadline.

Thread-based libraries (meshtastic's serial and TCP interfaces, paho's connect) offer calls that block for
as long as a lost radio or a silent host makes them. ``run_blocking`` runs such a call on a thread of its
own, not the loop's shared executor, so a call that hangs neither starves other work nor holds up the
loop's shutdown, and hands the outcome back through ``loop.call_soon_threadsafe``. The caller stops
waiting at its deadline; a result that arrives after that (an open interface, a socket) would be owned by
nobody, so ``orphan`` disposes of it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def run_blocking(
    call: Callable[[], T],
    *,
    deadline: float,
    orphan: Callable[[T], None] | None = None,
    name: str = "beredt-blocking",
) -> T:
    """Run ``call`` on a daemon thread named ``name``, waiting at most ``deadline`` seconds.

    Raises what ``call`` raised (a ``SystemExit`` becomes ``RuntimeError``: only this call fails), or
    ``TimeoutError`` at the deadline; a cancel stops the wait, not the thread. If nobody waits any more
    when the call returns, ``orphan`` (if given) gets its result on a thread of its own, off the loop,
    because disposing of it may block too.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():  # nobody waits any more: dispose of the result off the loop (closing blocks)
            if orphan is not None and error is None:
                threading.Thread(target=orphan, args=(result,), name=f"{name}-orphan", daemon=True).start()
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = call()
        except SystemExit as exc:  # meshtastic "exits" on some bad arguments: only this call fails
            outcome: tuple[T | None, BaseException | None] = (
                None,
                RuntimeError(f"the library gave up: {exc}"),
            )
        except BaseException as exc:
            outcome = (None, exc)
        else:
            outcome = (result, None)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:
            if orphan is not None and outcome[1] is None:
                orphan(outcome[0])  # type: ignore[arg-type]

    threading.Thread(target=run, name=name, daemon=True).start()
    # asyncio.timeout, not wait_for: Python 3.11's wait_for swallows a cancellation that arrives just as
    # the call finishes (a TCP write returns at once), and a cancelled send would then wait for its ACK.
    async with asyncio.timeout(deadline):
        return await future
