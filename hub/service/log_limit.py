"""Rate-limited logging: a flood of the same error must not fill a Pi's SD card or bury the first report.

A thousand bad connections once wrote 143 MB of log in a minute. ``RepeatLimit`` lets through at most
``burst`` records of one message (logger, level and format string) and ``per_logger`` records of one
logger per ``window`` seconds; the first record let through after a quiet spell says how many were held
back. Only warnings and errors are limited: information (such as the API's record of who sent what) and
debug output pass untouched.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class _Window:
    start: float
    passed: int = 0
    held: int = 0


class RepeatLimit(logging.Filter):
    """A filter for log handlers; bounded: it remembers at most ``max_keys`` messages."""

    def __init__(
        self,
        *,
        burst: int = 10,
        per_logger: int = 200,
        window: float = 60.0,
        max_keys: int = 2048,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.burst, self.per_logger, self.window, self.max_keys = burst, per_logger, window, max_keys
        self._clock = clock
        self._messages: dict[tuple[str, int, str], _Window] = {}
        self._loggers: dict[str, _Window] = {}
        self.held = 0  # records held back in all, for tests and curiosity

    def filter(self, record: logging.LogRecord) -> bool:
        # one decision per record, however many handlers this filter sits on
        decisions: dict[RepeatLimit, bool] = record.__dict__.setdefault("_repeat_limit", {})
        if self not in decisions:
            decisions[self] = self._decide(record)
        return decisions[self]

    def _decide(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        now = self._clock()
        message = self._window(self._messages, (record.name, record.levelno, str(record.msg)), now)
        logger = self._window(self._loggers, record.name, now)
        if message.passed >= self.burst or logger.passed >= self.per_logger:
            message.held += 1
            self.held += 1
            return False
        if message.held:
            record.msg = (
                f"{record.msg} [{message.held} more like this held back in the last {self.window:g} s]"
            )
            message.held = 0
        message.passed += 1
        logger.passed += 1
        return True

    def _window(self, table: dict[Any, _Window], key: Hashable, now: float) -> _Window:
        window = table.get(key)
        if window is None or now - window.start >= self.window:
            held = window.held if window is not None else 0
            table.pop(key, None)
            while len(table) >= self.max_keys:
                del table[next(iter(table))]  # the oldest
            window = table[key] = _Window(now, held=held)
        return window


@contextlib.contextmanager
def limited_logging(limit: RepeatLimit | None = None) -> Iterator[RepeatLimit]:
    """Put ``limit`` on every handler of the root logger for the duration of the block."""
    limit = limit or RepeatLimit()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(limit)
    try:
        yield limit
    finally:
        for handler in handlers:
            handler.removeFilter(limit)
