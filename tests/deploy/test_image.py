"""An SD-card image made with ``install.sh --root``: moved to where it will be the root, the unit's
``ExecStart`` runs as systemd would run it.

The image is staged in a temporary folder, then moved, so that nothing can still point at the staging
path. It is then laid over this machine's ``/opt``, ``/etc`` and ``/var/lib`` with overlay mounts inside a
private mount and network namespace (nothing outside the test sees them), and the unit's own
``ExecStart`` line is run with a notify socket: the hub must send ``READY=1``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.deploy.installer import DEPLOY, copy_checkout, find_tool, run_install
from tests.deploy.test_service_notify import receive_until
from tests.deploy.test_system_files import directives

NAMESPACE_SCRIPT = """
set -euo pipefail
for folder in opt etc var/lib; do
    mkdir -p "$SCRATCH/work-${folder//\\//-}"
done
mount -t overlay overlay -o "lowerdir=$IMAGE/opt:/opt" /opt
mount -t overlay overlay -o "lowerdir=$IMAGE/etc:/etc" /etc
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$IMAGE/var/lib,workdir=$SCRATCH/work-var-lib" /var/lib
ip link set lo up
exec $EXEC_START
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="private mount and network namespaces need root")
def test_a_moved_root_image_runs_the_units_exec_start(tmp_path: Path) -> None:
    unshare = find_tool("unshare", "util-linux")
    find_tool("ip", "iproute2")
    staging = tmp_path / "staging"
    run_install("--root", staging, "--source", copy_checkout(tmp_path / "checkout"))
    venv = staging / "opt/beredt/venv"
    for script in ("beredt", "pip"):
        first_line = (venv / "bin" / script).read_text().splitlines()[0]
        assert first_line.startswith("#!/opt/beredt/venv/bin/python"), (script, first_line)
    link = staging / "usr/local/bin/beredt"
    assert link.is_symlink() and str(link.readlink()) == "/opt/beredt/venv/bin/beredt"

    image = tmp_path / "image"
    shutil.move(staging, image)  # the staging path is gone: only /opt/beredt/venv can work now
    (exec_start,) = directives(DEPLOY / "beredt.service")["Service.ExecStart"]
    script = tmp_path / "in-namespace.sh"
    script.write_text(NAMESPACE_SCRIPT)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = str(tmp_path / "notify")
    notify.bind(notify_path)
    notify.settimeout(60)
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "IMAGE": str(image),
        "SCRATCH": str(tmp_path),
        "EXEC_START": exec_start,
        "NOTIFY_SOCKET": notify_path,
    }
    log = tmp_path / "hub.log"
    with log.open("wb") as output:
        hub = subprocess.Popen(
            [unshare, "--mount", "--net", "--propagation", "private", "bash", str(script)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        receive_until(notify, "READY=1")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log.read_text(errors='replace')[-3000:]}") from None
    finally:
        hub.terminate()
        hub.wait(30)
        notify.close()
    assert (image / "var/lib/beredt/store.db").is_file()  # the hub wrote its data into the image
