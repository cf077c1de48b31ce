"""install.sh as root onto "/" — inside a private mount namespace, so this machine is never touched.

``/etc`` is a copy, ``/opt``, ``/var/lib`` and ``/run`` are empty scratch folders, and ``systemctl`` and
``udevadm`` are stand-ins that record their arguments (``/run/systemd/system`` exists, so the script
believes systemd runs). The real ``useradd``, ``usermod``, ``chown`` and ``beredt init`` run. This covers
the branch the ``--root`` tests cannot: the system user, ownership, and which services are reloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.installer import DEPLOY, PROJECT_BIN, find_tool

RECORDER = """#!/bin/sh
echo "$(basename "$0") $*" >> "$BEREDT_TEST_CALLS"
"""

NAMESPACE_SCRIPT = """
set -euo pipefail
mount --bind "$SCRATCH/etc" /etc
mount --bind "$SCRATCH/opt" /opt
mount --bind "$SCRATCH/var-lib" /var/lib
mount --bind "$SCRATCH/run" /run
mkdir -p /run/systemd/system
bash "$INSTALL" --no-venv
"""


def passwd_entry(etc: Path, user: str) -> list[str] | None:
    for line in (etc / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="a private mount namespace needs root")
def test_install_as_root_creates_the_user_owns_the_data_and_reloads_only_what_changed(tmp_path: Path) -> None:
    unshare = find_tool("unshare", "util-linux")
    find_tool("useradd", "passwd")
    scratch = tmp_path / "scratch"
    for folder in ("opt", "var-lib", "run", "bin"):
        (scratch / folder).mkdir(parents=True)
    shutil.copytree("/etc", scratch / "etc", symlinks=True)
    if passwd_entry(scratch / "etc", "beredt") is not None:
        raise AssertionError("this machine already has a 'beredt' user; the test needs a machine without one")
    for tool in ("systemctl", "udevadm"):
        (scratch / "bin" / tool).write_text(RECORDER)
        (scratch / "bin" / tool).chmod(0o755)
    calls = tmp_path / "calls"
    script = tmp_path / "in-namespace.sh"
    script.write_text(NAMESPACE_SCRIPT)
    env = {
        "PATH": f"{scratch / 'bin'}:{PROJECT_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
        "SCRATCH": str(scratch),
        "INSTALL": str(DEPLOY / "install.sh"),
        "BEREDT_BIN": str(PROJECT_BIN / "beredt"),
        "BEREDT_TEST_CALLS": str(calls),
        "LANG": "C.UTF-8",
    }

    def install() -> str:
        result = subprocess.run(
            [unshare, "--mount", "--propagation", "private", "bash", str(script)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    first = install()
    assert "created system user beredt" in first
    user = passwd_entry(scratch / "etc", "beredt")
    assert user is not None
    assert user[5:] == ["/var/lib/beredt", "/usr/sbin/nologin"]
    uid, gid = int(user[2]), int(user[3])
    dialout = next(
        line for line in (scratch / "etc/group").read_text().splitlines() if line.startswith("dialout:")
    )
    assert "beredt" in dialout.split(":")[3].split(",")
    data = scratch / "var-lib/beredt"
    for path in (data, data / "identity.key"):
        assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid), path
    config = scratch / "etc/beredt/beredt.toml"
    assert (config.stat().st_uid, config.stat().st_gid) == (0, gid)
    assert calls.read_text().splitlines() == [
        "systemctl daemon-reload",
        "systemctl enable beredt.service",
        "systemctl try-restart beredt.service",
        "systemctl restart systemd-journald.service",
        "udevadm control --reload-rules",
        "udevadm trigger --subsystem-match=tty",
    ]

    # Again (an upgrade with nothing new): no new user, and journald and udev are left alone.
    calls.unlink()
    identity = (data / "identity.key").read_bytes()
    second = install()
    assert "created system user" not in second
    assert (data / "identity.key").read_bytes() == identity
    assert calls.read_text().splitlines() == [
        "systemctl daemon-reload",
        "systemctl enable beredt.service",
        "systemctl try-restart beredt.service",
    ]
    assert not Path("/var/lib/beredt").exists(), "the namespace leaked onto this machine"


@pytest.mark.skipif(os.geteuid() != 0, reason="useradd --root and chown need root")
def test_root_image_with_a_user_database_gets_the_user_and_ownership(tmp_path: Path) -> None:
    find_tool("useradd", "passwd")
    image = tmp_path / "image"
    (image / "etc").mkdir(parents=True)
    for name in ("passwd", "group", "shadow", "gshadow", "login.defs"):
        if Path("/etc", name).exists():
            shutil.copy2(Path("/etc", name), image / "etc" / name)
    if passwd_entry(image / "etc", "beredt") is not None:
        raise AssertionError("this machine already has a 'beredt' user; the test needs a machine without one")
    result = subprocess.run(
        ["bash", str(DEPLOY / "install.sh"), "--root", str(image), "--no-venv"],
        capture_output=True,
        text=True,
        env={
            "PATH": f"{PROJECT_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
            "BEREDT_BIN": str(PROJECT_BIN / "beredt"),
        },
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    user = passwd_entry(image / "etc", "beredt")
    assert user is not None, "the user belongs in the image's user database"
    assert passwd_entry(Path("/etc"), "beredt") is None, "and never in this machine's"
    uid, gid = int(user[2]), int(user[3])
    data = image / "var/lib/beredt"
    for path in (data, data / "identity.key"):
        assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid), path
    config = image / "etc/beredt/beredt.toml"
    assert (config.stat().st_uid, config.stat().st_gid) == (0, gid)
