"""Small files that must survive a power cut whole: the identity key, the roster, credit counters.

``write_atomically`` leaves either the old file or the new one, never half of one and never neither:
it writes a temporary file beside the target, fsyncs it, renames it over the target and fsyncs the
folder, because the rename is recorded in the folder and is lost with it otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` (UTF-8), durably; the file gets ``mode`` from its creation on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
