"""The roll-call workflow of one console: start a roll-call, resend or escalate at each tick, archive the
finished ones, and show them.

``RollCallBoard`` (``hub.console.rollcall``) decides what is due; this module carries the decisions out
through the console: each question is sent as an urgent ``ROLLCALL`` message, each decision is written
to the log book, and the board's rows are saved (``hub.console.rollcall_rows``) before browsers hear
of them. On an institution's side it finds the roll-call waiting for an answer and notices one answered
through the API or CLI.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

import aiosqlite

from hub.console import rollcall_rows
from hub.console.board import StatusBoard
from hub.console.logbook import EXERCISE_MARK, EntryType, LogBook
from hub.console.rollcall import Escalate, Resend, RollCallBoard
from hub.core.at_rest import DocumentSealer
from hub.core.clock import Clock
from hub.core.errors import BeredtError, StoreError
from hub.core.frame import Kind, Priority, Status

if TYPE_CHECKING:
    from hub.relay.hub import Hub
    from hub.relay.store_records import StoredMessage

log = logging.getLogger("beredt.console")


async def guarded(work: Awaitable[None], what: str) -> None:
    """A failed save is logged and retried at the next tick; the console's loop goes on."""
    try:
        await work
    except StoreError:
        log.exception("console could not %s", what)


class ConsoleSide(Protocol):
    """What the workflow uses of its console (``hub.console.service.Console``)."""

    hub: Hub
    db: aiosqlite.Connection
    sealer: DocumentSealer
    logbook: LogBook
    board: StatusBoard
    rollcalls: RollCallBoard
    messages: collections.deque[dict[str, Any]]
    answered: set[str]

    def institutions(self) -> dict[str, tuple[str, ...]]: ...
    def name_of(self, node: str) -> str: ...
    def link_kind(self, link: str | None) -> str | None: ...
    def decode(self, message: StoredMessage) -> dict[str, Any]: ...
    def emit(self, topic: str, **data: Any) -> None: ...
    async def note(self, type: EntryType, text: str, *, author: str = "hub") -> None: ...
    async def save_answers(self) -> None: ...
    async def save_board(self) -> None: ...
    async def send(
        self, kind: Kind, to: bytes, body: object, *, author: str, priority: Priority = ...,
        status: Status = ..., what: str | None = None, via: str | None = None,
    ) -> str: ...  # fmt: skip


