"""The register of power-dependent citizens in ``citizens.db``: sealed rows, access rules and the access log.

Every person's fields are one sealed blob (see ``hub.citizens.vault``); the only columns in clear are the
register id (random, 8 hex digits, meaningless outside Beredt), the keyed CPR tag used to recognise a
person on the next import, and the time of the last change. Only the roles in ``READERS`` may read the
register; every read, import and erasure is written to the access log with who, what and how many, never
with names, CPR numbers or addresses. The database runs with ``secure_delete`` so an erased row's bytes
are overwritten, and erasure deletes the person's wrapped key, so copies elsewhere are unreadable too.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiosqlite

from hub.citizens.records import Citizen, Rejected, parse_csv
from hub.citizens.vault import Vault
from hub.core.clock import Clock
from hub.core.errors import AuthError, StoreError

CITIZENS_DB = "citizens.db"
READERS = frozenset({"coordinator", "nurse"})  # console roles that may read personal details
SYSTEM = "hub:system"  # the hub itself, building lists (no console user name has a colon)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS citizens (
    id TEXT PRIMARY KEY,
    cpr_tag BLOB NOT NULL UNIQUE,
    wrapped_key BLOB NOT NULL,
    sealed BLOB NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS access_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Reader:
    """Who asks: a console user name and role, or the CLI's operating-system user as coordinator."""

    who: str
    role: str

    def check(self) -> None:
        if self.role not in READERS:
            raise AuthError(
                f"rollen {self.role!r} må ikke se borgerregistret (kun {', '.join(sorted(READERS))})",
                forbidden=True,
            )


