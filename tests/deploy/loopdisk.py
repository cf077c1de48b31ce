"""A small ext4 disk on a loop device whose power can be cut: what was not on the "disk" is lost.

``cut()`` copies the loop device's backing file and mounts the copy in place of the original. The copy
holds what the file system had sent to its block device and nothing that was still dirty in the page
cache, which is what a disk holds after a power cut; mounting it replays ext4's journal as a reboot would.
Stop every process using the disk before ``cut()``: a process still writing would make the copy a mix of
moments that never existed together.

The file system is mounted ``data=writeback,commit=300`` so that ext4 writes nothing on its own between
the fsyncs of the programs using it (with the default ``data=ordered`` and a 5 s journal commit it would
push their unsynced data out for them). The kernel's flusher leaves dirty pages alone for
``vm.dirty_expire_centisecs`` (30 s by default): keep what runs between writing and cutting shorter.
Needs root, ``losetup`` and ``mkfs.ext4``; ``skip_reason()`` says what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SIZE = "64M"


def skip_reason() -> str | None:
    """Why a loop disk cannot be made here, or None."""
    if os.geteuid() != 0:
        return "a loop-device disk needs root"
    missing = [tool for tool in ("losetup", "mkfs.ext4", "mount", "umount") if shutil.which(tool) is None]
    if missing:
        return f"a loop-device disk needs {', '.join(missing)}"
    if not Path("/dev/loop-control").exists():
        return "no loop devices here (/dev/loop-control is missing)"
    return None


def _run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


class LoopDisk:
    """An ext4 file system mounted at ``mount`` (a folder beside its image files in ``folder``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.mount = folder / "mnt"
        self.mount.mkdir(parents=True)
        self.image = folder / "disk-0.img"
        self.cuts = 0
        _run("truncate", "-s", SIZE, str(self.image))
        _run("mkfs.ext4", "-q", "-F", str(self.image))
        self.device = ""
        self._attach()

    def _attach(self) -> None:
        self.device = _run("losetup", "--find", "--show", str(self.image))
        _run("mount", "-o", "data=writeback,commit=300", self.device, str(self.mount))

    def _detach(self) -> None:
        if self.device:
            _run("umount", str(self.mount))
            _run("losetup", "--detach", self.device)
            self.device = ""

    def cut(self) -> None:
        """Cut the power: from now on the disk holds only what had reached its block device."""
        self.cuts += 1
        copy = self.folder / f"disk-{self.cuts}.img"
        _run("cp", "--sparse=always", str(self.image), str(copy))
        self._detach()  # unmounting writes the old page cache to the old image, which is thrown away
        self.image.unlink()
        self.image = copy
        self._attach()

    def close(self) -> None:
        """Unmount and detach; a disk still held by a process that outlived its test is unmounted lazily
        (it goes once that process ends) so no mount is left behind."""
        try:
            self._detach()
        except RuntimeError:
            subprocess.run(["umount", "--lazy", str(self.mount)], check=False, timeout=60)
            subprocess.run(["losetup", "--detach", self.device], check=False, timeout=60)
            self.device = ""
