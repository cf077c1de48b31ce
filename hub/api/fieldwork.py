"""The console's pages for the follow-up of power-dependent citizens: the field page and the district board.

``/console/field`` is for home-care staff on a phone: the team's follow-up list, and a visit recorded with
one tap. It works offline: a service worker (``/console/field-sw.js``) keeps the page, the browser keeps
the last list and a queue of visits, each with an idempotency key made on the phone, and sends the queue
when the hub answers again. The hub records each key once (``field_visits`` in ``citizens.db``: the key
and when, nothing else), so a
visit sent twice (a lost answer, a reload mid-sync) counts once; the follow-up engine's own rule (the same
citizen, outage and moment count once) holds as well.

``/console/districts`` is the coordinator's board: per district how many are affected, seen, needing help
and not yet reached, the district whose first unseen citizen runs out soonest first, and the personal
alarms of citizens' handhelds on top until someone acknowledges them. It follows the console's live event
stream (topic ``citizens``) and refreshes every minute, since autonomy runs down by itself.

Both need a console login with a role that may read the register (nurse, coordinator), and every POST the
session's CSRF token, as the rest of the console.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from hub.citizens.followup import OUTCOME_DANISH
from hub.citizens.handheld_alarms import HandheldAlarms, PersonalAlarmRow
from hub.citizens.records import EQUIPMENT_DANISH
from hub.citizens.register import Reader
from hub.citizens.service import FollowUp
from hub.console.logbook import EntryType
from hub.console.routes import CONSOLE_KEY, COOKIE
from hub.console.service import Console
from hub.console.users import Role, Session
from hub.core.errors import AuthError, UsageError
from hub.core.tasks import cancel_and_wait, supervised

STATIC = Path(__file__).resolve().parents[1] / "console" / "static"
READERS = (Role.NURSE, Role.COORDINATOR)
KEY = re.compile(r"^[A-Za-z0-9-]{8,64}$")
PLAUSIBLE_PAST = 14 * 86400.0
"""How old a visit recorded offline may be; a phone whose clock is further off gets the hub's time."""
FIELD_VISITS = "CREATE TABLE IF NOT EXISTS field_visits (key TEXT PRIMARY KEY, recorded REAL NOT NULL)"
"""The keys of visits sent from phones: only the random key and when, nothing about the visit itself (the
follow-up engine keeps that, sealed)."""
KEY_RETENTION = 30 * 86400.0
"""Keys older than this are forgotten: no phone keeps a visit queued that long."""
MATCH_DANISH = {
    "registered": "registreret håndsender",
    "unregistered": "UKENDT håndsender (ikke i registret)",
    "key_differs": "håndsender med ANDEN nøgle end registreret",
}

FollowUpSource = Callable[[], FollowUp | None]
_Handler = Callable[[web.Request, Console, Session], Awaitable[web.StreamResponse]]
ALARMS_KEY: web.AppKey[HandheldAlarms] = web.AppKey("personal_alarms", HandheldAlarms)
SOURCE_KEY: web.AppKey[FollowUpSource] = web.AppKey("follow_up_source")


def setup_fieldwork(app: web.Application, follow_up: FollowUpSource) -> None:
    """Mount the field page, the district board and their API on the console (``setup_console`` first);
    run the personal alarms. ``follow_up`` gives the running follow-up engine, None while there is none."""
    app[SOURCE_KEY] = follow_up
    app.cleanup_ctx.append(_personal_alarms)
    app.router.add_get("/console/field", _page("field.html"))
    app.router.add_get("/console/districts", _page("districts.html"))
    app.router.add_get("/console/field-sw.js", _page("field-sw.js"))
    routes: list[tuple[str, str, _Handler]] = [
        ("GET", "field/list", _field_list),
        ("POST", "field/visits", _field_visit),
        ("GET", "districts", _districts),
        ("POST", "alarms/{id}/ack", _acknowledge),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, f"/console/api/{path}", _guard(handler))


async def _personal_alarms(app: web.Application) -> AsyncIterator[None]:
    """Handheld alarms for as long as the console runs: into the log book and onto the district board."""
    if CONSOLE_KEY not in app:  # the console is disabled: nobody would see them here
        yield
        return
    console = app[CONSOLE_KEY]
    alarms = app[ALARMS_KEY] = await HandheldAlarms.open(console.hub)

    async def tell_staff(row: PersonalAlarmRow) -> None:
        # metadata only: the append-only book never forgets, so the citizen's own words stay in the
        # sealed message (its id binds them) and on the district board
        who = f"borger {row.citizen}" if row.citizen else MATCH_DANISH[row.match]
        how = "alarmknap" if row.port == "alert" else "besked"
        said = f", tekst på {len(row.text)} tegn i beskeden" if row.text else ""
        via = console.name_of(row.radio_hub)
        text = f"NØDKALD fra {who} (håndsender {row.handheld}, {how} via {via}{said}) [id {row.id}]"
        await console.note(EntryType.DECISION, text)
        console.emit("citizens", alarm=row.id)

    alarms.on_alarm(tell_staff)
    task = asyncio.create_task(supervised("personal alarms", alarms.run), name="personal-alarms")
    try:
        yield
    finally:
        await cancel_and_wait(task)


