"""The API's Unix socket: how the CLI, and only those who may touch the hub's files, reach their own hub.

The socket is ``api.sock`` in the data folder, mode 0600, owned by the user the hub runs as. The kernel
checks who connects, so no secret is stored for it and no browser or network peer can reach it. It is bound
in a private temporary folder and renamed into place, so it is never reachable with looser permissions, not
even for an instant.

A socket address holds at most 107 bytes, less than a deep data folder's path; longer paths are reached
through ``/proc/self/fd`` and an open handle on the folder (``short_address``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hub.core.errors import BeredtError, ConfigError
from hub.core.reading_errors import os_error

SOCKET_NAME = "api.sock"
_MAX_ADDRESS = 100  # sun_path holds 108 bytes with the terminating zero; keep a margin


class Unreachable(BeredtError):
    """No hub answers on the socket (not running, or this user may not reach it)."""


@contextlib.contextmanager
def short_address(path: Path) -> Iterator[str]:
    """A socket address for ``path`` that fits ``sun_path``: the path itself, or a ``/proc/self/fd`` path
    through an open handle on its folder, valid until the block exits."""
    text = os.fspath(path)
    if len(text.encode()) <= _MAX_ADDRESS:
        yield text
        return
    folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


def bind_private(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` that only this user (and root) can connect to.

    ``ConfigError`` if another hub already answers there: two hubs must never share a data folder."""
    if path.exists() and _answers(path):
        raise ConfigError(
            f"another hub already serves {path}; stop it first (two hubs must not share a data folder)"
        )
    try:
        staging = Path(tempfile.mkdtemp(prefix=".api-", dir=path.parent))  # mode 0700
    except OSError as exc:
        raise ConfigError(f"API-soklen kan ikke oprettes i {path.parent}: {os_error(exc)}") from exc
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        staged = staging / SOCKET_NAME
        with short_address(staged) as address:
            sock.bind(address)
        os.chmod(staged, 0o600)
        os.replace(staged, path)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"API-soklen {path} kan ikke åbnes: {os_error(exc)}") from exc
    finally:
        with contextlib.suppress(OSError):
            for leftover in staging.iterdir():
                leftover.unlink()
            staging.rmdir()
    return sock


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with short_address(path) as address:
            probe.connect(address)
    except OSError:
        return False  # a stale socket from a hub that died: safe to replace
    finally:
        probe.close()
    return True


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            with short_address(self._path) as address:
                sock.connect(address)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def request(
    path: Path, method: str, target: str, body: Any = None, *, timeout: float = 30
) -> tuple[int, Any]:
    """One request to the hub whose socket is ``path``: ``(status, decoded JSON body)``.

    ``Unreachable`` says why the hub could not be reached and what to do."""
    connection = _UnixConnection(path, timeout)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    try:
        connection.request(method, target, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
    except PermissionError as exc:
        raise Unreachable(
            f"må ikke bruge hubbens API-sokkel {path}: kør som hubbens bruger (sudo -u beredt beredt ...)"
            " eller brug et token på HTTP-porten"
        ) from exc
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise Unreachable(f"ingen hub svarer på {path}; start den med 'beredt run'") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise Unreachable(f"hubben på {path} svarede ikke: {exc}") from exc
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, {"error": raw.decode(errors="replace")[:200]}
