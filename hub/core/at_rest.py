"""Personal data at rest: day keys kept outside the databases, destroyed when their retention ends.

What ``store.db`` and ``console.db`` hold that may name a person (a message's frame, a console document)
is encrypted with ChaCha20-Poly1305 under a *day key*: 32 random bytes in a file of its own,
``at-rest-keys/<day>.<days>d.key`` in the data folder (files 0600, folder 0700), never inside a database.
A copied database file without that folder reads nothing personal. The file's name says the UTC day it
serves and how many days what it encrypts is kept (the retention of the message's kind, ``Retention``),
so once that many days have passed the key is destroyed (overwritten, then removed) and every copy of the
rows under it, in free pages, the WAL or an old backup of the database, is unreadable for good
(crypto-shredding). Each sealed value is bound to its row (the associated data), so a ciphertext cannot be
moved to another row.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from hub.core.clock import PLAUSIBLE_EPOCH
from hub.core.errors import DataErased, SealError, StoreError
from hub.core.files import secret_key

KEY_FOLDER = "at-rest-keys"
KEY_SIZE = 32
NONCE_SIZE = 12
DAY = 86400
DEFAULT_RETENTION_DAYS = 60
"""Longer than any frame lives (45 days at most), so retention never ends a delivery still under way."""
MAX_RETENTION_DAYS = 3650
_KEY_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(\d{1,5})d$")


@dataclass(frozen=True, slots=True)
class Retention:
    """How many days personal content is kept, per message kind (``[retention]`` in the config)."""

    days: int = DEFAULT_RETENTION_DAYS
    by_kind: Mapping[str, int] = field(default_factory=dict)

    def days_for(self, kind: str) -> int:
        return self.by_kind.get(kind, self.days)


class DataKeys:
    """The day keys of one data folder: made on first use, cached, destroyed when their days are over."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._keys: dict[str, ChaCha20Poly1305] = {}
        self._floor: float | None = None
        """Data is never filed under a day before this: the newest day key held, or 2025."""

    def key_for(self, when: float, keep_days: int) -> str:
        """The key for data written at ``when`` on a clock that may be wrong: a Pi without a real-time
        clock boots in 1970, and data filed under 1970 would be destroyed as soon as the clock is set. So
        the day never goes back before the newest day already used (or 2025)."""
        if self._floor is None:
            self._floor = max([PLAUSIBLE_EPOCH, *(self.starts(k) for k in self.held())])
        self._floor = max(self._floor, when)
        return self.key_id(self._floor, keep_days)

    @staticmethod
    def key_id(when: float, keep_days: int) -> str:
        """The key for data written at ``when`` (Unix seconds) and kept ``keep_days`` days."""
        day = datetime.datetime.fromtimestamp(max(when, 0), datetime.UTC).date()
        return f"{day.isoformat()}.{keep_days}d"

    @staticmethod
    def starts(key_id: str) -> float:
        """The start of the UTC day a key serves."""
        return datetime.datetime.fromisoformat(key_id[:10]).replace(tzinfo=datetime.UTC).timestamp()

    @staticmethod
    def ends(key_id: str) -> float | None:
        """When the data under ``key_id`` must be gone (Unix seconds); None for a name that is no key."""
        match = _KEY_NAME.match(key_id)
        if match is None:
            return None
        day = datetime.date.fromisoformat(match.group(1))
        start = datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.UTC).timestamp()
        return start + DAY * (1 + int(match.group(2)))  # the whole day, then its days of retention

    def seal(self, key_id: str, plain: bytes, context: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_SIZE)
        return nonce + self._aead(key_id, create=True).encrypt(nonce, plain, context)

    def open(self, key_id: str, sealed: bytes, context: bytes) -> bytes:
        """The plain bytes; ``DataErased`` when the key was destroyed, ``SealError`` when they do not open."""
        try:
            return self._aead(key_id, create=False).decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], context)
        except InvalidTag:
            raise SealError(
                f"de gemte data kan ikke åbnes med dagsnøglen {key_id} (en beskadiget række)"
            ) from None

    def held(self) -> list[str]:
        """The key ids on disk, oldest first."""
        if not self.folder.exists():
            return []
        return sorted(p.stem for p in self.folder.glob("*.key") if _KEY_NAME.match(p.stem))

    def expired(self, now: float) -> list[str]:
        """Key ids whose retention has ended at ``now``."""
        return [k for k in self.held() if (self.ends(k) or now + 1) <= now]

    def destroy(self, key_id: str) -> None:
        """Overwrite the key file and remove it: data under it can no longer be opened by anyone."""
        self._keys.pop(key_id, None)
        path = self._path(key_id)
        try:
            with open(path, "r+b") as handle:
                handle.write(bytes(KEY_SIZE))
                handle.flush()
                os.fsync(handle.fileno())
            path.unlink()
        except FileNotFoundError:
            return

    def _path(self, key_id: str) -> Path:
        if _KEY_NAME.match(key_id) is None:
            raise SealError(f"{key_id!r} er ikke navnet på en dagsnøgle")
        return self.folder / f"{key_id}.key"

    def _aead(self, key_id: str, *, create: bool) -> ChaCha20Poly1305:
        aead = self._keys.get(key_id)
        if aead is None:
            aead = ChaCha20Poly1305(self._load(key_id, create))
            self._keys[key_id] = aead
        return aead

    def _load(self, key_id: str, create: bool) -> bytes:
        def destroyed() -> DataErased:
            return DataErased(f"dagsnøglen {key_id} er destrueret: det, den krypterede, er slettet")

        return secret_key(self._path(key_id), "dagsnøglen", size=KEY_SIZE, create=create, missing=destroyed)


class DocumentSealer:
    """JSON documents at rest (the console's records in ``console.db``), sealed under today's day key.

    A document is written as a BLOB: the day key's id, a newline, and the JSON sealed under that key with
    the document's place (table and key) as associated data. It is sealed again under the day's key at
    every save, so a key is destroyed ``keep_days`` after the last save of anything under it. A TEXT value
    is a document written before documents were sealed: it is read as it is and sealed at its next save.
    A document whose key was destroyed reads as None (past its retention)."""

    def __init__(self, keys: DataKeys, keep_days: int, now: Callable[[], float]) -> None:
        self.keys = keys
        self.keep_days = keep_days
        self._now = now

    def seal(self, document: Any, place: str) -> bytes:
        key_id = self.keys.key_for(self._now(), self.keep_days)
        plain = json.dumps(document, separators=(",", ":")).encode()
        return key_id.encode() + b"\n" + self.keys.seal(key_id, plain, place.encode())

    def open(self, value: object, place: str) -> Any:
        """The document, or None when its key was destroyed; ``StoreError`` when it is damaged."""
        try:
            if isinstance(value, bytes):
                key_id, _, sealed = value.partition(b"\n")
                plain: str | bytes = self.keys.open(key_id.decode(), sealed, place.encode())
            else:
                plain = str(value)
            return json.loads(plain)
        except DataErased:
            return None
        except (SealError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{place} i databasen er beskadiget: {exc}") from exc
