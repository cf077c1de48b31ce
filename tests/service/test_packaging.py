"""Every file the hub serves or reads besides its code (console, i18n, OpenAPI) is declared package data,
so a non-editable install (the Raspberry Pi installer's) carries it."""

from __future__ import annotations

import fnmatch
import tomllib

from tests.hubproc import REPO


def test_every_data_file_is_declared_package_data() -> None:
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    data_files = [
        path
        for package in ("hub", "transports", "hardware", "drill", "simulators")
        for path in (REPO / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".py", ".pyc")
    ]
    assert any(p.name == "da.json" for p in data_files), "the console's translations are data files"
    undeclared = [
        str(p.relative_to(REPO)) for p in data_files if not any(fnmatch.fnmatch(p.name, g) for g in patterns)
    ]
    assert not undeclared, f"add a pattern to [tool.setuptools.package-data] for: {undeclared}"
