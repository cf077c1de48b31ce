"""``run_blocking``: a blocking call on its own thread, its outcome on the loop, late results disposed of."""

from __future__ import annotations

import asyncio
import threading

import pytest

from transports.blocking import run_blocking

WAIT = 10.0  # generous: the machine is shared; every wait below ends on an event long before this


async def test_result_and_thread_name_come_back() -> None:
    seen: list[str] = []

    def call() -> int:
        seen.append(threading.current_thread().name)
        return 42

    assert await run_blocking(call, deadline=WAIT, name="beredt-test-call") == 42
    assert seen == ["beredt-test-call"]
    assert seen[0] != threading.current_thread().name


async def test_the_call_s_exception_reaches_the_caller() -> None:
    def call() -> None:
        raise OSError("port vanished")

    with pytest.raises(OSError, match="port vanished"):
        await run_blocking(call, deadline=WAIT)


async def test_a_library_that_exits_fails_only_this_call() -> None:
    def call() -> None:
        raise SystemExit("bad argument")

    with pytest.raises(RuntimeError, match="the library gave up: bad argument"):
        await run_blocking(call, deadline=WAIT)


async def test_a_result_after_the_deadline_goes_to_orphan_on_its_own_thread() -> None:
    release, disposed = threading.Event(), threading.Event()
    orphans: list[tuple[str, str]] = []

    def call() -> str:
        release.wait(WAIT)
        return "interface"

    def orphan(result: str) -> None:
        orphans.append((result, threading.current_thread().name))
        disposed.set()

    with pytest.raises(TimeoutError):
        await run_blocking(call, deadline=0.05, orphan=orphan, name="beredt-test-connect")
    release.set()
    assert await asyncio.to_thread(disposed.wait, WAIT)
    assert orphans == [("interface", "beredt-test-connect-orphan")]


async def test_a_cancelled_caller_leaves_the_late_result_to_orphan() -> None:
    started, release, disposed = threading.Event(), threading.Event(), threading.Event()

    def call() -> str:
        started.set()
        release.wait(WAIT)
        return "socket"

    task = asyncio.create_task(run_blocking(call, deadline=WAIT, orphan=lambda _: disposed.set()))
    assert await asyncio.to_thread(started.wait, WAIT)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    assert await asyncio.to_thread(disposed.wait, WAIT)


async def test_a_late_failure_is_not_handed_to_orphan() -> None:
    release, finished = threading.Event(), threading.Event()
    orphans: list[object] = []

    def call() -> str:
        try:
            release.wait(WAIT)
            raise OSError("handshake failed")
        finally:
            finished.set()

    with pytest.raises(TimeoutError):
        await run_blocking(call, deadline=0.05, orphan=orphans.append)
    release.set()
    assert await asyncio.to_thread(finished.wait, WAIT)
    await asyncio.sleep(0.1)  # let the thread's hand-over to the loop run; orphan must still not be called
    assert orphans == []
