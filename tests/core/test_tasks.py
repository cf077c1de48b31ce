"""``cancel_and_wait`` and ``supervised``: a cancel aimed at the caller always reaches it, one aimed at
the task never does, and cleanup that follows the helper still runs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hub.core.tasks import cancel_and_wait, supervised


async def _forever() -> None:
    await asyncio.Event().wait()


async def test_the_tasks_own_cancel_stays_with_the_task() -> None:
    task = asyncio.create_task(_forever())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_task_that_never_started_is_cancelled_and_awaited() -> None:
    task = asyncio.create_task(_forever())
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_nothing_to_do_for_none_or_finished_tasks() -> None:
    await cancel_and_wait(None)
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await cancel_and_wait(done)
    assert done.done() and not done.cancelled()


async def test_the_callers_own_cancel_propagates_while_it_waits() -> None:
    """The task takes a while to wind down; the caller is cancelled meanwhile and must end cancelled."""
    winding_down = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await _forever()
        finally:
            winding_down.set()
            await asyncio.sleep(0.05)

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    after_helper = asyncio.Event()

    async def caller() -> None:
        await cancel_and_wait(task)
        after_helper.set()

    outer = asyncio.create_task(caller())
    await winding_down.wait()
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert outer.cancelled()
    assert not after_helper.is_set()
    assert task.done()


async def test_the_callers_cancel_survives_a_task_that_ignores_cancels() -> None:
    """A task that swallows every cancel and returns also swallows the caller's (forwarded to it by
    asyncio); the helper restores it."""
    release = asyncio.Event()
    waiting = asyncio.Event()

    async def stubborn() -> None:
        while True:
            try:
                waiting.set()
                await release.wait()
                return
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn())
    await waiting.wait()
    outer = asyncio.create_task(cancel_and_wait(task))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    outer.cancel()
    await asyncio.sleep(0)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert outer.cancelled()
    assert task.done() and not task.cancelled()


async def test_cleanup_after_the_helper_runs_in_a_cancelled_callers_finally() -> None:
    """Inside ``finally`` of a task being cancelled, the caller's cancel is already on its way out; the
    helper must not raise a second one that skips the rest of the cleanup."""
    child = asyncio.create_task(_forever())
    cleaned = asyncio.Event()
    started = asyncio.Event()

    async def owner() -> None:
        try:
            started.set()
            await _forever()
        finally:
            await cancel_and_wait(child)
            cleaned.set()

    task = asyncio.create_task(owner())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()
    assert child.cancelled()


async def test_a_cancel_inside_a_timeout_becomes_the_timeout() -> None:
    """asyncio.timeout counts on the caller's cancel arriving; the helper must pass it through."""

    async def stops_slowly() -> None:
        try:
            await _forever()
        finally:
            await asyncio.sleep(0.2)

    task = asyncio.create_task(stops_slowly())
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await cancel_and_wait(task)


async def test_a_task_that_fails_while_stopping_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails_on_cancel() -> None:
        try:
            await _forever()
        except asyncio.CancelledError:
            raise OSError("port already gone") from None

    task = asyncio.create_task(fails_on_cancel(), name="serial reader")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="beredt.tasks"):
        await cancel_and_wait(task)
    assert "serial reader failed while being cancelled" in caplog.text
    assert "port already gone" in caplog.text


async def test_supervised_restarts_a_failing_loop_and_returns_when_it_does() -> None:
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs < 3:
            raise RuntimeError(f"failure {runs}")

    await asyncio.wait_for(supervised("flaky", flaky, pause=0.001), timeout=10)
    assert runs == 3


async def test_supervised_ends_on_cancel() -> None:
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        await _forever()

    task = asyncio.create_task(supervised("loop", loop))
    await started.wait()
    await cancel_and_wait(task)
    assert task.cancelled()
