"""Small files that must survive a power cut whole: the identity key, the roster, credit counters, and
the secret keys that encrypt data at rest.

``write_atomically`` leaves either the old file or the new one, never half of one and never neither:
it writes a temporary file beside the target, fsyncs it, renames it over the target and fsyncs the
folder, because the rename is recorded in the folder and is lost with it otherwise.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from hub.core.errors import BeredtError, ConfigError


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


def secret_key(
    path: Path, what: str, *, size: int, create: bool, missing: Callable[[], BeredtError]
) -> bytes:
    """The ``size`` random bytes kept in ``path`` (0600 in a 0700 folder); with ``create`` a missing file is
    made first (two makers at once keep the first). ``missing()`` is raised when there is none; a file
    others may read, or of the wrong size, is refused naming the fix."""
    if create and not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(size))
                handle.flush()
                os.fsync(handle.fileno())
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise missing() from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{what} kan læses af andre (rettigheder {stat.S_IMODE(mode):o}); kør 'chmod 600 {path}'",
            file=str(path),
        )
    key = path.read_bytes()
    if len(key) != size:
        raise ConfigError(
            f"{what} fylder {len(key)} bytes, ikke {size}; hent den fra sikkerhedskopien", file=str(path)
        )
    return key