class RollCallFlow:
    def __init__(
        self, console: ConsoleSide, clock: Clock, late_window: float, *, retention: float, purge_every: float
    ) -> None:
        self.console = console
        self.clock = clock  # roll-call deadlines
        self.late_window = late_window  # a roll-call nobody waits on is closed this long after its deadline
        self.retention = retention  # a closed roll-call is deleted from the archive this long after closing
        self.purge_every = purge_every
        self._next_purge = 0.0  # loop time

    async def start(
        self,
        question: str,
        minutes: int,
        institutions: list[str],
        *,
        author: str,
        status: Status | None = None,
    ) -> str:
        """Ask ``institutions`` (every one, if empty). Unless the person chose (``status``), the roll-call
        is an exercise one while this hub takes part in an exercise, as everything a person sends then:
        its question says ØVELSE, only exercise statuses answer it, and it stays off the real board."""
        console = self.console
        known = console.institutions()
        chosen = {node: known[node] for node in institutions or known if node in known}
        if not chosen:
            raise ValueError("institutions: ingen plejehjem i rosteren at spørge")
        if status is None:
            status = console.hub.exercise.default_status()
        exercise = status is Status.EXERCISE
        if exercise and not question.upper().startswith("ØVELSE"):
            question = EXERCISE_MARK + question
        request = console.rollcalls.new_request_id()
        deadline = int(self.clock.time()) + minutes * 60
        call = console.rollcalls.start(request, question, deadline, chosen, exercise=exercise)
        await rollcall_rows.save_call(console.db, console.sealer, call)
        body = {"request": request, "deadline": deadline, "question": question}
        kept = await console.logbook.notes.keep(question)  # typed words: beside the book, not in it
        for node in chosen:
            if not exercise:
                console.board.rollcall(node, console.name_of(node), "pending")
            await self._send(node, body, author, f"Statusrunde {request} til {console.name_of(node)}: {kept}",
                             exercise=exercise)  # fmt: skip
        console.emit("rollcall")
        console.emit("board")
        return request

    async def _send(
        self,
        node: str,
        body: dict[str, Any],
        author: str,
        what: str,
        via: str | None = None,
        *,
        exercise: bool,
    ) -> None:
        try:
            await self.console.send(
                Kind.ROLLCALL,
                bytes.fromhex(node),
                body,
                author=author,
                priority=Priority.URGENT,
                status=Status.EXERCISE if exercise else Status.ACTUAL,
                what=what,
                via=via,
            )
        except BeredtError as exc:
            await self.console.note(EntryType.OMISSION, f"{what} kunne ikke sendes: {exc}", author=author)

    async def tick(self) -> None:
        """Archive finished roll-calls, then carry out what the board decided is due now."""
        console = self.console
        await guarded(self._close_finished(), "archive finished roll-calls")
        if asyncio.get_running_loop().time() >= self._next_purge:
            self._next_purge = asyncio.get_running_loop().time() + self.purge_every
            await guarded(self._purge_archive(), "purge the roll-call archive")
        decisions = console.rollcalls.tick()
        changed = []
        for decision in decisions:
            call = console.rollcalls.get(decision.request)
            assert call is not None
            changed.append((decision.request, call.targets[decision.institution]))
        await guarded(
            rollcall_rows.save_targets(console.db, console.sealer, changed), "save roll-call decisions"
        )
        for decision in decisions:
            name = console.name_of(decision.institution)
            call = console.rollcalls.get(decision.request)
            exercise = call is not None and call.exercise
            mark = EXERCISE_MARK if exercise else ""  # an exercise's escalation sends nobody out for real
            match decision:
                case Resend(
                    request=request, link=link, attempt=attempt, question=question, deadline=deadline
                ):
                    if not exercise:
                        console.board.rollcall(decision.institution, name, "overdue")
                    # the board's next link goes first if usable; the router fails over from there
                    text = (
                        f"Intet svar fra {name} på statusrunde {request} inden fristen: sender igen "
                        f"(forsøg {attempt}, næste forbindelse: {console.link_kind(link)})"
                    )
                    await console.note(EntryType.DECISION, mark + text)
                    body = {"request": request, "deadline": deadline, "question": question}
                    await self._send(
                        decision.institution,
                        body,
                        "hub",
                        f"Statusrunde {request} sendt igen til {name}",
                        via=link if link in console.hub.links.transports else None,
                        exercise=exercise,
                    )
                case Escalate(request=request, tried=tried):
                    if not exercise:
                        console.board.rollcall(decision.institution, name, "escalated")
                    links = ", ".join(str(console.link_kind(t)) for t in tried)
                    text = f"Ingen kontakt med {name} (statusrunde {request}, prøvet {links}): send nogen ud"
                    await console.note(EntryType.DECISION, mark + text)
            console.emit("rollcall")
            console.emit("board")

    async def _close_finished(self) -> None:
        console = self.console
        finished = console.rollcalls.finished(self.late_window)
        if finished:
            # the board's roll-call column first: once closed, a roll-call no longer restores it at start
            await console.save_board()
            await rollcall_rows.close(console.db, finished, console.hub.clock.time())
            for request in finished:
                console.rollcalls.close(request)
            console.emit("rollcall")

    async def _purge_archive(self) -> None:
        """Closed roll-calls past the retention are deleted; the log book says how many and why."""
        console = self.console
        purged = await rollcall_rows.purge(console.db, console.hub.clock.time() - self.retention)
        if purged:
            days = self.retention / 86400
            text = f"{purged} afsluttede statusrunder slettet fra arkivet (opbevares {days:g} døgn)"
            await console.note(EntryType.NOTE, text)
            console.emit("rollcall")

    def open_calls(self, requests: set[str]) -> list[dict[str, Any]]:
        """The open roll-calls among ``requests`` as ``view`` shows them (a closed one is left out: the
        browser's view is fetched again when roll-calls close)."""
        return [dict(c, closed_at=None) for c in self.console.rollcalls.summary() if c["request"] in requests]

    async def view(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` roll-calls: open ones first, then from the archive (``closed_at`` set)."""
        console = self.console
        view = [dict(call, closed_at=None) for call in console.rollcalls.summary(limit)]
        if len(view) < limit:
            archive = await rollcall_rows.archived(console.db, console.sealer, limit=limit - len(view))
            closed = RollCallBoard(console.hub.clock)
            closed.restore(archive)
            at = {doc["request"]: doc["closed_at"] for doc in archive}
            shown = {call["request"] for call in view}  # one closed while the archive was read is shown once
            view += [
                dict(call, closed_at=at[call["request"]])
                for call in closed.summary()
                if call["request"] not in shown
            ]
        return view

    def waiting(self) -> dict[str, Any] | None:
        """For an institution: the newest received roll-call, unless it is answered (an older one never
        comes back: the newest question is the one the staff are waiting on)."""
        for item in self.console.messages:
            body = item["body"]
            if item["kind"] == "rollcall" and isinstance(body, dict):
                return None if body.get("request") in self.console.answered else item
        return None

    async def answered_elsewhere(self, message_id: str) -> None:
        """A status sent through the API or CLI may answer a roll-call: close it on this screen too."""
        console = self.console
        stored = await console.hub.store.message(bytes.fromhex(message_id))
        if stored is None:
            return
        body = console.decode(stored)["body"]
        if isinstance(body, dict) and isinstance(body.get("rollcall"), str):
            console.answered.add(body["rollcall"])
            await console.save_answers()
            console.emit("rollcall")
