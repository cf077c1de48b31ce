"""The crisis staff's log book: append-only, tamper-evident, exportable for evaluation and FOI requests.

Danish crisis staffs keep a log of every message, action, decision and omission; after the event it is
read by evaluators and may be released under the freedom-of-information act, so it must be possible to
show that nobody changed it afterwards. Each entry carries ``hash = HMAC-SHA256(chain key, previous hash
|| canonical bytes of the entry)`` (the first entry chains from 32 zero bytes), with canonical bytes being
the compact UTF-8 JSON array ``[seq, time, author, node, type, text]``; the key is kept in the key folder,
not in the database (``hub.console.logbook_chain``, which also says how the plain SHA-256 links of a book
begun before the key stay verifiable). An auditor with the key file can recompute the chain with any tool.
Changing any field, reordering or deleting an entry breaks the chain from that entry on, and ``verify``
names the first broken seq; without the key a forger cannot recompute the hashes after a change. Cutting
entries off the *end* leaves a shorter valid chain: that is caught by checking heads sent to witnesses or
printed on an earlier report with ``verify(anchor=...)``. SQLite triggers refuse UPDATE and DELETE, so
accidents fail loudly; a deliberate forger with file access is caught by the chain, not stopped by the
triggers.

Durability: an entry is committed when ``append`` returns. Entries a person writes, and every entry by
default, are fsynced at once (``synchronous=FULL``). The entries that record received messages are held
(``hold``, stamped when they are held) and written together: with the next append, at ``flush`` (the
console's tick, when the oldest has waited ``[logbook] received_hold_seconds``), before a read of the whole
book, before the head goes to the witnesses, and at a clean stop. They need no fsync of their own
(``synchronous=NORMAL``): the messages themselves are durable in the store before they are acknowledged, and
the console writes an entry again at its next start for a message whose entry a crash lost (``received_ids``
finds which have one). At a status every few seconds this writes the newest page of the book once a minute
instead of once per status: on a Raspberry Pi's SD card that was a quarter of the bytes written per status.

The work per view does not grow with the book: ``page`` reads a window of entries newest first by seq,
and ``verify_new`` remembers the head it last verified and checks only the entries after it (and that
the remembered head is still there, unchanged). The full walk, ``verify``, is for audits and reports.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from hub.console import logbook_archive as archive
from hub.console import logbook_blocks as blocks
from hub.console.logbook_chain import ChainKey, plain_link
from hub.console.note_texts import NoteTexts, referenced
from hub.core.at_rest import DEFAULT_RETENTION_DAYS, KEY_FOLDER, DataKeys, DocumentSealer
from hub.core.clock import PLAUSIBLE_EPOCH, Clock
from hub.core.errors import StoreError

GENESIS = bytes(32)
EXERCISE_MARK = "ØVELSE: "
"""How an entry about an exercise's message begins, so nobody reading the book takes it for real."""
MAX_PAGE = 200
"""The most entries one ``page`` returns: a view costs the same after three days as after three minutes."""
VERIFY_CHUNK = 250
"""Entries checked between two chances for the event loop's other work: the first view after a start
walks the whole live table (tens of thousands of entries after days, ``verify_new``), a rotation up to
10,000 (a book's single table from before blocks, all of it at once); a chunk's hashing holds the loop a
few milliseconds, the whole walk of 72,000 over half a second."""
PAGE_SIZE = 1024  # bytes per database page of a console.db made now (an existing one keeps its own)
_COLUMNS = "seq, time, author, node, type, text, hash"
_MESSAGE_ID = re.compile(r"\[id ([0-9a-f]+)\]")
"""How an entry of a received message names it (``hub.console.messages.received_line``): the last match,
after anything the sender wrote, and before what a start adds to an entry it writes late."""


class EntryType(enum.StrEnum):
    """What an entry records; ``label_da`` is how the printed report says it."""

    SENT = "sent"
    RECEIVED = "received"
    LINK = "link"
    DECISION = "decision"
    ACTION = "action"
    OMISSION = "omission"
    NOTE = "note"

    @property
    def label_da(self) -> str:
        return _LABELS_DA[self]


