"""Repeated log records are held back per message and per logger, and the next one says how many."""

from __future__ import annotations

import logging

import pytest

from hub.service.log_limit import RepeatLimit, limited_logging


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(
    message: str, *args: object, name: str = "beredt.test", level: int = logging.ERROR
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_a_flood_of_one_message_is_held_back_and_then_counted() -> None:
    clock = Clock()
    limit = RepeatLimit(burst=3, window=60, clock=clock)
    passed = [limit.filter(_record("accept failed from %s", f"10.0.0.{i}")) for i in range(1000)]
    assert passed.count(True) == 3 and limit.held == 997
    assert limit.filter(_record("another message")), "other messages still pass"
    clock.now = 61
    record = _record("accept failed from %s", "10.0.0.1")
    assert limit.filter(record)
    assert "997 more like this held back" in record.getMessage()


def test_many_different_messages_from_one_logger_are_bounded_too() -> None:
    limit = RepeatLimit(burst=5, per_logger=50, window=60, max_keys=100, clock=Clock())
    passed = sum(limit.filter(_record(f"peer {i} sent garbage")) for i in range(10_000))
    assert passed == 50
    assert len(limit._messages) <= 100, "memory stays bounded whatever the messages say"


def test_information_and_debug_are_never_held_back() -> None:
    limit = RepeatLimit(burst=1, clock=Clock())
    for level in (logging.DEBUG, logging.INFO):
        assert all(limit.filter(_record("x", level=level)) for _ in range(100))


def test_limited_logging_filters_the_root_handlers_only_while_active(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("beredt.flood")
    with limited_logging(RepeatLimit(burst=2, clock=Clock())):
        for _ in range(50):
            log.error("the same error")
    assert [r.getMessage() for r in caplog.records if r.name == "beredt.flood"] == ["the same error"] * 2
    caplog.clear()
    for _ in range(5):
        log.error("the same error")
    assert len(caplog.records) == 5
