"""What staff type into the log book, kept beside the book rather than in it.

The log book is append-only and can never forget, and a typed note may name a citizen or describe their
health. So the book's entry records who wrote what kind of entry, when, how long the text is and a salted
SHA-256 of it (``tekst 3f2a…9c (42 tegn)``); the text and its salt live in the ``note_texts`` table of
the same ``console.db``, which is an ordinary table: a text can be erased (a data subject's request, the
end of the retention period) without breaking the book's chain, and with the salt gone the digest says
nothing about what the text was. Until then the console and the exports show the text next to its entry,
and anyone holding the row can check it against the digest the chain protects.

The text is sealed at rest under the data folder's day key (``hub.core.at_rest``), like the console's
other records: a copied ``console.db`` reads nothing of it, and when the key's retention ends the text is
gone with it (the entry then reads as erased). A TEXT value is a note written before notes were sealed,
read as it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Iterable

import aiosqlite

from hub.core.at_rest import DocumentSealer
from hub.core.errors import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS note_texts (
    digest TEXT PRIMARY KEY,
    salt BLOB NOT NULL,
    text NOT NULL  -- the sealed text (BLOB); TEXT in a book written before notes were sealed
);
"""
_REFERENCE = re.compile(r"tekst ([0-9a-f]{32}) \(\d+ tegn\)")


def digest_of(salt: bytes, text: str) -> str:
    """The first 128 bits of SHA-256 over the salt and the UTF-8 text, as the book records them."""
    return hashlib.sha256(salt + text.encode()).hexdigest()[:32]


def referenced(entry_text: str) -> str | None:
    """The digest an entry's text refers to, or None for an entry that holds its own words."""
    found = _REFERENCE.search(entry_text)
    return found.group(1) if found else None


class NoteTexts:
    """The ``note_texts`` table on the log book's own connection; ``lock`` is the book's, held by every
    write on that connection, so a note's transaction and an append's are never mixed."""

    def __init__(self, db: aiosqlite.Connection, sealer: DocumentSealer, lock: asyncio.Lock) -> None:
        self._db = db
        self._sealer = sealer
        self._lock = lock

    async def create(self) -> None:
        try:
            await self._db.executescript(_SCHEMA)
            await self._db.commit()
        except aiosqlite.Error as exc:
            raise StoreError(f"cannot create the note texts table: {exc}") from exc

    async def keep(self, text: str) -> str:
        """Store ``text`` under a fresh salt; returns what the log book entry says in its place. Committed
        before the entry is written, so the book never refers to a text that was not kept."""
        salt = os.urandom(16)
        digest = digest_of(salt, text)
        sealed = self._sealer.seal(text, _place(digest))
        try:
            async with self._lock:
                await self._db.execute(
                    "INSERT INTO note_texts (digest, salt, text) VALUES (?, ?, ?)", (digest, salt, sealed)
                )
                await self._db.commit()
        except aiosqlite.Error as exc:
            raise StoreError(f"cannot keep a note's text: {exc}") from exc
        return f"tekst {digest} ({len(text)} tegn)"

    async def held(self, entry_texts: Iterable[str]) -> dict[str, str]:
        """The texts still held for the digests these entry texts refer to, by digest; each is checked
        against its digest, so a text changed in the table is not shown as the one the book recorded; a
        text whose day key was destroyed is no longer held."""
        digests = sorted({d for t in entry_texts if (d := referenced(t)) is not None})
        found: dict[str, str] = {}
        for start in range(0, len(digests), 500):  # SQLite's limit on bound parameters
            chunk = digests[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT digest, salt, text FROM note_texts WHERE digest IN ({marks})"
            for digest, salt, stored in await self._db.execute_fetchall(sql, chunk):  # see LogBook._read
                text = self._sealer.open(stored, _place(digest))
                if isinstance(text, str) and digest_of(bytes(salt), text) == digest:
                    found[digest] = text
        return found

    async def forget(self, digests: Iterable[str]) -> int:
        """Erase the texts kept under these digests (a data subject's request); how many there were. The
        freed pages are overwritten, so the database file keeps no copy of the sealed text."""
        wanted = sorted(set(digests))
        erased = 0
        try:
            async with self._lock:
                await self._db.execute("PRAGMA secure_delete=ON")
                for start in range(0, len(wanted), 500):  # SQLite's limit on bound parameters
                    chunk = wanted[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    cursor = await self._db.execute(
                        f"DELETE FROM note_texts WHERE digest IN ({marks})", chunk
                    )
                    erased += cursor.rowcount
                await self._db.commit()
        except aiosqlite.Error as exc:
            raise StoreError(f"cannot erase note texts: {exc}") from exc
        return erased


def _place(digest: str) -> str:
    """The associated data a sealed text is bound to: its row, so it cannot be moved to another."""
    return f"note_texts:{digest}"
