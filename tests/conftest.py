"""Session-wide test options and guards.

``--soak`` runs the long variants of tests marked ``soak``. A thread that is not a daemon and outlives
the session (an unclosed database connection, a transport never closed) would keep the test process
alive after its summary, so CI would hang until its time limit: such threads fail the run by name.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback

import pytest

_lingering: list[threading.Thread] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run long soak variants (tests marked 'soak')")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--soak"):
        os.environ["BEREDT_SOAK"] = "1"


# Folders whose tests start real processes (hubs, brokers, browsers, a venv) and last longest, first: the
# workers take files in this order, so the long ones start early instead of leaving one worker busy alone
# at the end while the others idle.
_LONG_FIRST = ("drill", "deploy", "hubs", "exercise", "citizens", "cli", "console", "service", "transports")


def _schedule_rank(item: pytest.Item) -> int:
    parts = item.path.relative_to(item.config.rootpath).parts
    folder = parts[1] if len(parts) > 2 and parts[0] == "tests" else ""
    return _LONG_FIRST.index(folder) if folder in _LONG_FIRST else len(_LONG_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_schedule_rank)  # stable: each file keeps its own order
    if config.getoption("--soak") or os.environ.get("BEREDT_SOAK") == "1":
        return
    skip = pytest.mark.skip(reason="soak variant: run with --soak (CI runs the short version)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def _non_daemon_threads() -> list[threading.Thread]:
    return [
        t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    deadline = time.monotonic() + 5
    while (threads := _non_daemon_threads()) and time.monotonic() < deadline:
        time.sleep(0.1)
    if threads:
        _lingering.extend(threads)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _lingering:
        return
    frames = sys._current_frames()
    terminalreporter.section("threads left running (a resource was not closed)", red=True)
    for thread in _lingering:
        terminalreporter.write_line(f"{thread.name} (ident {thread.ident}):")
        frame = frames.get(thread.ident or 0)
        if frame is not None:
            terminalreporter.write_line("".join(traceback.format_stack(frame)))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _lingering:  # they would keep the process alive: leave now, with the failure already reported
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(pytest.ExitCode.TESTS_FAILED))