def _page(name: str) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name, headers={"Cache-Control": "no-cache"})

    return page


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _guard(handler: _Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def guarded(request: web.Request) -> web.StreamResponse:
        console = request.app[CONSOLE_KEY]
        try:
            session = console.users.session(request.cookies.get(COOKIE))
            if request.method != "GET":
                console.users.check_csrf(session, request.headers.get("X-CSRF-Token"))
            console.users.require(session, *READERS)
            return await handler(request, console, session)
        except AuthError as exc:
            console.users.refused["console_forbidden" if exc.forbidden else "console_no_session"] += 1
            return _error(403 if exc.forbidden else 401, str(exc))
        except (UsageError, ValueError) as exc:
            return _error(400, str(exc))

    return guarded


def _follow_up(request: web.Request) -> FollowUp:
    service = request.app[SOURCE_KEY]()
    if service is None:
        raise web.HTTPServiceUnavailable(
            text=json.dumps({"error": "borgerregistret kører ikke på denne hub"}),
            content_type="application/json",
        )
    return service


def _reader(session: Session) -> Reader:
    return Reader(session.user.username, session.user.role.value)


async def _field_list(request: web.Request, console: Console, session: Session) -> web.Response:
    follow_up = _follow_up(request)
    district = request.query.get("district") or None
    rows = await follow_up.followup_view(_reader(session), district=district)
    return web.json_response({
        "rows": rows, "now": console.hub.clock.time(), "outcomes": OUTCOME_DANISH,
        "equipment": EQUIPMENT_DANISH,  # the register's codes are English; a nurse reads Danish
        "districts": sorted({row["district"] for row in rows if row["district"]}),
    })  # fmt: skip


async def _field_visit(request: web.Request, console: Console, session: Session) -> web.Response:
    """One visit from the phone's queue; the same key twice is recorded once."""
    follow_up = _follow_up(request)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ValueError("forventede et JSON-objekt") from None
    if not isinstance(body, dict):
        raise ValueError("forventede et JSON-objekt")
    key, citizen, outcome = body.get("key"), body.get("citizen"), body.get("outcome")
    if not isinstance(key, str) or not KEY.match(key):
        raise ValueError("key: forventede 8-64 tegn (bogstaver, tal, bindestreg)")
    if not isinstance(citizen, str) or not 0 < len(citizen) <= 64:
        raise ValueError("citizen: forventede borgerens id")
    if not isinstance(outcome, str) or outcome not in OUTCOME_DANISH:
        raise ValueError(f"outcome: forventede en af {', '.join(OUTCOME_DANISH)}")
    outage = body.get("outage")
    if outage is not None and not isinstance(outage, str):
        raise ValueError("outage: forventede strømsvigtets id")
    db = follow_up.register.db
    await db.execute(FIELD_VISITS)
    async with db.execute("SELECT 1 FROM field_visits WHERE key = ?", (key,)) as cursor:
        if await cursor.fetchone() is not None:
            return web.json_response({"key": key, "recorded": False, "duplicate": True})
    now = console.hub.clock.time()
    at = body.get("at")
    if isinstance(at, bool) or not isinstance(at, int) or not now - PLAUSIBLE_PAST <= at <= now + 600:
        at = int(now)  # the phone's clock cannot be trusted with this visit: the hub's time instead
    new = await follow_up.record_visit(citizen, outcome, by=_reader(session), at=at, outage=outage)
    await db.execute("INSERT OR IGNORE INTO field_visits (key, recorded) VALUES (?, ?)", (key, time.time()))
    await db.execute("DELETE FROM field_visits WHERE recorded < ?", (time.time() - KEY_RETENTION,))
    await db.commit()
    console.emit("citizens", visit=citizen)
    return web.json_response({"key": key, "recorded": new, "duplicate": not new})


async def _districts(request: web.Request, console: Console, session: Session) -> web.Response:
    follow_up = request.app[SOURCE_KEY]()
    summary = [] if follow_up is None else await follow_up.district_summary(_reader(session))
    alarms = request.app[ALARMS_KEY].rows() if ALARMS_KEY in request.app else []
    if follow_up is not None:  # whoever answers an open alarm needs the name and the address
        for alarm in alarms:
            if alarm["citizen"] and alarm["acknowledged_at"] is None:
                person = await follow_up.register.citizen(_reader(session), alarm["citizen"])
                alarm["name"], alarm["address"] = (person.name, person.address) if person else (None, None)
    return web.json_response({
        "districts": summary, "alarms": alarms, "now": console.hub.clock.time(),
        "register": follow_up is not None,
    })  # fmt: skip


async def _acknowledge(request: web.Request, console: Console, session: Session) -> web.Response:
    if ALARMS_KEY not in request.app:
        return _error(404, "ingen nødkald på denne hub")
    alarm_id = request.match_info["id"]
    if not request.app[ALARMS_KEY].acknowledge(alarm_id, session.user.username):
        return _error(409, "nødkaldet er ukendt eller allerede kvitteret")
    await console.note(EntryType.ACTION, f"nødkald {alarm_id[:12]} kvitteret", author=session.user.username)
    console.emit("citizens", alarm=alarm_id)
    return web.json_response({"id": alarm_id, "acknowledged": True})
