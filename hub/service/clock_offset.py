"""For tests only: ``beredt run`` with its clock set off by ``BEREDT_TEST_CLOCK_OFFSET`` seconds (a Pi that
booted in 1970, say), so that taking the time from peers can be tested with real processes.

Refused unless the data folder lies under the system's temporary folder (where tests keep their hubs):
an installed hub, whose data folder is ``/var/lib/beredt``, never starts with it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from hub.core.clock import SystemClock
from hub.core.errors import ConfigError

ENV = "BEREDT_TEST_CLOCK_OFFSET"

log = logging.getLogger("beredt.clock")


def hub_clock(data_dir: Path) -> SystemClock:
    """The system clock, offset as ``BEREDT_TEST_CLOCK_OFFSET`` asks when a test set it."""
    clock = SystemClock()
    text = os.environ.get(ENV)
    if text is None:
        return clock
    temp = Path(tempfile.gettempdir()).resolve()
    if not data_dir.resolve().is_relative_to(temp):
        raise ConfigError(
            f"{ENV} is for tests only; refused because the data folder {data_dir} is not under {temp}."
            f" Unset {ENV}"
        )
    try:
        clock.offset = float(text)
    except ValueError:
        raise ConfigError(f"{ENV} must be a number of seconds, not {text!r}") from None
    log.warning("clock set off by %+.0f s for a test (%s)", clock.offset, ENV)
    return clock
