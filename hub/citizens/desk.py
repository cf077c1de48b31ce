"""The register's desk: outages, the follow-up view and erasure, without a running hub.

``Desk`` works on ``citizens.db`` with a clock; the CLI uses it directly while the hub runs (SQLite in
WAL mode lets both open the file). ``hub.citizens.service.FollowUp`` is a desk with a hub: it also sends
the lists, takes in visits and raises alarms.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub.citizens.followup import NEEDS_HELP, OUTCOME_DANISH, Entry, Outage, Visit, affected, merge
from hub.citizens.incidents import Incidents
from hub.citizens.records import EQUIPMENT_DANISH
from hub.citizens.register import CITIZENS_DB, Reader, Register
from hub.citizens.settings import CitizensConfig
from hub.citizens.vault import KEY_FILE, Vault
from hub.core.clock import Clock
from hub.core.errors import ConfigError, UsageError
from hub.core.kinds.followup import OUTCOME

log = logging.getLogger("beredt.citizens")

REQUEST_TEXT = 200
"""Characters in a RESOURCE_REQUEST's text (``hub.core.kinds.catalog``): about 15 ids with the equipment."""


class Desk:
    def __init__(
        self, register: Register, incidents: Incidents, config: CitizensConfig, clock: Clock
    ) -> None:
        self.register = register
        self.incidents = incidents
        self.config = config
        self.clock = clock

    @staticmethod
    async def open_parts(data_dir: Path, clock: Clock, *, create: bool) -> tuple[Register, Incidents]:
        """The register and incident tables in ``data_dir``; the key beside the identity key there
        (made with ``create``, otherwise it must exist)."""
        key, db = data_dir / KEY_FILE, data_dir / CITIZENS_DB
        if create and not key.exists() and db.exists():
            # a new key would open nothing already in the register: never make one beside old data
            raise ConfigError(
                f"{db} findes, men dens registernøgle {key} mangler; hent nøglen fra sikkerhedskopien"
                " (uden den kan registret ikke læses)",
                file=str(key),
            )
        vault = Vault.load(key, create=create)
        register = await Register.open(db, vault, clock)
        try:
            return register, await Incidents.open(register.db, vault)
        except BaseException:
            await register.close()
            raise

    @classmethod
    async def open(
        cls, data_dir: Path, clock: Clock, config: CitizensConfig | None = None, *, create: bool = False
    ) -> Desk:
        register, incidents = await cls.open_parts(data_dir, clock, create=create)
        return cls(register, incidents, config or CitizensConfig(), clock)

    async def aclose(self) -> None:
        await self.register.close()

    async def mark_outage(
        self,
        reader: Reader,
        *,
        districts: Sequence[str] = (),
        addresses: Sequence[str] = (),
        started: float | None = None,
    ) -> str:
        """Record an outage marked on this hub and build its follow-up list; the hub sends the teams their
        lists (at once, or at its next tick when the outage was marked from the CLI)."""
        reader.check()
        if not districts and not addresses:
            raise UsageError("angiv mindst ét distrikt eller én adresse")
        outage = Outage(secrets.token_hex(4), started if started is not None else self.clock.time(),
                        frozenset(districts), frozenset(addresses))  # fmt: skip
        await self.incidents.add_outage(outage)
        scope = ", ".join([*(f"distrikt {d}" for d in districts), f"{len(addresses)} adresse(r)"])
        await self.register.log(reader, "strømsvigt markeret", f"{outage.id}: {scope}")
        # the list is built here, so it shows at once; the running hub sends it
        people = await self.register.citizens(reader, why=f"opfølgningsliste {outage.id} bygget")
        await self.incidents.put_entries(affected(people, outage, self.config.teams))
        return outage.id

    async def record_visit(
        self,
        citizen: str,
        outcome: str,
        *,
        by: Reader,
        at: int | None = None,
        outage: str | None = None,
    ) -> bool:
        """Record what a visit found (for a list received from another hub, marked for reporting back
        to it: the running hub sends it). True if new, False if the same visit (citizen, outage, moment)
        was already recorded."""
        by.check()
        if outcome not in OUTCOME.names:
            raise UsageError(f"ukendt udfald {outcome!r}; kendte: {', '.join(OUTCOME.names)}")
        entry = self._entry_for(await self.incidents.entries(), citizen, outage)
        if entry is None:
            raise UsageError(f"borger {citizen} er ikke på nogen igangværende opfølgningsliste")
        moment = at if at is not None else int(self.clock.time())
        source = await self.incidents.source_of(entry.outage) or ""
        visit = Visit(citizen, entry.outage, outcome, moment, by.who)
        new = await self.incidents.add_visit(visit, self.clock.time(), report_to=source)
        await self.register.log(by, "besøg registreret", citizen)
        return new

    async def end_outage(self, reader: Reader, outage: str) -> bool:
        """The power is back: the outage's rows are deleted once its retention has passed."""
        reader.check()
        ended = await self.incidents.end_outage(outage, self.clock.time())
        await self.register.log(reader, "strømsvigt afsluttet", outage)
        return ended

    async def followup_view(self, reader: Reader, *, district: str | None = None) -> list[dict[str, Any]]:
        """The follow-up list with personal details, most urgent first; the read is access-logged."""
        reader.check()
        entries = merge([await self.incidents.entries()])
        people = {c.id: c for c in await self.register.citizens(reader, why="opfølgningsliste læst")}
        visits = await self.incidents.visits()
        alarms = await self.incidents.alarms()
        now = self.clock.time()
        rows = []
        for entry in entries:
            person = people.get(entry.citizen)
            district_name = entry.district or (person.district if person else "")
            if district is not None and district_name.casefold() != district.casefold():
                continue
            last = visits.latest(entry.citizen, entry.outage)
            rows.append({
                "id": entry.citizen,
                "outage": entry.outage,
                "name": person.name if person else None,
                "address": person.address if person else None,
                "district": district_name,
                "equipment": list(entry.equipment),
                "backup": person.backup if person else None,
                "contact": person.contact if person else None,
                "runs_out": entry.runs_out,
                "hours_left": round(entry.hours_left(now), 2),
                "team": entry.team,
                "seen": visits.seen(entry.citizen, entry.outage),
                "outcome": last.outcome if last else None,
                "outcome_text": OUTCOME_DANISH[last.outcome] if last else "ikke besøgt",
                "visited_at": last.at if last else None,
                "alarm": (entry.outage, entry.citizen) in alarms,
            })  # fmt: skip
        return rows

    async def district_summary(self, reader: Reader) -> list[dict[str, Any]]:
        """Per district: how many are affected, seen, needing help, not seen, alarmed; the earliest
        run-out among those not seen. No personal details, but still only for roles that may read."""
        rows = await self.followup_view(reader)
        summary: dict[str, dict[str, Any]] = {}
        for row in rows:
            item = summary.setdefault(row["district"], {"district": row["district"], "affected": 0,
                                      "seen": 0, "needs_help": 0, "not_seen": 0, "alarms": 0,
                                      "first_runs_out": None})  # fmt: skip
            item["affected"] += 1
            item["seen"] += row["seen"]
            item["needs_help"] += row["outcome"] in NEEDS_HELP
            item["alarms"] += row["alarm"]
            if not row["seen"]:
                item["not_seen"] += 1
                first = item["first_runs_out"]
                item["first_runs_out"] = row["runs_out"] if first is None else min(first, row["runs_out"])
        return sorted(summary.values(), key=lambda s: (s["first_runs_out"] is None, s["first_runs_out"] or 0))

    async def evacuation(
        self, reader: Reader, citizens: Sequence[str], *, centre: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """The evacuation centre's node id and the RESOURCE_REQUEST body asking it for transport for
        ``citizens`` (ids and equipment, not the people). Unless ``centre`` names one, the citizens must
        share a district, and the centre is the first configured for it (district names match whatever
        their case): the planner lists the nearest first. The caller sends it (the running hub, or the
        CLI through the hub's API) and then calls ``evacuation_sent``. A request that cannot go as asked
        (an id on no running list, citizens of several districts) is refused whole: nobody is left out
        of it unnoticed, nor sent to another district's centre."""
        reader.check()
        wanted = set(citizens)
        chosen = [e for e in merge([await self.incidents.entries()]) if e.citizen in wanted]
        if not chosen:
            raise UsageError("ingen af de valgte borgere er på en opfølgningsliste")
        missing = sorted(wanted - {e.citizen for e in chosen})
        if missing:
            raise UsageError(f"ikke på nogen aktuel opfølgningsliste: {', '.join(missing)}; intet sendt")
        if centre is None:
            districts = sorted({e.district for e in chosen}, key=str.casefold)
            if len({d.casefold() for d in districts}) > 1:
                raise UsageError(f"borgerne bor i flere distrikter ({', '.join(districts)}): send én"
                                 " anmodning pr. distrikt, eller vælg centret (--centre)")  # fmt: skip
            by_district = {d.casefold(): nodes for d, nodes in self.config.centres.items()}
            nodes = by_district.get(districts[0].casefold(), ())
            if not nodes:
                raise UsageError(f"intet evakueringscenter er sat op for {districts[0]}"
                                 " ([citizens.centres] i konfigurationen)")  # fmt: skip
            centre = nodes[0]
        equipment = sorted({EQUIPMENT_DANISH.get(e, e) for c in chosen for e in c.equipment})
        text = (f"Evakuering af {len(chosen)} strømafhængige borgere ({', '.join(equipment)}):"
                f" {' '.join(e.citizen for e in chosen)}")  # fmt: skip
        if len(text) > REQUEST_TEXT:  # the centre must read every id it is asked to fetch
            raise UsageError(f"{len(chosen)} borgere fylder for meget i én anmodning: del dem i flere")
        body = {
            "request": secrets.token_hex(4),
            "resource": "transport",
            "quantity": len(chosen),
            "unit": "borgere",
            "needed_by": int(min(e.runs_out for e in chosen)),
            "text": text,
        }
        return centre, body

    async def evacuation_sent(self, reader: Reader, body: dict[str, Any]) -> None:
        """Write a sent evacuation request to the access log (its id and how many, not who)."""
        await self.register.log(
            reader, "evakuering anmodet", f"{body['request']}: {body['quantity']} borgere"
        )

    async def erase(self, reader: Reader, citizen: str) -> bool:
        """Erase a person from the register and from every incident row, and checkpoint the database so
        the erased rows' old pages do not linger in its write-ahead log."""
        gone = await self.register.erase(reader, citizen)
        await self.incidents.erase_citizen(citizen)
        if not await self.register.checkpoint():
            log.warning("erasure of %s: the WAL is still in use; its old pages go at the next checkpoint",
                        citizen)  # fmt: skip
        return gone

    @staticmethod
    def _entry_for(entries: list[Entry], citizen: str, outage: str | None) -> Entry | None:
        matching = [e for e in entries if e.citizen == citizen and (outage is None or e.outage == outage)]
        return min(matching, key=lambda e: e.runs_out) if matching else None
