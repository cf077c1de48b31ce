"""The installer on a Raspberry Pi's architecture: ``deploy/raspberry-pi/arm64-check.sh`` builds an arm64
Debian bookworm root, installs Beredt into it under qemu-user emulation and starts a hub.

A soak variant only (``--soak``): it downloads a Debian root and every aarch64 wheel and takes minutes.
The debootstrapped root is kept in ``~/.cache/beredt/arm64-bookworm.tgz`` for the next run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.installer import DEPLOY


@pytest.mark.soak
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.geteuid() != 0, reason="debootstrap, chroot and namespaces need root")
def test_install_and_start_on_arm64_under_emulation(tmp_path: Path) -> None:
    for tool, package in (("debootstrap", "debootstrap"), ("qemu-aarch64-static", "qemu-user-static")):
        if shutil.which(tool) is None:  # an optional check: the soak run of a machine without them skips it
            pytest.skip(f"{tool} not found: apt-get install -y {package} binfmt-support")
    cache = Path.home() / ".cache/beredt/arm64-bookworm.tgz"
    cache.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["bash", str(DEPLOY / "arm64-check.sh"), "--base-cache", str(cache)],
        capture_output=True,
        text=True,
        timeout=3500,
        check=False,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "passed: Beredt installed and a hub answered /healthz" in report
    assert "dependencies built from source:    0" in report, report
    print(report)
