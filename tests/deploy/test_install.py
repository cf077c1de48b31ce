"""install.sh into a throwaway root (no venv): first install, a second run, upgrades, arguments reaching pip.

The real venv install, upgrade and image are in ``test_venv_install.py``.
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

from tests.deploy.installer import DEPLOY, PROJECT_BIN, copy_checkout, run_install, snapshot

NO_VENV = {"BEREDT_BIN": str(PROJECT_BIN / "beredt")}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_first_install_lays_out_everything_and_creates_the_identity(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = run_install("--root", root, "--no-venv", env=NO_VENV)
    assert "skipping the beredt user" in result.stdout
    assert (root / "etc/beredt/beredt.toml").read_text() == (DEPLOY / "beredt.toml").read_text()
    assert (root / "etc/systemd/system/beredt.service").read_text() == (DEPLOY / "beredt.service").read_text()
    assert (root / "etc/udev/rules.d/99-beredt-radios.rules").is_file()
    assert (root / "etc/systemd/journald.conf.d/beredt.conf").is_file()
    assert (root / "opt/beredt/README.md").is_file()
    assert mode(root / "etc/beredt") == 0o750
    assert mode(root / "etc/beredt/beredt.toml") == 0o640
    assert mode(root / "var/lib/beredt") == 0o750
    assert mode(root / "etc/systemd/system/beredt.service") == 0o644
    identity = root / "var/lib/beredt/identity.key"
    assert identity.stat().st_size > 0
    assert mode(identity) & 0o077 == 0, "the identity key must be readable by its owner only"
    # The shipped configuration still names the target's data directory, not the staging root.
    assert 'data_dir = "/var/lib/beredt"' in (root / "etc/beredt/beredt.toml").read_text()


def test_an_image_for_many_pis_holds_no_identity(tmp_path: Path) -> None:
    root = tmp_path / "image"
    result = run_install("--root", root, "--no-venv", "--image", env=NO_VENV)
    assert "each Pi creates its own" in result.stdout
    assert (root / "etc/beredt/beredt.toml").is_file() and (root / "var/lib/beredt").is_dir()
    assert not (root / "var/lib/beredt/identity.key").exists(), "every Pi copied from it would share one key"
    # An image that already carries a key is refused rather than copied with it.
    run_install("--root", tmp_path / "staged", "--no-venv", env=NO_VENV)
    refused = run_install("--root", tmp_path / "staged", "--no-venv", "--image", env=NO_VENV, check=False)
    assert refused.returncode != 0 and "shares one key" in refused.stderr


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_install("--root", root, "--no-venv", env=NO_VENV)
    before = snapshot(root)
    result = run_install("--root", root, "--no-venv", env=NO_VENV)
    assert snapshot(root) == before  # contents, modes and even modification times
    assert "keeping configuration" in result.stdout
    assert "keeping identity" in result.stdout
    assert "installed" not in result.stdout


def test_upgrade_keeps_config_data_and_identity_and_replaces_system_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    old = copy_checkout(tmp_path / "old")
    run_install("--root", root, "--no-venv", checkout=old, env=NO_VENV)
    config = root / "etc/beredt/beredt.toml"
    config.write_text(config.read_text().replace("Plejecenter Solbakken", "Plejecenter Engen"))
    data = root / "var/lib/beredt"
    identity = (data / "identity.key").read_bytes()
    (data / "store.db").write_bytes(b"accepted messages " * 100)
    (data / "roster.toml").write_text("# trusted nodes\n")
    kept = {path: path.read_bytes() for path in (config, data / "store.db", data / "roster.toml")}

    new = copy_checkout(tmp_path / "new")
    new_deploy = new / "deploy/raspberry-pi"
    for name in ("beredt.service", "99-beredt-radios.rules", "journald-beredt.conf", "beredt.toml"):
        path = new_deploy / name
        path.write_text(path.read_text() + "# changed in the newer release\n")
    result = run_install("--root", root, "--no-venv", checkout=new, env=NO_VENV)

    assert (data / "identity.key").read_bytes() == identity
    for path, content in kept.items():
        assert path.read_bytes() == content, path
    assert "Plejecenter Engen" in config.read_text()
    assert (root / "etc/systemd/system/beredt.service").read_text() == (
        new_deploy / "beredt.service"
    ).read_text()
    assert (root / "etc/udev/rules.d/99-beredt-radios.rules").read_text().endswith("newer release\n")
    assert (root / "etc/systemd/journald.conf.d/beredt.conf").read_text().endswith("newer release\n")
    assert "keeping identity" in result.stdout


def test_upgrade_keeps_the_owners_edits_to_the_journald_and_udev_files(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_install("--root", root, "--no-venv", checkout=copy_checkout(tmp_path / "old"), env=NO_VENV)
    journald = root / "etc/systemd/journald.conf.d/beredt.conf"
    rules = root / "etc/udev/rules.d/99-beredt-radios.rules"
    # What read-only-root.md tells the owner to do, on a read-only root.
    edited = journald.read_text().replace("Storage=persistent", "Storage=volatile")
    journald.write_text(edited)

    new = copy_checkout(tmp_path / "new")
    for name in ("journald-beredt.conf", "99-beredt-radios.rules"):
        path = new / "deploy/raspberry-pi" / name
        path.write_text(path.read_text() + "# changed in the newer release\n")
    result = run_install("--root", root, "--no-venv", checkout=new, env=NO_VENV)
    assert journald.read_text() == edited
    assert journald.with_name("beredt.conf.new").read_text().endswith("newer release\n")
    assert f"keeping your edited {journald}" in result.stdout
    assert rules.read_text().endswith("newer release\n")  # not edited: replaced as before
    assert not rules.with_name(rules.name + ".new").exists()

    # The owner merges by taking the new version: later upgrades replace it again.
    journald.write_text(journald.with_name("beredt.conf.new").read_text())
    run_install("--root", root, "--no-venv", checkout=new, env=NO_VENV)
    assert not journald.with_name("beredt.conf.new").exists()
    newest = copy_checkout(tmp_path / "newest")
    path = newest / "deploy/raspberry-pi/journald-beredt.conf"
    path.write_text(path.read_text() + "# and again\n")
    run_install("--root", root, "--no-venv", checkout=newest, env=NO_VENV)
    assert journald.read_text().endswith("# and again\n")


def test_every_shipped_owner_file_is_listed_as_released() -> None:
    """released.sha256 must list the current versions, so that the next release recognises them."""
    listed = set((DEPLOY / "released.sha256").read_text().splitlines())
    for name in ("99-beredt-radios.rules", "journald-beredt.conf"):
        digest = hashlib.sha256((DEPLOY / name).read_bytes()).hexdigest()
        assert f"{digest}  {name}" in listed, f"add '{digest}  {name}' to deploy/raspberry-pi/released.sha256"


def test_an_unedited_file_from_before_the_record_is_replaced(tmp_path: Path) -> None:
    """An install made by an installer that kept no record: a released version counts as unedited."""
    root = tmp_path / "root"
    run_install("--root", root, "--no-venv", env=NO_VENV)
    (root / "opt/beredt/shipped-files.sha256").unlink()
    rules = root / "etc/udev/rules.d/99-beredt-radios.rules"  # as released, but no record of it
    new = copy_checkout(tmp_path / "new")
    (new / "deploy/raspberry-pi/99-beredt-radios.rules").write_text(rules.read_text() + "# newer\n")
    result = run_install("--root", root, "--no-venv", checkout=new, env=NO_VENV)
    assert rules.read_text().endswith("# newer\n"), result.stdout
    assert not rules.with_name(rules.name + ".new").exists()


def test_wheel_and_pip_override_reach_pip(tmp_path: Path) -> None:
    """``--wheel`` installs that file with the pi extra through the ``BEREDT_PIP`` command, as given."""
    root = tmp_path / "root"
    python = root / "opt/beredt/venv/bin/python"
    python.parent.mkdir(parents=True)
    python.symlink_to(PROJECT_BIN / "python")  # an existing venv: the installer must not build another
    wheel = tmp_path / "wheels/beredt-0.2.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"PK")
    calls = tmp_path / "pip-calls"
    pip = tmp_path / "offline-pip"
    pip.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    pip.chmod(0o755)
    run_install(
        "--root",
        root,
        "--wheel",
        wheel,
        env={"BEREDT_PIP": f"{pip} --timeout 60", **NO_VENV},
    )
    # Dependencies as needed, then Beredt itself replaced whole even at the same version number.
    assert calls.read_text().splitlines() == [
        f"--timeout 60 install --quiet --disable-pip-version-check {wheel}[pi]",
        f"--timeout 60 install --quiet --disable-pip-version-check --force-reinstall --no-deps {wheel}",
    ]
    assert (root / "var/lib/beredt/identity.key").is_file()


def test_staging_root_with_awkward_characters(tmp_path: Path) -> None:
    root = tmp_path / 'image "pi" & co | v2\\x'
    run_install("--root", root, "--no-venv", env=NO_VENV)
    assert (root / "var/lib/beredt/identity.key").is_file()
    assert 'data_dir = "/var/lib/beredt"' in (root / "etc/beredt/beredt.toml").read_text()
