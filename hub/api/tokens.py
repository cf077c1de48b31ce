"""Bearer tokens for apps that use the ``/v1`` API over HTTP, each with its scopes.

``beredt token add NAME --scope SCOPE`` prints a token once; only its SHA-256 is kept, in
``api-tokens.json`` in the data folder (mode 0600, owned like the folder so the hub's user can read it when
root ran the command). A token is 256 random bits, so a fast hash is enough: nobody can search that space.
The running hub rereads the file when it changes, so a new or revoked token counts from the next request.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hub.core.errors import ConfigError
from hub.core.reading_errors import os_error

TOKENS_FILE = "api-tokens.json"
PREFIX = "beredt_"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class Scope(enum.StrEnum):
    """What a token may do. ``send``: post messages, start roll-calls, radio status; ``read``: the inbox
    (with sealed personal data opened), message state, links, board; ``admin``: all of it and the roster."""

    SEND = "send"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Token:
    name: str
    scopes: frozenset[Scope]
    created: float
    digest: str  # SHA-256 of the secret, hex

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """``send``, ``read``, ``admin`` (repeated or comma-separated); ``ConfigError`` names the choices."""
    scopes = set()
    for value in values:
        for part in filter(None, (p.strip().lower() for p in value.split(","))):
            try:
                scopes.add(Scope(part))
            except ValueError:
                raise ConfigError(
                    f"ukendt adgang {part!r}; forventede send, read eller admin", key="--scope"
                ) from None
    if not scopes:
        raise ConfigError("angiv mindst én adgang: send, read eller admin", key="--scope")
    return frozenset(scopes)


class TokenStore:
    """The token file: add, revoke and list from the CLI; ``find`` from the running hub."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / TOKENS_FILE
        self._tokens: dict[str, Token] = {}  # by digest
        self._seen: tuple[int, int, int] | None = None

    def find(self, secret: str) -> Token | None:
        """The token ``secret`` stands for, rereading the file if it changed; None if unknown or revoked.

        An unreadable or damaged file denies every token (and raises ``ConfigError`` for the caller to
        report): failing open would let revoked tokens back in."""
        self._refresh()
        return self._tokens.get(digest_of(secret))

    def all(self) -> list[Token]:
        self._refresh()
        return sorted(self._tokens.values(), key=lambda t: t.name)

    def add(self, name: str, scopes: frozenset[Scope]) -> str:
        """Store a new token named ``name``; returns the secret, which is shown once and never stored."""
        if not NAME.fullmatch(name):
            raise ConfigError("use 1-64 of A-Z, a-z, 0-9, '.', '_' or '-'", key="NAME")
        tokens = self.all()
        if any(t.name == name for t in tokens):
            raise ConfigError(
                f"a token named {name!r} exists; revoke it first or pick another name", key="NAME"
            )
        secret = PREFIX + secrets.token_urlsafe(32)
        self._write([*tokens, Token(name, scopes, time.time(), digest_of(secret))])
        return secret

    def revoke(self, name: str) -> bool:
        tokens = self.all()
        kept = [t for t in tokens if t.name != name]
        if len(kept) == len(tokens):
            return False
        self._write(kept)
        return True

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._tokens, self._seen = {}, None
            return
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen == self._seen:
            return
        self._tokens, self._seen = {}, None
        try:
            entries = json.loads(self.path.read_text())["tokens"]
            tokens = {
                e["sha256"]: Token(
                    e["name"], frozenset(Scope(s) for s in e["scopes"]), e["created"], e["sha256"]
                )
                for e in entries
            }
        except OSError as exc:
            raise ConfigError(f"API-nøglerne kan ikke læses: {os_error(exc)}", file=str(self.path)) from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                "filen er beskadiget; flyt den væk, og lav API-nøglerne igen", file=str(self.path)
            ) from exc
        self._tokens, self._seen = tokens, seen

    def _write(self, tokens: list[Token]) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        owner = folder.stat()
        text = json.dumps(
            {
                "tokens": [
                    {"name": t.name, "scopes": sorted(t.scopes), "created": t.created, "sha256": t.digest}
                    for t in tokens
                ]
            },
            indent=2,
        )
        fd, staged = tempfile.mkstemp(prefix=".tokens-", dir=folder)  # mode 0600
        try:
            with os.fdopen(fd, "w") as file:
                file.write(text)
                file.flush()
                if os.geteuid() == 0:
                    os.fchown(file.fileno(), owner.st_uid, owner.st_gid)
                os.fsync(file.fileno())
            os.replace(staged, self.path)
        except BaseException:
            Path(staged).unlink(missing_ok=True)
            raise
        self._refresh()
