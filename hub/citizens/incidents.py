"""What an outage produces, in ``citizens.db`` beside the register: outages, list entries, visits, alarms.

Everything but the keys is sealed with the register's incident key: the marked districts and addresses,
each entry's district, run-out time and equipment, each visit's outcome. In clear are only what joins
and deduplicates rows: the outage id and times, the citizen's register id, the moment a visit was made,
and which hub a row came from or went to. An outage's ``source`` is empty for one marked on this hub and
the sender's node id for one learnt from a received FOLLOWUP_LIST (a team's hub never sends those on).

Retention: an outage ended more than the retention period ago is deleted with all its rows; one that
never ended (a team's hub does not learn the end) is deleted that long after ``STALE`` past its start.
Erasing a person deletes their entries, visits, alarms and the record of which lists named them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import aiosqlite

from hub.citizens.followup import Entry, Outage, Visit, Visits
from hub.citizens.vault import Vault

STALE = 30 * 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outages (
    id TEXT PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    source TEXT NOT NULL DEFAULT '',
    dispatched REAL,
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS entries (
    outage TEXT NOT NULL,
    citizen TEXT NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY (outage, citizen)
);
CREATE TABLE IF NOT EXISTS visits (
    outage TEXT NOT NULL,
    citizen TEXT NOT NULL,
    at INTEGER NOT NULL,
    by TEXT NOT NULL,
    received REAL NOT NULL,
    sealed BLOB NOT NULL,
    report_to TEXT NOT NULL DEFAULT '',
    reported TEXT,
    PRIMARY KEY (outage, citizen, at)
);
CREATE TABLE IF NOT EXISTS alarms (
    outage TEXT NOT NULL,
    citizen TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (outage, citizen)
);
CREATE TABLE IF NOT EXISTS sent_lists (
    message TEXT PRIMARY KEY,
    outage TEXT NOT NULL,
    team TEXT NOT NULL,
    at REAL NOT NULL,
    bytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sent_entries (
    outage TEXT NOT NULL,
    node TEXT NOT NULL,
    citizen TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (outage, node, citizen)
);
"""


