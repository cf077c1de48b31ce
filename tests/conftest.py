"""Session-wide test options: ``--soak`` runs the long variants of tests marked ``soak``."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak", action="store_true", help="run long soak variants (tests marked 'soak')")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--soak"):
        os.environ["BEREDT_SOAK"] = "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak") or os.environ.get("BEREDT_SOAK") == "1":
        return
    skip = pytest.mark.skip(reason="soak variant: run with --soak (CI runs the short version)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