_LABELS_DA = {
    EntryType.SENT: "Sendt",
    EntryType.RECEIVED: "Modtaget",
    EntryType.LINK: "Forbindelse",
    EntryType.DECISION: "Beslutning",
    EntryType.ACTION: "Handling",
    EntryType.OMISSION: "Undladelse",
    EntryType.NOTE: "Notat",
}


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry as stored; ``hash`` chains it to every entry before it."""

    seq: int
    time: int
    author: str
    node: str
    type: EntryType
    text: str
    hash: bytes

    def canonical(self) -> bytes:
        return canonical_bytes(self.seq, self.time, self.author, self.node, self.type, self.text)

    def view(self, note: str | None = None) -> dict[str, Any]:
        """What the console shows of an entry, JSON-ready; ``note``: the typed text kept beside the book
        (``hub.console.note_texts``) that this entry's digest stands for, while it is still held."""
        return {"seq": self.seq, "time": self.time, "author": self.author, "type": self.type.value,
                "text": self.text, "note": note}  # fmt: skip


def canonical_bytes(seq: int, time: int, author: str, node: str, type: str, text: str) -> bytes:
    """The bytes an entry's hash covers (besides the previous hash)."""
    return json.dumps(
        [seq, time, author, node, str(type), text], ensure_ascii=False, separators=(",", ":")
    ).encode()


chain_hash = plain_link
"""The unkeyed link: what entries of a book begun before the chain key carry, and what a forger without
the key can compute."""


