"""A real install into a venv under a staging root, an upgrade from a newer checkout, and the result used
as an SD-card image: moved to where it will be the root, the unit's ``ExecStart`` runs.

One install and one upgrade serve every test here (each takes a while: a venv, every dependency, a
wheel built with build isolation), so the tests share them through a module fixture.

The image test lays the moved root over this machine's ``/opt``, ``/etc`` and ``/var/lib`` with overlay
mounts inside a private mount and network namespace (nothing outside the test sees them) and runs the
unit's own ``ExecStart`` line with a notify socket: the hub must send ``READY=1``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.installer import DEPLOY, REPO, copy_checkout, find_tool, run_install
from tests.deploy.test_service_notify import receive_until
from tests.deploy.test_system_files import directives

# The shared install and upgrade run under the first test's clock; a loaded 2-core machine needs minutes.
pytestmark = pytest.mark.timeout(900)

OBSOLETE = "hub/service/obsolete_helper.py"
OWNER = 4242  # a uid that is not root's: the Pi's owner


@dataclass(frozen=True)
class Upgraded:
    root: Path
    checkout: Path
    venv: Path
    package_dir: Path  # the venv's site-packages/hub/service
    identity_before: bytes
    obsolete_before: bool
    build_left_by_install: bool
    marker: str


def git(checkout: Path, *args: str) -> None:
    identity = {"GIT_AUTHOR_NAME": "Beredt test", "GIT_AUTHOR_EMAIL": "test@beredt.invalid"}
    identity |= {"GIT_COMMITTER_NAME": "Beredt test", "GIT_COMMITTER_EMAIL": "test@beredt.invalid"}
    subprocess.run(
        [find_tool("git", "git"), "-c", "safe.directory=*", "-C", str(checkout), *args],
        check=True,
        capture_output=True,
        timeout=60,
        env={**os.environ, **identity},
    )


def run_in_venv(venv: Path, code: str, cwd: Path) -> str:
    """``code`` run by the venv's Python, outside the repository (a cwd checkout would be imported)."""
    return subprocess.run(
        [venv / "bin/python", "-I", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=cwd,
    ).stdout.strip()


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> Upgraded:
    folder = tmp_path_factory.mktemp("venv-install")
    root = folder / "root"
    checkout = copy_checkout(folder / "checkout")
    # A git clone, as the owner has: the installer then copies only what git knows.
    shutil.copy(REPO / ".gitignore", checkout / ".gitignore")
    # A file of the owner's that git ignores: only what git knows may be built.
    with (checkout / ".gitignore").open("a") as ignore:
        ignore.write("hub/local_*.py\n")
    (checkout / "hub/local_experiment.py").write_text('"""The owner\'s scratch file."""\n')
    (checkout / OBSOLETE).write_text('"""A module the next release deletes."""\n')
    git(checkout, "init", "--quiet")
    git(checkout, "add", "--all")
    git(checkout, "commit", "--quiet", "--message", "release 1")
    if os.geteuid() == 0:  # the owner's clone, installed with sudo: git refuses root there unless told
        subprocess.run(["chown", "-R", f"{OWNER}:{OWNER}", str(checkout)], check=True, timeout=60)
    run_install("--root", root, "--source", checkout)
    venv = root / "opt/beredt/venv"
    location = Path(run_in_venv(venv, "import hub.service.watchdog as m; print(m.__file__)", folder))
    obsolete_before = (location.parent / "obsolete_helper.py").is_file()
    build_left = (checkout / "build").exists() or bool(list(checkout.glob("*.egg-info")))
    identity = (root / "var/lib/beredt/identity.key").read_bytes()

    # Upstream deletes the module; an old in-place build left it in the checkout's build/ as well.
    git(checkout, "rm", "--quiet", OBSOLETE)
    leftover = checkout / "build/lib" / OBSOLETE
    leftover.parent.mkdir(parents=True)
    leftover.write_text('"""Left in build/ by an old in-place build."""\n')
    marker = f"upgrade {uuid.uuid4().hex}"
    watchdog_py = checkout / "hub/service/watchdog.py"
    watchdog_py.write_text(watchdog_py.read_text() + f"# {marker}\n")
    git(checkout, "commit", "--quiet", "--all", "--message", "release 2")
    run_install("--root", root, "--source", checkout)  # same version number, newer code
    return Upgraded(root, checkout, venv, location.parent, identity, obsolete_before, build_left, marker)


def test_the_venv_holds_the_application_and_the_pi_extra(upgraded: Upgraded, tmp_path: Path) -> None:
    assert str(upgraded.package_dir).startswith(str(upgraded.venv))  # not the checkout it was built from
    assert run_in_venv(upgraded.venv, "import gpiozero, smbus2; print('pi extra')", tmp_path) == "pi extra"


def test_an_upgrade_brings_the_new_code_and_removes_a_module_deleted_upstream(
    upgraded: Upgraded, tmp_path: Path
) -> None:
    assert upgraded.obsolete_before, "the first install should have had the module"
    assert upgraded.marker in (upgraded.package_dir / "watchdog.py").read_text()
    assert not (upgraded.package_dir / "obsolete_helper.py").exists()
    spec = run_in_venv(
        upgraded.venv,
        "import importlib.util as u; print(u.find_spec('hub.service.obsolete_helper'))",
        tmp_path,
    )
    assert spec == "None"
    assert (upgraded.root / "var/lib/beredt/identity.key").read_bytes() == upgraded.identity_before


def test_only_what_git_knows_is_installed(upgraded: Upgraded) -> None:
    assert not (upgraded.package_dir.parent / "local_experiment.py").exists()
    assert (upgraded.checkout / "hub/local_experiment.py").is_file()


def test_installs_leave_nothing_in_the_owners_checkout(upgraded: Upgraded) -> None:
    assert not upgraded.build_left_by_install
    assert not list(upgraded.checkout.glob("*.egg-info"))
    assert [
        p.relative_to(upgraded.checkout).as_posix() for p in (upgraded.checkout / "build").rglob("*.py")
    ] == [
        f"build/lib/{OBSOLETE}"  # only what the old build had left
    ]


def test_image_scripts_name_the_final_venv_path_and_beredt_is_on_path(upgraded: Upgraded) -> None:
    for script in ("beredt", "pip"):
        first_line = (upgraded.venv / "bin" / script).read_text().splitlines()[0]
        assert first_line.startswith("#!/opt/beredt/venv/bin/python"), (script, first_line)
    assert str(upgraded.root) not in (upgraded.venv / "bin/activate").read_text()
    link = upgraded.root / "usr/local/bin/beredt"
    assert link.is_symlink() and str(link.readlink()) == "/opt/beredt/venv/bin/beredt"


NAMESPACE_SCRIPT = """
set -euo pipefail
mkdir -p "$SCRATCH/work"
mount -t overlay overlay -o "lowerdir=$IMAGE/opt:/opt" /opt
mount -t overlay overlay -o "lowerdir=$IMAGE/etc:/etc" /etc
mount -t overlay overlay -o "lowerdir=/var/lib,upperdir=$IMAGE/var/lib,workdir=$SCRATCH/work" /var/lib
ip link set lo up
exec $EXEC_START
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="private mount and network namespaces need root")
def test_a_moved_root_image_runs_the_units_exec_start(upgraded: Upgraded, tmp_path: Path) -> None:
    unshare = find_tool("unshare", "util-linux")
    find_tool("ip", "iproute2")
    image = tmp_path / "image"
    shutil.copytree(upgraded.root, image, symlinks=True)  # elsewhere: only /opt/beredt/venv can work now
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
