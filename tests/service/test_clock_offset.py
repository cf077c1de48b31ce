"""The test-only clock offset is refused for a hub whose data folder is not a test's."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from hub.core.errors import ConfigError
from hub.service.clock_offset import ENV, hub_clock


def test_the_offset_is_refused_outside_a_temporary_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "-1e9")
    with pytest.raises(ConfigError, match="for tests only"):
        hub_clock(Path("/var/lib/beredt"))
    clock = hub_clock(Path(tempfile.gettempdir()) / "hub" / "data")
    assert clock.offset == -1e9 and not clock.trusted
    monkeypatch.setenv(ENV, "soon")
    with pytest.raises(ConfigError, match="number of seconds"):
        hub_clock(Path(tempfile.gettempdir()) / "hub" / "data")
    monkeypatch.delenv(ENV)
    assert hub_clock(Path("/var/lib/beredt")).offset == 0.0