HUB_READER = Reader(SYSTEM, "coordinator")


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    updated: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report in Danish, for the CLI; rejected rows by line number and field, never by value."""
        head = f"Importeret: {self.added} nye, {self.updated} opdaterede, {len(self.rejected)} afvist"
        return [head, *(f"  afvist {r}" for r in self.rejected)]


class Register:
    def __init__(self, db: aiosqlite.Connection, vault: Vault, clock: Clock) -> None:
        self._db = db
        self._vault = vault
        self._clock = clock

    @classmethod
    async def open(cls, path: Path, vault: Vault, clock: Clock) -> Register:
        if not path.parent.is_dir():
            raise StoreError(f"cannot open the citizen register {path}: folder {path.parent} does not exist")
        db = await aiosqlite.connect(path)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA secure_delete=ON")
            await db.executescript(_SCHEMA)
            await db.commit()
        except BaseException:
            await db.close()
            raise
        await asyncio.to_thread(path.chmod, 0o600)
        return cls(db, vault, clock)

    @property
    def db(self) -> aiosqlite.Connection:
        """The connection, shared with the incident tables (``hub.citizens.incidents``)."""
        return self._db

    async def close(self) -> None:
        await self._db.close()

    async def log(self, reader: Reader, action: str, subject: str) -> None:
        """One access-log line; ``subject`` is ids, counts or districts, never personal data."""
        await self._db.execute(
            "INSERT INTO access_log (at, who, action, subject) VALUES (?, ?, ?, ?)",
            (self._clock.time(), reader.who, action, subject),
        )
        await self._db.commit()

    async def prune_access_log(self, before: float) -> int:
        """Delete access-log lines older than ``before``; returns how many."""
        cursor = await self._db.execute("DELETE FROM access_log WHERE at < ?", (before,))
        await self._db.commit()
        return cursor.rowcount

    async def access_log(self, limit: int = 200) -> list[dict[str, object]]:
        async with self._db.execute(
            "SELECT at, who, action, subject FROM access_log ORDER BY seq DESC LIMIT ?", (limit,)
        ) as cursor:
            rows = await cursor.fetchall()
        return [{"at": r[0], "who": r[1], "action": r[2], "subject": r[3]} for r in rows]

    async def import_csv(self, text: str, reader: Reader) -> ImportReport:
        """Add or update everyone in a care-system export (matched by CPR); bad rows are reported."""
        reader.check()
        parsed = parse_csv(text)
        report = ImportReport(rejected=list(parsed.rejected))
        for line, citizen in parsed.accepted:
            tag = self._vault.cpr_tag(citizen.cpr)
            async with self._db.execute("SELECT id FROM citizens WHERE cpr_tag = ?", (tag,)) as cursor:
                row = await cursor.fetchone()
            if row is not None and citizen.id and citizen.id != row[0]:
                report.rejected.append(Rejected(line, ("id: personen har et andet id i registret",)))
                continue
            citizen_id = row[0] if row is not None else citizen.id or await self._free_id()
            if row is None and await self._exists(citizen_id):
                report.rejected.append(Rejected(line, ("id: bruges allerede af en anden person",)))
                continue
            await self._write(Citizen(**{**asdict(citizen), "id": citizen_id}), tag)
            if row is None:
                report.added += 1
            else:
                report.updated += 1
        await self._db.commit()
        report.rejected.sort(key=lambda r: r.line)
        await self.log(reader, "import", f"{report.added} nye, {report.updated} opdateret, "
                                          f"{len(report.rejected)} afvist")  # fmt: skip
        return report

    async def _write(self, citizen: Citizen, tag: bytes) -> None:
        raw_id = bytes.fromhex(citizen.id)
        data_key = self._vault.new_data_key()
        sealed = self._vault.seal_person(data_key, json.dumps(asdict(citizen)).encode(), raw_id)
        await self._db.execute(
            "INSERT INTO citizens (id, cpr_tag, wrapped_key, sealed, updated) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET wrapped_key = excluded.wrapped_key, sealed = excluded.sealed,"
            " updated = excluded.updated",
            (citizen.id, tag, self._vault.wrap(data_key, raw_id), sealed, self._clock.time()),
        )

    async def _exists(self, citizen_id: str) -> bool:
        async with self._db.execute("SELECT 1 FROM citizens WHERE id = ?", (citizen_id,)) as cursor:
            return await cursor.fetchone() is not None

    async def _free_id(self) -> str:
        while await self._exists(candidate := secrets.token_hex(4)):
            pass
        return candidate

    async def citizens(self, reader: Reader, *, why: str = "læst") -> list[Citizen]:
        """Everyone, opened; the read is logged (``why`` says what for)."""
        reader.check()
        async with self._db.execute("SELECT id, wrapped_key, sealed FROM citizens ORDER BY id") as cursor:
            rows = await cursor.fetchall()
        people = [self._open(str(r[0]), bytes(r[1]), bytes(r[2])) for r in rows]
        await self.log(reader, why, f"{len(people)} borgere")
        return people

    async def citizen(self, reader: Reader, citizen_id: str) -> Citizen | None:
        reader.check()
        async with self._db.execute(
            "SELECT id, wrapped_key, sealed FROM citizens WHERE id = ?", (citizen_id,)
        ) as cursor:
            row = await cursor.fetchone()
        await self.log(reader, "læst", citizen_id)
        return None if row is None else self._open(str(row[0]), bytes(row[1]), bytes(row[2]))

    def _open(self, citizen_id: str, wrapped: bytes, sealed: bytes) -> Citizen:
        raw_id = bytes.fromhex(citizen_id)
        data_key = self._vault.unwrap(wrapped, raw_id)
        fields = json.loads(self._vault.open_person(data_key, sealed, raw_id))
        fields["equipment"] = tuple(fields["equipment"])
        return Citizen(**fields)

    async def erase(self, reader: Reader, citizen_id: str) -> bool:
        """Delete a person: their wrapped key and sealed row. True if they were in the register."""
        reader.check()
        cursor = await self._db.execute("DELETE FROM citizens WHERE id = ?", (citizen_id,))
        await self._db.commit()
        await self.log(reader, "slettet", citizen_id)
        return cursor.rowcount > 0

    async def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database and empty it, so the old pages of an erased row
        (still whole in earlier WAL frames and in the main file until a checkpoint) are overwritten
        now, not at SQLite's next automatic checkpoint. False if another connection's open read kept
        part of the log (then the next checkpoint finishes it)."""
        async with self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)") as cursor:
            row = await cursor.fetchone()
        return row is not None and row[0] == 0

    async def generation(self) -> tuple[int, float]:
        """Changes whenever someone is added, updated or erased: (how many, the newest change)."""
        async with self._db.execute("SELECT COUNT(*), COALESCE(MAX(updated), 0) FROM citizens") as cursor:
            row = await cursor.fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    async def count(self) -> int:
        async with self._db.execute("SELECT COUNT(*) FROM citizens") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0