class Incidents:
    def __init__(self, db: aiosqlite.Connection, vault: Vault) -> None:
        self._db = db
        self._vault = vault

    @classmethod
    async def open(cls, db: aiosqlite.Connection, vault: Vault) -> Incidents:
        await db.executescript(_SCHEMA)
        await db.commit()
        return cls(db, vault)

    # ---- outages ------------------------------------------------------------------------------------

    async def add_outage(self, outage: Outage, *, source: str = "") -> bool:
        scope = {"districts": sorted(outage.districts), "addresses": sorted(outage.addresses)}
        cursor = await self._db.execute(
            "INSERT OR IGNORE INTO outages (id, started, ended, source, sealed) VALUES (?, ?, ?, ?, ?)",
            (outage.id, outage.started, outage.ended, source, self._seal(scope, "outage", outage.id)),
        )
        await self._db.commit()
        return cursor.rowcount > 0

    async def end_outage(self, outage_id: str, at: float) -> bool:
        cursor = await self._db.execute(
            "UPDATE outages SET ended = ? WHERE id = ? AND ended IS NULL", (at, outage_id)
        )
        await self._db.commit()
        return cursor.rowcount > 0

    async def outages(self, *, active_only: bool = False, source: str | None = None) -> list[Outage]:
        query = "SELECT id, started, ended, sealed FROM outages"
        clauses = ["ended IS NULL"] if active_only else []
        params: list[object] = []
        if source is not None:
            clauses.append("source = ?")
            params.append(source)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        async with self._db.execute(query + " ORDER BY started", params) as cursor:
            rows = await cursor.fetchall()
        out = []
        for outage_id, started, ended, sealed in rows:
            scope = self._open(bytes(sealed), "outage", outage_id)
            out.append(Outage(outage_id, started, frozenset(scope["districts"]),
                              frozenset(scope["addresses"]), ended))  # fmt: skip
        return out

    async def undispatched(self) -> list[Outage]:
        """Outages marked on this hub whose lists have not been built yet."""
        async with self._db.execute(
            "SELECT id FROM outages WHERE source = '' AND dispatched IS NULL AND ended IS NULL"
        ) as cursor:
            ids = {str(r[0]) for r in await cursor.fetchall()}
        return [o for o in await self.outages(active_only=True, source="") if o.id in ids]

    async def dispatched(self, outage_id: str, at: float) -> None:
        await self._db.execute("UPDATE outages SET dispatched = ? WHERE id = ?", (at, outage_id))
        await self._db.commit()

    async def source_of(self, outage_id: str) -> str | None:
        async with self._db.execute("SELECT source FROM outages WHERE id = ?", (outage_id,)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    # ---- entries ------------------------------------------------------------------------------------

    async def put_entries(self, entries: Iterable[Entry]) -> None:
        await self._db.executemany(
            "INSERT OR REPLACE INTO entries (outage, citizen, sealed) VALUES (?, ?, ?)",
            [(e.outage, e.citizen, self._seal(_entry_fields(e), "entry", e.outage + e.citizen))
             for e in entries],
        )  # fmt: skip
        await self._db.commit()

    async def entries(self, *, active_only: bool = True, outage: str | None = None) -> list[Entry]:
        query = "SELECT e.outage, e.citizen, e.sealed FROM entries e JOIN outages o ON o.id = e.outage"
        clauses, params = (["o.ended IS NULL"] if active_only else []), []
        if outage is not None:
            clauses.append("e.outage = ?")
            params.append(outage)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        async with self._db.execute(query, params) as cursor:
            rows = await cursor.fetchall()
        out = []
        for outage_id, citizen, sealed in rows:
            fields = self._open(bytes(sealed), "entry", outage_id + citizen)
            out.append(Entry(citizen, outage_id, fields["district"], fields["runs_out"],
                             tuple(fields["equipment"]), fields["team"]))  # fmt: skip
        return out

    # ---- visits and alarms --------------------------------------------------------------------------

    async def add_visit(self, visit: Visit, received: float, *, report_to: str = "") -> bool:
        """Store a visit; False if this (outage, citizen, moment) is already recorded. ``report_to``: the
        hub to send it to (a team's hub reports to the hub that sent the list); see ``unreported``."""
        sealed = self._seal({"outcome": visit.outcome}, "visit", f"{visit.outage}{visit.citizen}{visit.at}")
        cursor = await self._db.execute(
            "INSERT OR IGNORE INTO visits (outage, citizen, at, by, received, sealed, report_to)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (visit.outage, visit.citizen, visit.at, visit.by, received, sealed, report_to),
        )
        await self._db.commit()
        return cursor.rowcount > 0

    async def unreported(self) -> list[tuple[Visit, str]]:
        """Visits recorded here and not yet handed to the hub for sending, with where they go."""
        async with self._db.execute(
            "SELECT outage, citizen, at, by, sealed, report_to FROM visits"
            " WHERE report_to != '' AND reported IS NULL ORDER BY received"
        ) as cursor:
            rows = await cursor.fetchall()
        out = []
        for outage_id, citizen, at, by, sealed, report_to in rows:
            fields = self._open(bytes(sealed), "visit", f"{outage_id}{citizen}{at}")
            out.append((Visit(citizen, outage_id, fields["outcome"], at, by), str(report_to)))
        return out

    async def reported(self, visit: Visit, message: str) -> None:
        await self._db.execute(
            "UPDATE visits SET reported = ? WHERE outage = ? AND citizen = ? AND at = ?",
            (message, visit.outage, visit.citizen, visit.at),
        )
        await self._db.commit()

    async def visits(self) -> Visits:
        visits = Visits()
        async with self._db.execute("SELECT outage, citizen, at, by, sealed FROM visits") as cursor:
            for outage_id, citizen, at, by, sealed in await cursor.fetchall():
                fields = self._open(bytes(sealed), "visit", f"{outage_id}{citizen}{at}")
                visits.add(Visit(citizen, outage_id, fields["outcome"], at, by))
        return visits

    async def add_alarm(self, outage_id: str, citizen: str, at: float) -> bool:
        cursor = await self._db.execute(
            "INSERT OR IGNORE INTO alarms (outage, citizen, at) VALUES (?, ?, ?)", (outage_id, citizen, at)
        )
        await self._db.commit()
        return cursor.rowcount > 0

    async def alarms(self) -> dict[tuple[str, str], float]:
        async with self._db.execute("SELECT outage, citizen, at FROM alarms") as cursor:
            return {(str(r[0]), str(r[1])): float(r[2]) for r in await cursor.fetchall()}

    # ---- lists sent ---------------------------------------------------------------------------------

    async def list_sent(
        self, outage_id: str, node: str, citizens: Iterable[str], message: str, at: float, size: int
    ) -> None:
        """One FOLLOWUP_LIST message handed to the hub for ``node``, naming ``citizens``."""
        await self._db.execute(
            "INSERT INTO sent_lists (message, outage, team, at, bytes) VALUES (?, ?, ?, ?, ?)",
            (message, outage_id, node, at, size),
        )
        await self._db.executemany(
            "INSERT OR REPLACE INTO sent_entries (outage, node, citizen, message) VALUES (?, ?, ?, ?)",
            [(outage_id, node, citizen, message) for citizen in citizens],
        )
        await self._db.commit()

    async def sent_to(self, outage_id: str, node: str) -> set[str]:
        """The citizens of ``outage_id`` already on a list sent to ``node``."""
        async with self._db.execute(
            "SELECT citizen FROM sent_entries WHERE outage = ? AND node = ?", (outage_id, node)
        ) as cursor:
            return {str(r[0]) for r in await cursor.fetchall()}

    async def lists_sent(self, outage_id: str) -> list[dict[str, object]]:
        async with self._db.execute(
            "SELECT team, message, at, bytes FROM sent_lists WHERE outage = ? ORDER BY at, rowid",
            (outage_id,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [{"team": r[0], "message": r[1], "at": r[2], "bytes": r[3]} for r in rows]

    # ---- retention and erasure ----------------------------------------------------------------------

    async def purge(self, now: float, retention: float) -> list[str]:
        """Delete outages past retention with all their rows; returns their ids."""
        async with self._db.execute(
            "SELECT id FROM outages WHERE (ended IS NOT NULL AND ended + ? < ?)"
            " OR (ended IS NULL AND started + ? < ?)",
            (retention, now, retention + STALE, now),
        ) as cursor:
            gone = [str(r[0]) for r in await cursor.fetchall()]
        for table in ("entries", "visits", "alarms", "sent_lists", "sent_entries"):
            await self._db.executemany(f"DELETE FROM {table} WHERE outage = ?", [(o,) for o in gone])
        await self._db.executemany("DELETE FROM outages WHERE id = ?", [(o,) for o in gone])
        await self._db.commit()
        return gone

    async def erase_citizen(self, citizen: str) -> None:
        for table in ("entries", "visits", "alarms", "sent_entries"):
            await self._db.execute(f"DELETE FROM {table} WHERE citizen = ?", (citizen,))
        await self._db.commit()

    def _seal(self, fields: object, what: str, key: str) -> bytes:
        return self._vault.seal_incident(json.dumps(fields).encode(), f"{what}:{key}".encode())

    def _open(self, sealed: bytes, what: str, key: str) -> dict[str, Any]:
        loaded = json.loads(self._vault.open_incident(sealed, f"{what}:{key}".encode()))
        assert isinstance(loaded, dict)
        return loaded


def _entry_fields(entry: Entry) -> dict[str, object]:
    return {"district": entry.district, "runs_out": entry.runs_out, "equipment": list(entry.equipment),
            "team": entry.team}  # fmt: skip
