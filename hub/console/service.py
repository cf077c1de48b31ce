"""The console's side of the hub: users, log book, roll-calls and the live view, kept current from hub events.

One ``Console`` per hub. ``run()`` owns three named loops in a TaskGroup: one reads the hub's event bus
(messages received, link health); one reads the hub's inbox in batches whenever it has news and folds
new messages into the log book (one commit per batch, written first, so whatever the board shows is
already on record), the status board, roll-call answers and live events for the browsers; the third
ticks the roll-call workflow (``hub.console.rollcall_flow``: send again, over the next link first;
escalate; each decision written to the log book) and saves the board now and then. The first and the
third live in ``hub.console.loops``. Everything the staff or an institution does through the console
goes through ``Hub.submit`` like any API client, so it is signed, stored durably and routed like every
other message. Browsers get live updates through ``listen()``: small topic events (``message``,
``rollcall``, ``board``, ``link``, ``logbook``) on a bounded queue per browser that drops the oldest
rather than slowing the hub.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiosqlite

from hub.console import loops, rollcall_rows, state, views
from hub.console.board import StatusBoard
from hub.console.contact import ContactIntervals
from hub.console.logbook import EXERCISE_MARK, EntryType, LogBook, LogEntry
from hub.console.logbook_upkeep import Witness
from hub.console.messages import (
    decode_message,
    kind_name,
    link_label,
    name_of,
    received_line,
    summary,
    typed_text,
)
from hub.console.options import ConsoleOptions
from hub.console.outbox import Outbox, Sent
from hub.console.rollcall import RollCallBoard, Target
from hub.console.rollcall_flow import RollCallFlow
from hub.console.users import Users
from hub.core.at_rest import DocumentSealer
from hub.core.errors import BeredtError, StoreError
from hub.core.frame import BROADCAST, Kind, Priority, Status
from hub.core.kinds import encode_payload
from hub.relay.roster import Role as NodeRole

if TYPE_CHECKING:
    from hub.relay.hub import Hub
    from hub.relay.store_records import StoredMessage

log = logging.getLogger("beredt.console")

HISTORY = 300
BATCH = 1000
SEEN = 4 * BATCH
LIVE_ENTRIES = 50  # log book entries carried by one live event
HOLD_MOST = 200
"""Held log-book entries of received messages written at once, without waiting for the interval."""
UNLOGGED_MARGIN = 120.0
"""Seconds before the log book's newest entry from which a start looks for messages without an entry."""
AFTER_RESTART = " (ført ind ved genstart)"
ENTRY_MOST = 4000  # characters in the log book's entry of a received message
GAP = f"Over {BATCH} beskeder på én gang: kun de nyeste er set og logget"
UNLISTED = {"logbook_head"}  # kept in the log book only: nothing for a person to read or answer
CONSOLE_DB = "console.db"  # in the hub's data_dir: console users and the log book


@dataclass(frozen=True, slots=True)
class ConsoleEvent:
    topic: str
    data: Mapping[str, Any]


