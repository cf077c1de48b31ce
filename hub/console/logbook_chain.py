"""The log book's chain key, and this hub's own record of the heads it sent to its witnesses.

Each entry's hash is ``HMAC-SHA256(key, previous hash || canonical bytes)``. The key is 32 random bytes in
``at-rest-keys/logbook-chain.key`` (0600, in the 0700 key folder), never in ``console.db``: someone who
can rewrite ``console.db`` but cannot read the key folder cannot compute a chain that verifies, however
many hashes they recompute.

A book begun before the key existed keeps the plain SHA-256 links of its older entries (rehashing them
would destroy what they prove). When the key is made, the newest entry then in the book is written to
``at-rest-keys/logbook-plain-until``: entries up to it verify with plain links, every later one only with
the key, so a forger cannot turn keyed entries back into plain ones without the key folder either. If the
key is missing while the book has entries past that boundary (``console.db`` restored without the key
folder), no new key is made: the log book refuses to open, naming the file to restore.

``logbook-heads-sent.jsonl`` in the same folder lists every head the console sent to its witnesses
(``hub.console.logbook_upkeep``); ``beredt log verify`` checks the book against it besides the heads the
witnesses hold, which catches entries cut off the end by someone who had ``console.db`` alone.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from hub.core.errors import StoreError
from hub.core.files import secret_key, write_atomically

KEY_FILE = "logbook-chain.key"
PLAIN_UNTIL_FILE = "logbook-plain-until"
SENT_FILE = "logbook-heads-sent.jsonl"
_KEY_SIZE = 32


def plain_link(previous: bytes, canonical: bytes) -> bytes:
    """The link of an entry written before the chain key existed."""
    return hashlib.sha256(previous + canonical).digest()


@dataclass(frozen=True, slots=True)
class ChainKey:
    """How each entry links to the one before: with the key, except the plain entries of an older book."""

    key: bytes
    plain_until: int
    """The newest entry chained with plain SHA-256 (0: every entry is keyed)."""

    def link(self, seq: int, previous: bytes, canonical: bytes) -> bytes:
        if seq <= self.plain_until:
            return plain_link(previous, canonical)
        return hmac.digest(self.key, previous + canonical, "sha256")

    @classmethod
    def load(cls, folder: Path, head: int) -> ChainKey:
        """The key in the key ``folder``, made on first use; ``head`` (the book's newest seq now) is how far
        the plain links of an older book reach when the key is made here."""
        key_path, until_path = folder / KEY_FILE, folder / PLAIN_UNTIL_FILE
        if not key_path.exists():
            # entries past the boundary were chained with a key that is gone (console.db restored without
            # the key folder, or the key file lost): a new key would make them look forged, and rewriting
            # the boundary would destroy the record of where they start. A crash between writing the
            # boundary and the key leaves the boundary at the head, which is rewritten below.
            boundary = _boundary(until_path)
            if boundary is not None and boundary < head:
                raise StoreError(
                    f"logbogens kædenøgle {key_path} mangler, men post {boundary + 1}-{head} er kædet"
                    " med den: læg logbook-chain.key tilbage fra sikkerhedskopien af at-rest-keys/"
                    " (en ny nøgle ville få dem til at se forfalskede ud)"
                )
            # the boundary first: a crash before the key is made leaves a boundary the next start rewrites
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_atomically(until_path, f"{head}\n", mode=0o600)

        def missing() -> StoreError:
            return StoreError(f"the log book's chain key {key_path} could not be made")

        key = secret_key(key_path, "the log book's chain key", size=_KEY_SIZE, create=True, missing=missing)
        return cls(key, _boundary(until_path) or 0)


def _boundary(until_path: Path) -> int | None:
    """The newest entry chained without the key, as recorded when the key was made; None: not recorded."""
    try:
        return int(until_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise StoreError(f"{until_path} is damaged ({exc}); restore it from its backup") from exc


def record_sent(folder: Path, seq: int, digest: str, at: int, witnesses: list[str]) -> None:
    """Add a head sent to ``witnesses`` (node ids) to this hub's record of them."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = json.dumps({"seq": seq, "hash": digest, "at": at, "to": witnesses}) + "\n"
    fd = os.open(folder / SENT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(line)


def sent_heads(folder: Path) -> list[tuple[int, str]]:
    """Every (seq, hash hex) this hub recorded sending to a witness, oldest first; a damaged line (a
    power cut mid-write) is skipped."""
    path = folder / SENT_FILE
    if not path.exists():
        return []
    heads: list[tuple[int, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            doc = json.loads(line)
            heads.append((int(doc["seq"]), str(doc["hash"])))
        except (ValueError, KeyError, TypeError):
            continue
    return heads