class LogBook:
    """The log book in its own table of an SQLite database, on a connection of its own; each append is
    one write transaction that reads the head and adds the entries, so writers never share a seq."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        clock: Clock,
        node: str,
        sealer: DocumentSealer,
        chain: ChainKey,
        archive: Path | None = None,
        keys: Path | None = None,
        block: int = blocks.BLOCK,
    ) -> None:
        self._db = db  # its own connection: an append's write transaction is never mixed with other work
        self._lock = asyncio.Lock()
        """Held by every write on ``_db`` (the notes' too): Python's sqlite3 opens a transaction at a
        write's first statement, so a note kept between an append's BEGIN and its commit would otherwise
        break the append ("cannot start a transaction within a transaction") or join it."""
        self.notes = NoteTexts(db, sealer, self._lock)
        self._clock = clock
        self.node = node
        self.chain = chain
        self.archive = archive
        """The folder of archive segments (``hub.console.logbook_archive``); None: nothing is archived."""
        self.keys = keys
        """The key folder that holds the chain key and the record of heads sent to witnesses."""
        self.block = block  # entries per block of the live table (``hub.console.logbook_blocks``)
        self._closed = False
        self._verified: tuple[int, bytes] = (0, GENESIS)
        """The newest (seq, hash) whose chain back to the genesis has been checked by this process."""
        self._archived: tuple[int, bytes] | None = None  # see _archived_head
        self._synchronous = "FULL"  # SQLite's default; see append_many
        self._held: list[tuple[EntryType, str, str, int]] = []
        """Entries of received messages not yet written (``hold``), each with the time it was held."""
        self.held_since: float | None = None
        """The event loop's time when the oldest held entry was held; None: nothing held."""
        self.on_written: Callable[[list[LogEntry]], None] | None = None
        """Told of held entries once they are written (the console shows them live)."""

    @classmethod
    async def open(
        cls,
        path: Path | str,
        clock: Clock,
        node: str,
        sealer: DocumentSealer | None = None,
        *,
        block: int = blocks.BLOCK,
    ) -> LogBook:
        """Open (creating if needed) the log book in the database at ``path``; ``aclose`` closes it.
        ``sealer`` seals typed texts at rest; by default under the day keys of the database's folder.
        ``block``: entries per block of the live table, which the archive moves whole."""
        if not Path(path).parent.is_dir():
            # checked up front: a failed aiosqlite connect leaves its worker thread racing the loop's close
            raise StoreError(
                f"cannot open log book database {path}: folder {Path(path).parent} does not exist"
            )
        try:
            db = await aiosqlite.connect(path)
            # a new file's page size: each append rewrites the newest page whole, so small pages wear the
            # SD card less
            await db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            await db.execute("PRAGMA journal_mode=WAL")
        except Exception as exc:
            raise StoreError(f"cannot open log book database {path}: {exc}") from exc
        folder = Path(path).parent
        if sealer is None:
            sealer = DocumentSealer(DataKeys(folder / KEY_FOLDER), DEFAULT_RETENTION_DAYS, clock.time)
        try:
            head = await _newest_seq(db, folder / archive.FOLDER)
            chain = await asyncio.to_thread(ChainKey.load, folder / KEY_FOLDER, head)
            book = cls(db, clock, node, sealer, chain, folder / archive.FOLDER, folder / KEY_FOLDER, block)
            await book.create(head)
        except BaseException:
            await db.close()
            raise
        return book

    async def create(self, newest: int) -> None:
        """Make the block the entry after ``newest`` goes in and the view over the blocks, where missing;
        a book kept in one table (before blocks) keeps it as its oldest block
        (``hub.console.logbook_blocks``)."""
        try:
            await self._db.execute("BEGIN IMMEDIATE")
            await blocks.adopt_legacy(self._db)
            await blocks.guard(self._db)  # triggers dropped by hand (a repair, say) are back
            await blocks.ensure(self._db, [newest + 1], self.block)
            if not await blocks.has_view(self._db):  # dropped by hand
                await blocks.view(self._db)
            await self._db.commit()
        except Exception as exc:
            await self._db.rollback()
            raise StoreError(f"cannot create the log book table: {exc}") from exc
        await self.notes.create()

    async def aclose(self) -> None:
        if self._closed:
            return
        try:
            await self.flush()
        finally:
            self._closed = True
            await self._db.close()

    def hold(self, items: Sequence[tuple[EntryType, str, str]]) -> None:
        """Keep (type, text, author) entries, stamped now, to be written with the next write (see the
        module docstring)."""
        _check_texts(items)
        if items and self.held_since is None:
            self.held_since = asyncio.get_running_loop().time()
        now = int(self._clock.time())
        self._held += [(type, text, author, now) for type, text, author in items]

    @property
    def held(self) -> int:
        return len(self._held)

    async def flush(self) -> None:
        """Write the held entries now (``synchronous=NORMAL``: see the module docstring); returns once a
        write under way (which may have taken held entries) has finished as well."""
        if not self._held and self._lock.locked():
            async with self._lock:
                pass
        if self._held:
            await self.append_many([], durable=False)

    async def append(self, type: EntryType, text: str, *, author: str) -> LogEntry:
        """Add an entry stamped with the clock's time; durable (committed) when this returns."""
        (entry,) = await self.append_many([(type, text, author)])
        return entry

    async def append_typed(self, type: EntryType, text: str, *, author: str) -> LogEntry:
        """An entry a person typed: the text is kept beside the book, the entry records its digest."""
        if not text.strip():
            raise ValueError("text: en logbogspost skal have tekst")
        return await self.append(type, await self.notes.keep(text), author=author)

    async def views(self, entries: Sequence[LogEntry], *, notes: bool = True) -> list[dict[str, Any]]:
        """The console's view of these entries, each typed one with its text while that is held (and
        ``notes``: the reader's role may see personal data)."""
        held = await self.notes.held(e.text for e in entries) if notes else {}
        return [e.view(held.get(referenced(e.text) or "")) for e in entries]

    async def typed(self) -> list[tuple[LogEntry, str]]:
        """Every typed entry whose text is still held, with that text (a subject access search)."""
        entries = [e for e in await self.entries() if referenced(e.text)]
        held = await self.notes.held(e.text for e in entries)
        return [(e, held[d]) for e in entries if (d := referenced(e.text) or "") in held]

    async def forget(self, entries: Sequence[LogEntry]) -> int:
        """Erase the texts these typed entries stand for; the entries and the chain stay as they are."""
        return await self.notes.forget(d for e in entries if (d := referenced(e.text)))

    async def append_many(
        self, items: Sequence[tuple[EntryType, str, str]], *, durable: bool = True
    ) -> list[LogEntry]:
        """Add (type, text, author) entries in order with one commit: busy hours cost one fsync per batch,
        and with ``durable=False`` none. Held entries (``hold``) are written first, in the same commit, so
        the book stays in the order things happened; the entries of ``items`` are returned."""
        if self._closed:
            raise StoreError("log book is closed")
        _check_texts(items)
        # a write once begun finishes even when its caller is cancelled (a stop cancels the console's loops
        # mid-write): the held entries it took are written, not dropped, and no transaction is left open
        return await asyncio.shield(self._append_many(items, durable))

    async def _append_many(
        self, items: Sequence[tuple[EntryType, str, str]], durable: bool
    ) -> list[LogEntry]:
        entries: list[LogEntry] = []
        held: list[tuple[EntryType, str, str, int]] = []
        held_since: float | None = None
        async with self._lock:
            try:
                wanted = "FULL" if durable else "NORMAL"
                if wanted != self._synchronous:
                    await self._db.execute(f"PRAGMA synchronous={wanted}")
                    self._synchronous = wanted
                # the write lock before the head is read: another writer on this file (a console still
                # closing while its successor starts) waits instead of taking the same seq
                await self._db.execute("BEGIN IMMEDIATE")
                async with self._db.execute("SELECT seq, hash FROM logbook ORDER BY seq DESC LIMIT 1") as cur:
                    last = await cur.fetchone()
                seq, previous = (last[0], bytes(last[1])) if last else (0, GENESIS)
                now = int(self._clock.time())
                # taken with the time, no await between: an entry held while this write waited for the
                # database is stamped before ``now`` and goes first, never after a later entry
                held, self._held, held_since, self.held_since = self._held, [], self.held_since, None
                for type, text, author, time in [*held, *((t, x, a, now) for t, x, a in items)]:
                    seq += 1
                    canonical = canonical_bytes(seq, time, author, self.node, type, text)
                    previous = self.chain.link(seq, previous, canonical)
                    entries.append(LogEntry(seq, time, author, self.node, type, text, previous))
                await blocks.ensure(self._db, [e.seq for e in entries], self.block)
                for table, rows in itertools.groupby(entries, lambda e: blocks.name(e.seq, self.block)):
                    await self._db.executemany(
                        f'INSERT INTO "{table}" ({_COLUMNS}) VALUES (?,?,?,?,?,?,?)',
                        [(e.seq, e.time, e.author, e.node, str(e.type), e.text, e.hash) for e in rows],
                    )
                await self._db.commit()
            except aiosqlite.Error as exc:
                await self._db.rollback()
                if held:  # kept for the next write, before any held since
                    self._held, self.held_since = held + self._held, held_since
                raise StoreError(f"log book append failed: {exc}") from exc
        if held and self.on_written is not None:
            self.on_written(entries[: len(held)])
        return entries[len(held) :]

    async def sync(self) -> None:
        """Make every entry durable: a PASSIVE checkpoint fsyncs the WAL and copies it into the database."""
        await self.flush()
        try:
            async with self._lock:  # not inside an append's transaction
                await self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except aiosqlite.Error as exc:
            raise StoreError(f"log book sync failed: {exc}") from exc

    async def entries(self, *, since: int = 0, limit: int = -1) -> list[LogEntry]:
        """Entries with seq > ``since`` in seq order (all of them unless ``limit``), archived ones first."""
        return [_row(row) for row in (await self._rows(since))[: None if limit < 0 else limit]]

    async def _rows(self, since: int = 0) -> list[Any]:
        """Archived then live rows with seq > ``since``; a live row the archive already holds (a rotation
        cut short before it let go of it) is the archive's."""
        await self.flush()  # a walk of the whole book (an export, a verify) includes what is held
        # the live rows first: a rotation (this hub's, beside ``beredt log verify``) between the two reads
        # then moves rows the archive read still finds, where the other order would miss them
        live = await self._read(f"SELECT {_COLUMNS} FROM logbook WHERE seq > ? ORDER BY seq", (since,))
        archived: list[Any] = []
        if (folder := self.archive) is not None:
            archived = await asyncio.to_thread(lambda: list(archive.read(folder, since=since)))
        after = archived[-1][0] if archived else await self._archived_seq()
        return archived + [row for row in live if row[0] > after]

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of a read, in one trip to the connection's thread. A read left open between trips
        would pin its snapshot: an append's BEGIN IMMEDIATE on this connection in between could not take
        the write lock once console.db's other connection had committed ("database is locked" at once,
        without waiting)."""
        return list(await self._db.execute_fetchall(sql, params))

    async def _archived_seq(self) -> int:
        found = await self._archived_head()
        return found[0] if found else 0

    async def _archived_head(self) -> tuple[int, bytes] | None:
        """The archive's newest (seq, hash), read once (only ``rotate`` changes it)."""
        if self._archived is None and self.archive is not None:
            found = await asyncio.to_thread(archive.head, self.archive)
            self._archived = found or (0, GENESIS)
        return None if self._archived is None or not self._archived[0] else self._archived

    async def rotate(self, keep: int, most: int = 10_000, *, older_than: int | None = None) -> int:
        """Move the oldest live entries into a new archive segment, whole blocks at a time
        (``hub.console.logbook_blocks``; at most ``most`` entries, but at least a block): the blocks that
        hold only entries before the newest ``keep``, and with ``older_than`` (Unix seconds) also those that
        hold only entries up to the newest one written before it, except the newest ``MAX_PAGE`` (the
        log-book tab always has a page to show). Entries stamped before ``PLAUSIBLE_EPOCH`` (a clock not
        yet set) do not count as old. Returns how many moved. The entries moved are checked to chain on
        from the archive first: a broken chain is a ``StoreError`` and nothing moves."""
        if self.archive is None or keep < 1:
            raise ValueError("rotate: needs an archive folder and keep >= 1")
        folder = self.archive
        async with self._lock:
            found = await asyncio.to_thread(archive.head, folder)
            seq, previous = found or (0, GENESIS)
            cut = await self._cut(keep, older_than)
            due = blocks.due(await blocks.blocks(self._db), cut, seq, most)
            if not due:
                return 0
            upto = max(block.high or 0 for block in due)
            rows = [
                (*raw[:6], bytes(raw[6]))
                for raw in await self._read(
                    f"SELECT {_COLUMNS} FROM logbook WHERE seq > ? AND seq <= ? ORDER BY seq", (seq, upto)
                )
            ]
            for n, raw in enumerate(rows, 1):
                if _check(self.chain, raw, seq + 1, previous) is not None:
                    raise StoreError(f"log book entry {seq + 1} breaks the chain: nothing archived")
                seq, previous = raw[0], raw[6]
                if n % VERIFY_CHUNK == 0:
                    await asyncio.sleep(0)  # other work runs between chunks (see VERIFY_CHUNK)
            if rows:
                await asyncio.to_thread(archive.write, folder, rows)
            # the segment is durable: the live table lets go of those blocks (and of any a cut-short run
            # left); finished even when the caller is cancelled (a stop), so no transaction is left open
            await asyncio.shield(self._drop([block.name for block in due]))
            self._archived = (seq, previous)
            if self._verified[0] <= seq:
                self._verified = (seq, previous)
        return len(rows)

    async def _drop(self, names: list[str]) -> None:
        """Drop these blocks, their freed pages left as they are (``hub.console.logbook_blocks``)."""
        (secure,) = (await self._read("PRAGMA secure_delete"))[0]
        try:
            await self._db.execute("PRAGMA secure_delete=OFF")
            await self._db.execute("BEGIN IMMEDIATE")
            await blocks.drop(self._db, names)
            await self._db.commit()
        except aiosqlite.Error as exc:
            await self._db.rollback()
            raise StoreError(f"log book rotation failed: {exc}") from exc
        finally:
            await self._db.execute(f"PRAGMA secure_delete={int(secure)}")

    async def _cut(self, keep: int, older_than: int | None) -> int:
        """The newest seq ``rotate`` may move (see there)."""
        newest = await self._read("SELECT seq FROM logbook ORDER BY seq DESC LIMIT 1")
        if not newest:
            return 0
        top = int(newest[0][0])
        old = await self._read(
            "SELECT coalesce(max(seq), 0) FROM logbook WHERE time < ? AND time >= ?",
            (older_than or 0, PLAUSIBLE_EPOCH),
        )
        return max(top - keep, min(top - MAX_PAGE, int(old[0][0])))

    async def page(self, *, before: int | None = None, limit: int = 100) -> list[LogEntry]:
        """Up to ``limit`` (at most ``MAX_PAGE``) entries with seq < ``before``, newest first."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit: forventede 1 til {MAX_PAGE} poster")
        rows = await self._read(
            f"SELECT {_COLUMNS} FROM logbook WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            (before if before is not None else 2**63 - 1, limit),
        )
        return [_row(row) for row in rows]

    async def verify_new(self) -> int | None:
        """Like ``verify``, but walk only the entries added since the last call that found none broken.

        The remembered head must still be stored with the same hash, so cutting the book back or
        rewriting its newest verified entry is still found; a change deeper in the verified part is
        found by ``verify`` (the audit, the report and ``beredt log verify`` run the full walk)."""
        seq, previous = self._verified
        archived = await self._archived_head()
        if archived is not None and archived[0] >= seq:
            seq, previous = archived  # the archive is checked by the full walk; the live table chains on
        elif seq:
            rows = await self._read("SELECT hash FROM logbook WHERE seq = ?", (seq,))
            if not rows or bytes(rows[0][0]) != previous:
                return seq
        while True:
            archived = await self._archived_head()
            if archived is not None and archived[0] > seq:
                seq, previous = archived  # a rotation between two chunks moved the next entries
            rows = await self._read(
                f"SELECT {_COLUMNS} FROM logbook WHERE seq > ? ORDER BY seq LIMIT ?", (seq, VERIFY_CHUNK)
            )
            if not rows:
                return None
            for raw in rows:
                broken = _check(self.chain, raw, seq + 1, previous)
                if broken is not None:
                    return broken
                seq, previous = raw[0], bytes(raw[6])
            self._verified = (seq, previous)

    async def received_ids(self, since: float) -> set[str]:
        """The message ids (hex) that entries of received messages stamped at or after ``since`` name, held
        ones included: what the console checks at a start before it writes such an entry again."""
        rows = await self._read(
            "SELECT text FROM logbook WHERE type = ? AND time >= ?", (EntryType.RECEIVED.value, int(since))
        )
        texts = [str(row[0]) for row in rows]
        texts += [text for type, text, _, _ in self._held if type is EntryType.RECEIVED]
        return {found[-1] for text in texts if (found := _MESSAGE_ID.findall(text))}

    async def head(self) -> tuple[int, str] | None:
        """The newest (seq, hash hex): print or send it somewhere else to anchor the chain."""
        rows = await self._read("SELECT seq, hash FROM logbook ORDER BY seq DESC LIMIT 1")
        return (int(rows[0][0]), bytes(rows[0][1]).hex()) if rows else None

    async def verify(
        self, anchor: tuple[int, str] | None = None, *, anchors: Iterable[tuple[int, str]] = ()
    ) -> int | None:
        """Recompute the chain; return the first seq that is broken, missing or differs from a head held
        elsewhere, None if all is intact.

        ``anchor`` and ``anchors`` are (seq, hash hex) heads seen earlier (printed on a report, sent to a
        witness): where the book holds that seq with another hash, that seq differs (the chain itself
        names an earlier entry if one was changed); where it ends before that seq, the first missing entry
        does, which is how entries cut off the end are found.
        """
        held: dict[int, set[str]] = {}
        for seq, seen in [*([anchor] if anchor else []), *anchors]:
            held.setdefault(seq, set()).add(seen.lower())
        previous, expected = GENESIS, 1
        for raw in await self._rows():
            broken = _check(self.chain, raw, expected, previous)
            if broken is not None:
                return broken
            digest = bytes(raw[6])
            if held.get(raw[0], {digest.hex()}) != {digest.hex()}:
                return int(raw[0])
            previous, expected = digest, expected + 1
        if held and max(held) >= expected:
            return expected
        return None


def _check_texts(items: Sequence[tuple[EntryType, str, str]]) -> None:
    """``ValueError`` for an entry without text: the book records what happened, never a blank line."""
    if any(not text.strip() for _, text, _ in items):
        raise ValueError("text: en logbogspost skal have tekst")


async def _newest_seq(db: aiosqlite.Connection, folder: Path) -> int:
    """The newest seq in the book at ``db`` (0 for a new one), live or archived."""
    async with db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (blocks.VIEW,)) as cur:
        exists = await cur.fetchone() is not None
    live = 0
    if exists:  # the view over the blocks, or a book's single table from before blocks
        async with db.execute(f"SELECT seq FROM {blocks.VIEW} ORDER BY seq DESC LIMIT 1") as cur:
            (live,) = await cur.fetchone() or (0,)
    archived = await asyncio.to_thread(archive.head, folder)
    return max(int(live), archived[0] if archived else 0)


def _check(chain: ChainKey, raw: Sequence[Any], expected: int, previous: bytes) -> int | None:
    """The seq at which this stored row breaks the chain (``expected`` if it is missing), else None."""
    seq, time, author, node, type_, text, stored = raw
    if seq != expected:
        return expected
    if not isinstance(time, int) or not isinstance(text, str):
        return int(seq)
    if chain.link(seq, previous, canonical_bytes(seq, time, author, node, type_, text)) != bytes(stored):
        return int(seq)
    return None


def _row(raw: aiosqlite.Row) -> LogEntry:
    seq, time, author, node, type_, text, digest = raw
    try:
        return LogEntry(
            int(seq), int(time), str(author), str(node), EntryType(type_), str(text), bytes(digest)
        )
    except (TypeError, ValueError) as exc:
        raise StoreError(f"log book entry {seq} is damaged ({exc}); run verify() to see where") from exc
