"""The web console's HTTP routes: the static app, a small JSON API behind a login, and server-sent events.

Everything is served by the hub itself under ``/console/`` (no CDN, no outside fonts), so the console
works on a hub with no internet. A login sets an HttpOnly, SameSite=Strict session cookie (also Secure
when served over TLS); every POST must also carry the session's CSRF token in ``X-CSRF-Token``. Wrong
passwords lock out with back-off (429 with ``Retry-After``); a login the log book cannot record is 503.
Roles decide what a user may do: coordinators run roll-calls, compose sitreps and alerts and write the log
book; institution users send their status and confirm instructions; viewers only look. A strict
Content-Security-Policy lets the page load and connect to its own origin only. Live updates are one SSE
stream (``/console/api/events``) of small topic events; the browser refetches what a topic names.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hub.console import enrolment, exercise_report, exercises, rollcall_rows, sending, state, subject_page
from hub.console.exchange import export_cap, import_and_send
from hub.console.exercises import EXERCISE_KEY
from hub.console.logbook import EXERCISE_MARK, EntryType
from hub.console.logbook_export import export_csv, export_html
from hub.console.messages import local_zone
from hub.console.options import ConsoleOptions
from hub.console.request_body import int_param, json_body
from hub.console.service import Console, ConsoleEvent
from hub.console.users import Role, Session
from hub.core.bounded_http import source_of
from hub.core.errors import AuthError, BeredtError, RoutingError, StoreError, UsageError
from hub.core.frame import Status
from hub.core.tasks import cancel_and_wait

if TYPE_CHECKING:
    from hub.relay.hub import Hub

log = logging.getLogger("beredt.console")
STATIC = Path(__file__).with_name("static")
COOKIE = "beredt_session"
CONSOLE_KEY: web.AppKey[Console] = web.AppKey("console", Console)
CONSOLE_DISABLED: web.AppKey[str] = web.AppKey("console_disabled", str)
"""Why the console could not start (its database damaged, say); absent while it runs."""
LOCAL = local_zone()
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self';"
    " form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Guarded = Callable[[web.Request, Console, Session], Awaitable[web.StreamResponse]]
STAFF = (Role.COORDINATOR,)
LOGBOOK_READERS = (*STAFF, Role.VIEWER)
ANYONE = (Role.COORDINATOR, Role.INSTITUTION, Role.VIEWER, Role.NURSE)


@contextlib.asynccontextmanager
async def running_console(hub: Hub, options: ConsoleOptions | None = None) -> AsyncIterator[Console]:
    """Open the console and run its loops until the block exits (then cancel them and close)."""
    console = await Console.open(hub, options)
    task = asyncio.create_task(console.run(), name="console")
    task.add_done_callback(_report_crash)
    try:
        yield console
    finally:
        await cancel_and_wait(task)
        await console.aclose()


def _report_crash(task: asyncio.Task[None]) -> None:
    # the hub keeps relaying without its console, but the staff must hear that their view is frozen
    if not task.cancelled() and task.exception() is not None:
        log.critical("the web console stopped: its views no longer update", exc_info=task.exception())


def setup_console(app: web.Application, hub: Hub, options: ConsoleOptions | None = None) -> None:
    """Mount the console on the hub's API application; its loops start and stop with the app."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            try:
                app[CONSOLE_KEY] = await stack.enter_async_context(running_console(hub, options))
            except (StoreError, sqlite3.Error, OSError) as exc:
                # The relay matters more than its console: a damaged console.db disables only the console.
                app[CONSOLE_DISABLED] = f"console database unusable: {exc}"
                log.critical("the web console is disabled, the hub relays on: %s", app[CONSOLE_DISABLED])
            yield

    async def end_streams(app: web.Application) -> None:
        # runs before aiohttp waits for open connections: live streams end now, not at a timeout
        if CONSOLE_KEY in app:
            app[CONSOLE_KEY].stop_listening()

    app.cleanup_ctx.append(lifecycle)
    app.cleanup_ctx.append(exercises.lifecycle(hub))
    app.on_shutdown.append(end_streams)
    app.middlewares.append(_when_disabled)
    app.middlewares.append(_security_headers)
    app.router.add_get("/", _redirect)
    app.router.add_get("/console/", _index)
    app.router.add_get("/console/persondata", subject_page.page)
    app.router.add_static("/console/static/", STATIC, follow_symlinks=False)
    app.router.add_post("/console/api/login", _login)
    app.router.add_post("/console/api/logout", _logout)
    routes: list[tuple[str, str, _Guarded, tuple[Role, ...]]] = [
        ("GET", "me", _me, ANYONE),
        ("GET", "events", _events, ANYONE),
        ("GET", "board", _board, ANYONE),
        ("GET", "messages", sending.messages, ANYONE),
        ("POST", "messages", sending.compose, STAFF),
        ("GET", "sent", sending.sent, ANYONE),
        ("GET", "rollcalls", _rollcalls, ANYONE),
        ("POST", "rollcalls", _start_rollcall, STAFF),
        ("POST", "status", sending.send_status, (Role.INSTITUTION, Role.COORDINATOR)),
        ("POST", "read/{id}", sending.read, (Role.INSTITUTION, Role.COORDINATOR)),
        ("GET", "links", _links, ANYONE),
        ("POST", "contact-interval", _set_contact_interval, STAFF),
        ("GET", "logbook", _logbook, LOGBOOK_READERS),
        ("POST", "logbook", _log_entry, STAFF),
        ("GET", "logbook.html", _logbook_html, LOGBOOK_READERS),
        ("GET", "logbook.csv", _logbook_csv, LOGBOOK_READERS),
        ("GET", "cap/{id}", export_cap, (*STAFF, Role.VIEWER)),
        ("GET", "exercise-report/{id}/{file:.+}", exercise_report.report_file, (*STAFF, Role.VIEWER)),
        ("POST", "cap", import_and_send, STAFF),
        ("GET", "exercise", _exercise, ANYONE),
        ("POST", "exercise/note", _exercise_action, (Role.COORDINATOR, Role.VIEWER)),
        ("POST", "exercise/{action}", _exercise_action, STAFF),
        ("POST", "data/search", subject_page.search, STAFF),
        ("POST", "data/export", subject_page.export, STAFF),
        ("POST", "data/erase", subject_page.erase, STAFF),
        ("GET", "enrolment", _enrolment, STAFF),
        ("POST", "enrolment/{action}", _enrolment_action, STAFF),
    ]
    for method, path, handler, roles in routes:
        app.router.add_route(method, f"/console/api/{path}", _guard(handler, roles))