class Console:
    def __init__(self, hub: Hub, db: aiosqlite.Connection, logbook: LogBook, options: ConsoleOptions) -> None:
        self.hub = hub
        self.options = options
        self.db = db
        self.sealer = DocumentSealer(hub.store.vault.keys, hub.config.retention.days, hub.clock.time)
        self.users = Users(db, hub.clock)
        self.logbook = logbook
        logbook.on_written = self._emit_logged  # held entries of received messages, once written
        self.rollcalls = RollCallBoard(options.clock or hub.clock, resend_window=options.resend_window)
        self.board = StatusBoard()
        self.messages: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY)
        self.answered: set[str] = set()  # roll-call requests this node has answered
        self.read: set[str] = set()  # message ids this node has confirmed "read and understood"
        self.outbox = Outbox()
        self.contact_intervals = ContactIntervals(hub, options.contact_interval)
        self.rollcall_flow = RollCallFlow(
            self, options.clock or hub.clock, options.late_window,
            retention=options.rollcall_retention, purge_every=options.archive_purge_interval,
        )  # fmt: skip
        self.sitrep_number = 0  # the newest sitrep number sent from this hub: numbering survives logins
        self.outbox_dirty = False
        self._listeners: set[asyncio.Queue[ConsoleEvent | None]] = set()
        self.inbox_changed = asyncio.Event()
        self._watermark = 0.0  # accepted_at of the newest message folded in
        self._seen: collections.OrderedDict[bytes, None] = collections.OrderedDict()
        self.sent_here: set[str] = set()
        """Ids the console sent itself (logged with their author); others came through the API or CLI."""
        self._board_saved_at = 0.0  # the inbox watermark when the board rows were last saved
        self._closed = False
        self.witness = Witness(hub, logbook, options.witnesses, self.sent_here)

    @classmethod
    async def open(cls, hub: Hub, options: ConsoleOptions | None = None) -> Console:
        options = options or ConsoleOptions()
        path = options.db_path or hub.config.data_dir / CONSOLE_DB
        if not path.parent.is_dir():
            raise StoreError(f"cannot open console database {path}: folder {path.parent} does not exist")
        sealer = DocumentSealer(hub.store.vault.keys, hub.config.retention.days, hub.clock.time)
        logbook = await LogBook.open(
            path, hub.clock, hub.identity.node_id.hex(), sealer, block=options.logbook_block
        )
        try:
            db = await aiosqlite.connect(path)
        except BaseException:
            await logbook.aclose()
            raise
        try:
            # reads here take all rows in one trip (execute_fetchall): one left open pins its snapshot, and a
            # write meanwhile fails at once ("database is locked") if the log book's connection committed
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA secure_delete=ON")  # a document sealed again leaves no old copy behind
            console = cls(hub, db, logbook, options)
            await console.users.create()
            await state.create(db)
            await rollcall_rows.create(db)
            # the book's newest entry before this start writes any (a damaged board's omission note)
            newest = [entry.time for entry in await logbook.page(limit=1)]
            await console._restore()
            await console._load_history(newest[0] if newest else None)
        except BaseException:
            await db.close()
            await logbook.aclose()
            raise
        return console

    async def _restore(self) -> None:
        saved = await state.load(self.db, self.sealer)
        try:
            if "rollcalls" in saved:
                # a console.db from before roll-calls had rows of their own: carry them over once
                self.rollcalls.restore(saved["rollcalls"])
                for request in [c["request"] for c in self.rollcalls.snapshot()]:
                    carried = self.rollcalls.get(request)
                    assert carried is not None
                    await rollcall_rows.save_call(self.db, self.sealer, carried)
                await state.forget(self.db, "rollcalls")
            else:
                self.rollcalls.restore(await rollcall_rows.load_open(self.db, self.sealer))
        except ValueError as exc:
            # a damaged board must not keep the console down: say so where the staff will see it
            await self.note(
                EntryType.OMISSION, f"Statusrunder fra før genstarten kunne ikke genskabes: {exc}"
            )
        self.answered.update(map(str, saved.get("answered", [])))
        self.read.update(map(str, saved.get("read", [])))
        self.outbox.restore(saved.get("outbox", {}))
        self.sitrep_number = int(saved.get("sitrep_number", 0))
        self.contact_intervals.restore(saved.get("contact_intervals"))
        self.board.load(await state.load_board(self.db, self.sealer))
        self._board_saved_at = float(saved.get("board_saved_at", 0.0))
        for open_call in self.rollcalls.summary():
            if open_call["exercise"]:
                continue  # an exercise's roll-call stays off the real board
            for target in open_call["targets"]:
                node = target["institution"]
                self.board.rollcall(node, self.name_of(node), target["state"])

    async def save_answers(self) -> None:
        """What this node answered and confirmed: small, and changed only by a person."""
        await state.save(self.db, self.sealer, answered=sorted(self.answered), read=sorted(self.read))

    async def save_outbox(self) -> None:
        """What this hub sent and what became of it, and the newest sitrep number (survives restarts)."""
        self.outbox_dirty = False
        await state.save(
            self.db, self.sealer, outbox=self.outbox.snapshot(), sitrep_number=self.sitrep_number
        )

    async def save_board(self) -> None:
        """Write the board rows changed since the last save (see ``hub.console.state``)."""
        # what the save covers is taken first, then the held entries are written: a start after a crash
        # looks for unlogged messages only past the save, so none folded in meanwhile may count as saved
        changed, watermark = self.board.changed(), self._watermark
        try:
            await self.logbook.flush()
            if changed:
                await state.save_board(self.db, self.sealer, changed, watermark)
        except StoreError:
            self.board.mark_changed(changed)
            raise
        if changed:
            self._board_saved_at = watermark

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.save_board()
        except StoreError:
            log.exception("the status board could not be saved: the next start rebuilds it from the store")
        await self.db.close()
        await self.logbook.aclose()

    async def run(self) -> None:
        self.inbox_changed.set()  # catch what arrived between open() and the first event
        async with asyncio.TaskGroup() as group:
            group.create_task(loops.follow_hub(self), name="console-events")
            group.create_task(self._drain_inbox(), name="console-inbox")
            group.create_task(loops.tick(self), name="console-rollcalls")

    # ---- live view ----------------------------------------------------------------------------------

    async def listen(self) -> AsyncGenerator[ConsoleEvent, None]:
        """Live events until ``stop_listening``; a slow listener loses its oldest events."""
        queue: asyncio.Queue[ConsoleEvent | None] = asyncio.Queue(200)
        self._listeners.add(queue)
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            self._listeners.discard(queue)

    def stop_listening(self) -> None:
        for queue in self._listeners:
            self._put(queue, None)

    def emit(self, topic: str, **data: Any) -> None:
        for queue in self._listeners:
            self._put(queue, ConsoleEvent(topic, data))

    @staticmethod
    def _put(queue: asyncio.Queue[ConsoleEvent | None], item: ConsoleEvent | None) -> None:
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(item)

    # ---- what the console shows ---------------------------------------------------------------------

    def institutions(self) -> dict[str, tuple[str, ...]]:
        return views.institutions(self.hub)

    def name_of(self, node: str) -> str:
        return name_of(self.hub, node)

    def board_rows(self) -> list[dict[str, Any]]:
        """The board with each institution's contact (``hub.console.views.with_contact``)."""
        for node in self.institutions():
            self.board.know(node, self.name_of(node))
        return views.by_urgency(self._with_contact(self.board.rows(self.hub.clock.time())))

    def board_patch(self, nodes: set[str]) -> list[dict[str, Any]]:
        """The board rows of ``nodes`` as ``board_rows`` has them, for a live event to patch in place."""
        now = self.hub.clock.time()
        return self._with_contact(
            [row for node in sorted(nodes) if (row := self.board.row(node, now)) is not None]
        )

    def _with_contact(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return views.with_contact(
            self.hub,
            rows,
            self.hub.clock.time(),
            self.contact_intervals,
            self.outbox,
            self.options.confirm_within,
        )

    def message_view(self, item: dict[str, Any]) -> dict[str, Any]:
        return views.message_row(self.hub, item, self.read, self.outbox)

    async def sent_view(self, limit: int = 100) -> list[dict[str, Any]]:
        return await views.sent_rows(self.hub, self.outbox, limit)

    def link_kind(self, link: str | None) -> str | None:
        return link_label(self.hub, link)

    # ---- inbound ------------------------------------------------------------------------------------

    def decode(self, message: StoredMessage) -> dict[str, Any]:
        return decode_message(self.hub, message)

    async def _load_history(self, newest: float | None) -> None:
        """The newest messages for the list; then everything received since the board was last saved,
        oldest first, folded into the board and roll-calls (what a crash kept from being saved), and
        logged if the book has no entry of it though it has entries (``newest``: the time of the last)."""
        for message in reversed(await self.hub.store.inbox(limit=HISTORY)):
            if (item := self.decode(message))["kind"] not in UNLISTED:
                self.messages.appendleft(item)
        since, changed, folded = self._board_saved_at - 1.0, [], []
        while batch := await self.hub.store.inbox(limit=BATCH, since=since, oldest_first=True):
            for message in batch:
                if self._remember(message):
                    folded.append(item := self.decode(message))
                    changed += self._fold(item)
            since = batch[-1].accepted_at
            if len(batch) < BATCH:
                break
        await rollcall_rows.save_targets(self.db, self.sealer, changed)
        await self._log_unlogged(folded, newest)

    async def _log_unlogged(self, folded: list[dict[str, Any]], newest: float | None) -> None:
        """Entries for the messages folded in at this start that the book has none of: held entries a crash
        (not a clean stop) kept from being written. Only messages received after the book's newest entry
        (less a margin) are looked for; a new book starts empty."""
        if not folded or newest is None:
            return
        logged = await self.logbook.received_ids(newest - UNLOGGED_MARGIN)
        lost = [
            item
            for item in folded
            if item["received"] >= newest - UNLOGGED_MARGIN and item["id"] not in logged
        ]
        if lost:
            log.warning(
                "console: %d received messages had no log-book entry (a crash): written now", len(lost)
            )
            await self.logbook.append_many(await self._received_notes(lost, AFTER_RESTART), durable=False)

    def _remember(self, message: StoredMessage) -> bool:
        """True the first time a message is seen; advances the inbox watermark."""
        if message.id in self._seen:
            return False
        self._seen[message.id] = None
        while len(self._seen) > SEEN:
            self._seen.popitem(last=False)
        self._watermark = max(self._watermark, message.accepted_at)
        return True

    def _take(self, item: dict[str, Any]) -> list[tuple[str, Target]]:
        """Fold one received message into the views; returns the roll-call targets it answered."""
        if item["kind"] not in UNLISTED:
            self.messages.appendleft(item)
        return self._fold(item)

    def _fold(self, item: dict[str, Any]) -> list[tuple[str, Target]]:
        """The board and roll-call side of ``_take``; emits nothing."""
        node, name = item["from"], item["from_name"]
        if node in self.institutions() or item["kind"] == "status":
            self.board.heard(node, name, item["received"], item["via"], item["via_kind"])
        body = item["body"]
        if item["kind"] == "read_receipt" and isinstance(body, dict):
            read_at = body.get("read_at") or item["received"]
            if self.outbox.receipt(str(body.get("message")), str(body.get("by") or name), float(read_at)):
                self.outbox_dirty = True
        if item["kind"] == "status" and isinstance(body, dict) and "facility" in body:
            # an exercise status is the exercise's (its timeline, its roll-calls, its report): on the real
            # board it would be taken for real; a status answers only a roll-call of its own kind
            exercise = item["status"] == Status.EXERCISE.name.lower()
            if not exercise:
                self.board.status(node, name, body, item["priority"], item["received"])
            request = str(body.get("rollcall") or "")
            call = self.rollcalls.get(request)
            if (
                call is not None
                and call.exercise == exercise
                and self.rollcalls.answer(node, request, link=item["via"] or "?", body=body)
            ):
                if not exercise:
                    self.board.rollcall(node, name, "answered")
                return [(request, call.targets[node])]
        return []

    async def _drain_inbox(self) -> None:
        """Fold newly stored messages for this node into the views and the log book, one batch at a time."""
        while True:
            await self.inbox_changed.wait()
            self.inbox_changed.clear()
            now = self.hub.clock.time()
            if now < self._watermark:
                # the hub's clock was set back (it ran fast until GPS or a peer corrected it): start over
                # a minute ago; messages already folded in are recognised by id
                self._watermark = now - 60.0
            try:
                # a second of overlap covers messages committed out of order; _remember drops repeats
                batch = await self.hub.store.inbox(limit=BATCH, since=self._watermark - 1.0)
                fresh = [m for m in reversed(batch) if m.id not in self._seen]
                items = [self.decode(m) for m in fresh]
                notes: list[tuple[EntryType, str, str]] = []
                if len(batch) == BATCH and fresh and batch[-1].id == fresh[0].id:
                    # the store lists newest first: older unseen messages may lie beyond this batch
                    notes.append((EntryType.OMISSION, GAP, "hub"))
                notes += await self._received_notes(items)
                # held, written within [logbook] received_hold_seconds with what the book writes next:
                # the messages are durable in the store, and a start writes the entries a crash lost
                self.logbook.hold(notes)
                if self.logbook.held >= HOLD_MOST or self.options.logbook_received_interval <= 0:
                    try:
                        await self.logbook.flush()
                    except StoreError:
                        # the entries stay held for the next write: the batch is taken all the same, as
                        # read again it would be held (and written) twice
                        log.exception("console: the log book's held entries could not be written yet")
                answered: list[tuple[str, Target]] = []
                for message, item in zip(fresh, items, strict=True):
                    self._remember(message)
                    answered += self._take(item)
                await rollcall_rows.save_targets(self.db, self.sealer, answered)
            except BeredtError:
                log.exception("console could not read the inbox")
                continue
            if fresh:
                if self.outbox_dirty:
                    await self.save_outbox()
                self._emit_changes(items, answered)
                if any(item.get("status") == "exercise" for item in items):
                    self.emit("exercise")  # an answer in the exercise: the lead's timeline shows it live

    async def _received_notes(
        self, items: list[dict[str, Any]], after: str = ""
    ) -> list[tuple[EntryType, str, str]]:
        """The log book's entries of received messages (typed texts kept beside the book), ``after``
        added to each."""
        notes: list[tuple[EntryType, str, str]] = []
        for item in items:
            typed = typed_text(item)
            text = received_line(item, await self.logbook.notes.keep(typed) if typed else None) + after
            text = EXERCISE_MARK + text if item.get("status") == "exercise" else text
            if len(text) > ENTRY_MOST:
                # cut in the middle: the message's id stays last, as a start looks entries up by it (a
                # sender's own "[id ...]" in what is cut must not stand in for it)
                tail = f" [id {item['id']}]{after}"
                text = text[: ENTRY_MOST - len(tail) - 1] + "…" + tail
            notes.append((EntryType.RECEIVED, text, "hub"))
        return notes

    def _emit_changes(self, items: list[dict[str, Any]], answered: list[tuple[str, Target]]) -> None:
        """Live events that carry what a batch changed, so browsers patch their views in place; a batch
        too large for one event sends the topics alone, and browsers fetch the views again."""
        if len(items) > LIVE_ENTRIES:
            for topic in ("message", "board", "rollcall"):
                self.emit(topic)
        else:
            listed = [self.message_view(item) for item in reversed(items) if item["kind"] not in UNLISTED]
            self.emit("message", items=listed)
            self.emit("board", rows=self.board_patch({item["from"] for item in items}))
            self.emit("rollcall", calls=self.rollcall_flow.open_calls({request for request, _ in answered}))
        self.emit("delivery")

    async def note(self, type: EntryType, text: str, *, author: str = "hub") -> None:
        self._emit_logged([await self.logbook.append(type, text, author=author)])

    async def note_typed(self, type: EntryType, text: str, *, author: str) -> None:
        """What a person typed: the book records its digest, the text is kept beside it (note_texts)."""
        entry = await self.logbook.append_typed(type, text, author=author)
        self.emit("logbook", entries=[entry.view(text)], gap=False)

    def _emit_logged(self, entries: list[LogEntry]) -> None:
        """Browsers add new entries from the event itself; after a burst they reload the newest page."""
        if entries:
            shown = entries[-LIVE_ENTRIES:]
            self.emit("logbook", entries=[e.view() for e in shown], gap=len(entries) > len(shown))

    # ---- outbound -----------------------------------------------------------------------------------

    async def send(
        self,
        kind: Kind,
        to: bytes,
        body: object,
        *,
        author: str,
        priority: Priority = Priority.NORMAL,
        status: Status = Status.ACTUAL,
        what: str | None = None,
        via: str | None = None,
        preset: str | None = None,
        batch: str | None = None,
        group: str | None = None,
        shown: str | None = None,
    ) -> str:
        """Send ``body`` and keep it in the sent view, shown as ``shown`` (default: what the body says)."""
        payload = encode_payload(kind, body)
        ttl = self.options.ttl_minutes
        message_id = await self.hub.submit(
            kind, to, payload, priority=priority, ttl_minutes=ttl, status=status, via=via
        )
        self.sent_here.add(message_id.hex())  # before any await: the hub's MessageSent event comes later
        text = shown or summary({"kind": kind.name.lower(), "body": body})
        self.outbox.add(Sent(message_id.hex(), to.hex(), kind.name.lower(),
                             priority.name.lower().replace("_", "-"), self.hub.clock.time(), author,
                             text, preset, batch, group=group))  # fmt: skip
        if kind is Kind.SITREP and isinstance(body, dict) and isinstance(body.get("number"), int):
            self.sitrep_number = max(self.sitrep_number, body["number"])
        await self.save_outbox()
        self.emit("delivery", id=message_id.hex())
        target = "alle" if to == BROADCAST else self.name_of(to.hex())
        if group is not None:
            target += f" (gruppen {group})"
        text = what or f"{kind_name(kind.name.lower())} til {target}"
        mark = EXERCISE_MARK if status is Status.EXERCISE else ""
        await self.note(EntryType.SENT, mark + text, author=author)
        return message_id.hex()

    async def start_rollcall(
        self,
        question: str,
        minutes: int,
        institutions: list[str],
        *,
        author: str,
        status: Status | None = None,
    ) -> str:
        return await self.rollcall_flow.start(question, minutes, institutions, author=author, status=status)

    async def rollcall_view(self, limit: int) -> list[dict[str, Any]]:
        return await self.rollcall_flow.view(limit)

    def open_rollcall(self) -> dict[str, Any] | None:
        return self.rollcall_flow.waiting()

    async def quick_status(
        self,
        body: dict[str, Any],
        priority: Priority,
        *,
        author: str,
        preset: str | None = None,
        cap_status: Status | None = None,
    ) -> str:
        """Send an institution's status to the staff. Unless the person chose (``cap_status``), it is
        marked Exercise while this hub takes part in an exercise or an exercise roll-call is open. It
        answers the open roll-call when both are of the same kind: a real status never answers an exercise
        roll-call, nor an exercise status a real one; otherwise it goes to the staff hubs."""
        rollcall = self.open_rollcall()
        drill = rollcall is not None and rollcall.get("status") == Status.EXERCISE.name.lower()
        status = cap_status
        if status is None:
            status = Status.EXERCISE if drill else self.hub.exercise.default_status()
        if rollcall is not None and drill != (status is Status.EXERCISE):
            rollcall = None
        if rollcall is not None:
            body = {**body, "rollcall": rollcall["body"]["request"]}
            recipients = [rollcall["from"]]
        else:
            recipients = [
                e.node_id.hex()
                for e in self.hub.roster
                if e.role is NodeRole.STAFF and e.node_id != self.hub.identity.node_id
            ]
        if not recipients:
            raise ValueError("to: ingen stabsnode i rosteren at rapportere til")
        ids = []
        for node in recipients:
            what = f"Status til {self.name_of(node)}: {body.get('facility')}"
            ids.append(
                await self.send(
                    Kind.STATUS,
                    bytes.fromhex(node),
                    body,
                    author=author,
                    priority=priority,
                    status=status,
                    what=what,
                    preset=preset,
                )
            )
        if rollcall is not None:
            self.answered.add(rollcall["body"]["request"])
            await self.save_answers()
        self.emit("rollcall")
        return ids[0]

    async def confirm_read(self, message_id: str, *, author: str, by: str) -> str:
        item = next((m for m in self.messages if m["id"] == message_id), None)
        if item is None:
            raise ValueError(f"message: ingen modtaget besked {message_id}")
        body = {"message": message_id, "read_at": int(self.hub.clock.time()), "by": by[:60]}
        receipt = await self.send(
            Kind.READ_RECEIPT,
            bytes.fromhex(item["from"]),
            body,
            author=author,
            status=Status[
                str(item["status"]).upper()
            ],  # a receipt for an exercise's message is the exercise's
            what=f"Læst og forstået: {kind_name(item['kind'])} fra {item['from_name']}",
            # the message read, by its words as the reader saw them: its id means nothing to a person
            shown=f"læst og forstået af {by[:60]}: {kind_name(item['kind'])} fra {item['from_name']}"
            f" – «{summary(item)[:120]}»",
        )
        self.read.add(message_id)
        await self.save_answers()
        self.emit("message", id=message_id, kind="read")
        return receipt
