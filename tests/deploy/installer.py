"""Helpers for running ``deploy/raspberry-pi/install.sh`` against a throwaway root and a copied checkout."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "raspberry-pi"
PROJECT_BIN = Path(sys.executable).parent
INSTALL_TIMEOUT = 300.0

# What a Beredt checkout needs to be pip-installed and to install itself; the rest stays behind.
CHECKOUT_PARTS = (
    "pyproject.toml",
    "README.md",
    "hub",
    "transports",
    "hardware",
    "drill",
    "simulators",
    "deploy",
)


def copy_checkout(dest: Path) -> Path:
    """A private copy of the checkout, so installs never build inside the shared working tree."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for part in CHECKOUT_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, dest / part)
    return dest


def find_tool(name: str, package: str) -> str:
    """The path of a required system tool; fails (never skips) with the command that installs it."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise AssertionError(f"{name} not found: install it with 'apt-get install -y {package}'")
    return path


def run_install(
    *args: str | Path, checkout: Path | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``install.sh`` (from ``checkout`` when given: an upgrade runs the newer checkout's script)."""
    script = (checkout / "deploy" / "raspberry-pi" if checkout else DEPLOY) / "install.sh"
    environment = {
        "PATH": f"{PROJECT_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/root"),
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        "LANG": "C.UTF-8",
        **(env or {}),
    }
    result = subprocess.run(
        ["bash", str(script), *map(str, args)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if check and result.returncode != 0:
        command = " ".join(map(str, args))
        raise AssertionError(
            f"install.sh {command} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result


def snapshot(root: Path, skip: tuple[str, ...] = ("opt/beredt/venv",)) -> dict[str, tuple[str, int, int]]:
    """Every file and directory under ``root`` with its content hash, mode and mtime (ns)."""
    files: dict[str, tuple[str, int, int]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if any(relative == s or relative.startswith(s + "/") for s in skip):
            continue
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        files[relative] = (digest, info.st_mode, info.st_mtime_ns)
    return files