def console_status(app: web.Application) -> str:
    """``running``, or ``disabled: <why>`` (for ``/healthz``)."""
    return f"disabled: {app[CONSOLE_DISABLED]}" if CONSOLE_DISABLED in app else "running"


@web.middleware
async def _when_disabled(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """A disabled console answers 503 with the reason; the rest of the application is untouched."""
    if CONSOLE_DISABLED in request.app and (request.path == "/" or request.path.startswith("/console/")):
        return _error(
            503, f"konsollen er slået fra ({request.app[CONSOLE_DISABLED]}); hubben videresender stadig"
        )
    return await handler(request)


@web.middleware
async def _security_headers(request: web.Request, handler: _Handler) -> web.StreamResponse:
    response = await handler(request)
    if request.path == "/" or request.path.startswith("/console/"):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _guard(handler: _Guarded, roles: tuple[Role, ...]) -> _Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        console = request.app[CONSOLE_KEY]
        try:
            session = console.users.session(request.cookies.get(COOKIE))
            if request.method != "GET":
                console.users.check_csrf(session, request.headers.get("X-CSRF-Token"))
            console.users.require(session, *roles)
        except AuthError as exc:
            console.users.refused["console_forbidden" if exc.forbidden else "console_no_session"] += 1
            return _error(403 if exc.forbidden else 401, str(exc))
        try:
            return await handler(request, console, session)
        except ValueError as exc:
            return _error(400, str(exc))
        except RoutingError as exc:
            return _error(422, str(exc))
        except StoreError as exc:  # the store's own words are for the log, not for the person waiting
            log.error("console %s %s not accepted: %s", request.method, request.path, exc)
            return _error(503, "Ikke modtaget: hubbens lager svigtede; se hubbens log og prøv igen")

    return guarded


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def _login(request: web.Request) -> web.Response:
    console = request.app[CONSOLE_KEY]
    source = source_of(request.transport) if request.transport is not None else "local"
    try:
        body = await json_body(request)
        session = await console.users.login(
            str(body.get("username", "")), str(body.get("password", "")), source=source
        )
    except ValueError as exc:
        return _error(400, str(exc))
    except AuthError as exc:
        if exc.retry_after is None:
            return _error(401, str(exc))
        response = _error(429, str(exc))
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return response
    try:
        await console.note(EntryType.NOTE, "logget ind", author=session.user.username)
    except StoreError as exc:
        # the log book must show every login: no record (a full disk), no session
        console.users.logout(session.token)
        log.error("login of %s refused: the log book cannot record it: %s", session.user.username, exc)
        return _error(503, "hubben kan ikke skrive i sin logbog (er disken fuld?): prøv igen senere")
    response = web.json_response(_me_json(console, session))
    # Secure whenever the console is served over TLS, so the cookie never travels in the clear
    response.set_cookie(
        COOKIE, session.token, httponly=True, samesite="Strict", path="/console/", secure=request.secure
    )
    return response


async def _logout(request: web.Request) -> web.Response:
    console = request.app[CONSOLE_KEY]
    token = request.cookies.get(COOKIE)
    if token:
        with contextlib.suppress(AuthError):
            console.users.check_csrf(console.users.session(token), request.headers.get("X-CSRF-Token"))
            console.users.logout(token)
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/console/")
    return response


def _me_json(console: Console, session: Session) -> dict[str, Any]:
    hub = console.hub
    return {
        "username": session.user.username, "display_name": session.user.display_name,
        "role": session.user.role.value, "csrf": session.csrf, "node": hub.identity.node_id.hex(),
        "node_name": hub.identity.name, "node_role": hub.identity.role,
        "institutions": [{"node": n, "name": console.name_of(n)} for n in console.institutions()],
        "timezone": getattr(LOCAL, "key", "UTC"), "sitrep_next": console.sitrep_number + 1,
        "contact_interval": console.options.contact_interval,
        "groups": [{"name": name, "count": count} for name, count in hub.groups.names().items()],
    }  # fmt: skip


async def _me(request: web.Request, console: Console, session: Session) -> web.Response:
    return web.json_response(_me_json(console, session))


async def _events(request: web.Request, console: Console, session: Session) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    await response.write(b"retry: 2000\n\n")
    events = console.listen()
    # the wait for the next event outlives each keepalive: cancelling it (as wait_for would) would end the
    # listener's generator, and the stream with it, after the first quiet 15 seconds
    next_event: asyncio.Task[ConsoleEvent] | None = None
    try:
        while True:
            if next_event is None:
                next_event = asyncio.ensure_future(anext(events))
            done, _ = await asyncio.wait({next_event}, timeout=console.options.keepalive)
            if not done:
                await response.write(b": keepalive\n\n")
                continue
            task, next_event = next_event, None
            try:
                event = task.result()
            except StopAsyncIteration:
                break  # the hub is shutting down
            # who may not read the log book hears that it changed, not what it says
            private = event.topic == "logbook" and session.user.role not in LOGBOOK_READERS
            shown = {} if private else event.data
            if event.topic == "logbook" and not private and session.user.role not in STAFF:
                # a reader who may not see personal data gets the entries without the staff's texts
                entries = [{**entry, "note": None} for entry in event.data.get("entries", [])]
                shown = {**event.data, "entries": entries}
            data = json.dumps(dict(shown), separators=(",", ":"))
            await response.write(f"event: {event.topic}\ndata: {data}\n\n".encode())
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        if next_event is not None:
            await cancel_and_wait(next_event)
        await events.aclose()
    return response


async def _board(request: web.Request, console: Console, session: Session) -> web.Response:
    return web.json_response({"institutions": console.board_rows()})


async def _set_contact_interval(request: web.Request, console: Console, session: Session) -> web.Response:
    """How often one institution must be heard from before the board says TAVS (null: its roster's or
    the default); saved in console.db and written to the log book."""
    body = await json_body(request)
    node = str(body.get("node", ""))
    if node not in console.institutions():
        raise ValueError(f"node: {node!r} er ikke en institution i rosteren")
    console.contact_intervals.choose(node, body.get("minutes"))
    await state.save(console.db, console.sealer, contact_intervals=console.contact_intervals.set_here)
    seconds, source = console.contact_intervals.expected(node)
    what = f"hvert {int(seconds // 60)}. minut" if source == "console" else "som standard"
    await console.note(EntryType.DECISION, f"Forventet kontakt med {console.name_of(node)}: {what}",
                       author=session.user.username)  # fmt: skip
    console.emit("board")
    return web.json_response({"node": node, "expected_interval": seconds, "interval_source": source})


async def _rollcalls(request: web.Request, console: Console, session: Session) -> web.Response:
    """The newest roll-calls, open ones first, then closed ones from the archive; ``?limit=`` up to 50."""
    limit = int_param(request, "limit", 10) or 10
    if not 1 <= limit <= rollcall_rows.MAX_PAGE:
        raise ValueError(f"limit: forventede 1 til {rollcall_rows.MAX_PAGE} statusrunder")
    return web.json_response({"rollcalls": await console.rollcall_view(limit)})


async def _start_rollcall(request: web.Request, console: Console, session: Session) -> web.Response:
    body = await json_body(request)
    question = body.get("question") or "Meld status"
    minutes = body.get("minutes", 30)
    institutions = body.get("institutions") or []
    if not isinstance(question, str) or len(question.encode()) > 200:
        raise ValueError("question: forventede tekst på højst 200 bytes")
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 24 * 60:
        raise ValueError("minutes: forventede et helt antal minutter fra 1 til 1440")
    if not isinstance(institutions, list) or not all(isinstance(i, str) for i in institutions):
        raise ValueError("institutions: forventede en liste af node-id'er")
    status = body.get("status")
    if status not in (None, "actual", "exercise"):
        raise ValueError('status: forventede "actual" (reel) eller "exercise" (øvelse)')
    chosen = None if status is None else Status[str(status).upper()]
    request_id = await console.start_rollcall(
        question, minutes, institutions, author=session.user.username, status=chosen
    )
    return web.json_response({"request": request_id}, status=202)


async def _links(request: web.Request, console: Console, session: Session) -> web.Response:
    return web.json_response(
        {"links": await console.hub.links_summary(), "peers": console.hub.peers_summary()}
    )


async def _logbook(request: web.Request, console: Console, session: Session) -> web.Response:
    """A window of the log book, newest first: ``?before=SEQ`` pages back, ``?limit=`` up to 200."""
    book = console.logbook
    before = int_param(request, "before", None)
    entries = await book.page(before=before, limit=int_param(request, "limit", 100) or 100)
    return web.json_response({
        "entries": await book.views(entries, notes=session.user.role in STAFF),
        "more": bool(entries) and entries[-1].seq > 1,
        "broken": await book.verify_new(), "head": await book.head(),
        # received messages whose entries are held, to be written together (LogBook.hold): the tab says so
        "held": book.held, "hold_seconds": console.options.logbook_received_interval,
    })  # fmt: skip


async def _log_entry(request: web.Request, console: Console, session: Session) -> web.Response:
    body = await json_body(request)
    try:
        type_ = EntryType(str(body.get("type")))
    except ValueError:
        raise ValueError("type: forventede decision, action, omission eller note") from None
    if type_ not in (EntryType.DECISION, EntryType.ACTION, EntryType.OMISSION, EntryType.NOTE):
        raise ValueError("type: forventede decision, action, omission eller note")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > 4000:
        raise ValueError("text: forventede 1 til 4000 tegn")
    await console.note_typed(type_, text.strip(), author=session.user.username)
    return web.json_response({"ok": True}, status=201)


async def _logbook_html(request: web.Request, console: Console, session: Session) -> web.Response:
    await console.witness.send_head()  # the head an export prints is witnessed as well
    title = f"Logbog – {console.hub.identity.name}"
    report = await export_html(console.logbook, title=title, tz=LOCAL, notes=session.user.role in STAFF)
    return web.Response(text=report, content_type="text/html")


async def _logbook_csv(request: web.Request, console: Console, session: Session) -> web.Response:
    await console.witness.send_head()
    report = await export_csv(console.logbook, tz=LOCAL, notes=session.user.role in STAFF)
    return web.Response(text=report, content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="logbog.csv"'})  # fmt: skip


async def _exercise(request: web.Request, console: Console, session: Session) -> web.Response:
    if EXERCISE_KEY not in request.app:
        return _error(503, exercises.unavailable())
    try:
        view = await exercises.state(console.hub, request.app[EXERCISE_KEY], request.query.get("id"))
    except UsageError as exc:
        return _error(404, str(exc))
    return web.json_response(view)


async def _exercise_action(request: web.Request, console: Console, session: Session) -> web.Response:
    if EXERCISE_KEY not in request.app:
        return _error(503, exercises.unavailable())
    runner = request.app[EXERCISE_KEY]
    action = request.match_info.get("action", "note")
    body = await json_body(request) if request.body_exists else {}
    try:
        exercise = await exercises.act(runner, action, body, session.user.username)
    except BeredtError as exc:
        return _error(exercises.error_status(exc), str(exc))
    if exercise is not None:
        text = f"{exercises.PHASES_DA[exercise.state.value]}: {exercise.name} ({exercise.id})"
        await console.note(EntryType.ACTION, EXERCISE_MARK + text, author=session.user.username)
    console.emit("exercise")
    return web.json_response(await exercises.state(console.hub, runner, exercise.id if exercise else None))


async def _enrolment(request: web.Request, console: Console, session: Session) -> web.Response:
    return web.json_response(enrolment.view(console.hub))


async def _enrolment_action(request: web.Request, console: Console, session: Session) -> web.Response:
    try:
        text = await enrolment.act(console.hub, request.match_info["action"], await json_body(request))
    except UsageError as exc:
        return _error(400, str(exc))
    await console.note(EntryType.ACTION, text, author=session.user.username)
    return web.json_response(enrolment.view(console.hub))


__all__ = ["CONSOLE_KEY", "ConsoleOptions", "setup_console"]
