"""Two of the console's three loops (``Console.run``): following the hub's events, and the tick that runs
roll-calls due now and the saves, log-book syncs, witness messages and archiving that wait for a quiet
moment. The third, reading the inbox, stays with the console's views in ``hub.console.service``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Literal, Protocol

import aiosqlite

from hub.console import link_history
from hub.console.board import StatusBoard
from hub.console.logbook import EXERCISE_MARK, EntryType, LogBook
from hub.console.logbook_upkeep import Witness, archive_old, check_new
from hub.console.messages import LINK_STATES, decode_message, kind_name, summary
from hub.console.options import ConsoleOptions
from hub.console.outbox import Outbox, Sent
from hub.console.rollcall_flow import RollCallFlow, guarded
from hub.core.errors import BeredtError
from hub.core.frame import BROADCAST
from hub.relay.events import (
    DeliveryChanged,
    EndToEndAcked,
    ExerciseChanged,
    LinkHealthChanged,
    MessageReceived,
    MessageSent,
    Overflow,
    RadioStatus,
)
from hub.relay.link_reasons import link_reason

if TYPE_CHECKING:
    from hub.relay.hub import Hub

log = logging.getLogger("beredt.console")


class ConsoleSide(Protocol):
    """What the loops use of their console (``hub.console.service.Console``)."""

    hub: Hub
    db: aiosqlite.Connection
    options: ConsoleOptions
    logbook: LogBook
    board: StatusBoard
    outbox: Outbox
    outbox_dirty: bool
    sent_here: set[str]
    inbox_changed: asyncio.Event
    rollcall_flow: RollCallFlow
    witness: Witness

    def name_of(self, node: str) -> str: ...
    def link_kind(self, link: str | None) -> str | None: ...
    def emit(self, topic: str, **data: Any) -> None: ...
    async def note(self, type: EntryType, text: str, *, author: str = "hub") -> None: ...
    async def save_board(self) -> None: ...
    async def save_outbox(self) -> None: ...


async def _said(hub: Hub, message_id: str) -> str:
    """What a message sent through the API or CLI says, as the sent view shows it for one sent from the
    console: read back from the store (the hub opens what it sealed itself)."""
    stored = await hub.store.message(bytes.fromhex(message_id))
    return "" if stored is None else summary(decode_message(hub, stored))


async def follow_hub(console: ConsoleSide) -> None:
    """The hub's events: news in the inbox, messages sent through the API or CLI, exercise and link
    changes, radio status messages and end-to-end acks, each noted and passed on to the browsers."""
    async for event in console.hub.subscribe():
        try:
            match event:
                case MessageReceived() | Overflow():
                    # the inbox is read in batches, so relayed traffic and lost events cost nothing extra
                    console.inbox_changed.set()
                case MessageSent(id=message_id, to=to, kind=kind, priority=priority, status=status):
                    if message_id in console.sent_here:
                        console.sent_here.discard(message_id)
                    else:
                        console.outbox.add(Sent(message_id, to, kind, priority.replace("_", "-"),
                                             console.hub.clock.time(), "api",
                                             await _said(console.hub, message_id)))  # fmt: skip
                        console.outbox_dirty = True
                        console.emit("delivery", id=message_id)
                        if kind == "status":
                            await console.rollcall_flow.answered_elsewhere(message_id)
                        target = "alle" if to == BROADCAST.hex() else console.name_of(to)
                        text = f"{kind_name(kind)} til {target} ({priority}, {message_id[:12]})"
                        text = EXERCISE_MARK + text if status == "exercise" else text
                        await console.note(EntryType.SENT, text, author="api")
                case ExerciseChanged():
                    console.emit("exercise")
                    console.emit("board")
                case RadioStatus(link=link, source=source, peer=peer, status=status, value=value):
                    await _radio_status(console, link, source, peer, status, value)
                case LinkHealthChanged(link=link, peer=peer, old=old, new=new, reason=reason):
                    who = f" til {console.name_of(peer)}" if peer else ""
                    change = f"{LINK_STATES.get(old, old)} → {LINK_STATES.get(new, new)}"
                    why = link_reason(reason.code, reason.params)
                    text = f"{console.link_kind(link)}{who}: {change} ({why})"
                    await console.note(EntryType.LINK, text)
                    await link_history.record(console.db, console.hub.clock.time(), event)
                    console.emit("link", link=link, peer=peer, state=new)
                    console.emit("board")
                    console.emit("delivery")
                case EndToEndAcked(id=message_id):
                    if console.outbox.delivered(message_id, console.hub.clock.time()):
                        console.outbox_dirty = True
                        console.emit("delivery", id=message_id)
                        console.emit("board")
                case DeliveryChanged(id=message_id):
                    if message_id in console.outbox:
                        console.emit("delivery", id=message_id)
                        console.emit("board")
        except BeredtError:
            log.exception("console could not handle %s", event)


async def _radio_status(
    console: ConsoleSide, link: str, source: str, peer: str | None, status: str | None, value: int
) -> None:
    """A SINE status SDS: two bytes from the radio's status plan, vouched for by the network only."""
    node = peer or f"{link}:{source}"
    name = console.name_of(peer) if peer else f"{console.link_kind(link)} {source}"
    now = console.hub.clock.time()
    meaning = status or "uden for statusplanen"
    await console.note(
        EntryType.RECEIVED, f"{console.link_kind(link)}-status fra {name}: {meaning} (0x{value:04X})"
    )
    console.board.heard(node, name, now, link, console.link_kind(link))
    console.board.radio(node, name, status, value, now)
    console.emit("board")


def forget_expired_sent(console: ConsoleSide) -> None:
    """The sent view lets go of messages past their retention, as the store deletes them, and like the
    store only on a trusted clock (an untrusted one may be far off either way)."""
    hub = console.hub
    if not hub.clock.trusted:
        return
    forgotten = console.outbox.forget_expired(hub.clock.time(), hub.config.retention)
    if forgotten:
        console.outbox_dirty = True  # saved at the end of this tick
        log.info("retention ended: the sent view forgot %d messages and their summaries", forgotten)


def logbook_work(
    now: float, held_since: float | None, next_sync: float, options: ConsoleOptions
) -> Literal["sync", "flush"] | None:
    """What the log book needs at loop time ``now``: a sync (held entries written, then a checkpoint) when
    one is due, a write of its held entries once the oldest has been held ``logbook_received_interval``,
    or nothing. Held that long or longer than the sync interval, the tick writes held entries only with a
    sync, so console.db is written in one moment per sync and its WAL index once for both
    (``ConsoleOptions``)."""
    hold = options.logbook_received_interval
    held_due = held_since is not None and now - held_since >= hold
    if now >= next_sync or (held_due and hold >= options.logbook_sync_interval):
        return "sync"
    return "flush" if held_due else None


async def tick(console: ConsoleSide) -> None:
    """Roll-calls due now, and the saves that wait for a quiet moment."""
    loop = asyncio.get_running_loop()
    next_board_save = loop.time() + console.options.board_save_interval
    next_radio_save = loop.time() + console.options.radio_save_interval
    next_sync = loop.time() + console.options.logbook_sync_interval
    next_rotation = loop.time()
    next_witness = loop.time() + console.options.witness_interval  # a fresh start has nothing to witness yet
    while True:
        await asyncio.sleep(console.options.tick_interval)
        now = loop.time()
        if now >= next_board_save or (console.board.radio_unsaved and now >= next_radio_save):
            next_board_save = now + console.options.board_save_interval
            next_radio_save = now + console.options.radio_save_interval
            await guarded(console.save_board(), "save the status board")
            # the log book's sync checkpoints the board's rows with its entries: console.db and its WAL
            # index are written in one moment, not two
            next_sync = now
        match logbook_work(loop.time(), console.logbook.held_since, next_sync, console.options):
            case "sync":
                next_sync = loop.time() + console.options.logbook_sync_interval
                await guarded(console.logbook.sync(), "sync the log book")
            case "flush":
                await guarded(console.logbook.flush(), "write the log book's held entries")
        if loop.time() >= next_witness:
            next_witness = loop.time() + console.options.witness_interval
            await console.witness.send_head()
        if loop.time() >= next_rotation:
            next_rotation = loop.time() + console.options.archive_purge_interval
            forget_expired_sent(console)
            await guarded(
                archive_old(
                    console.logbook,
                    console.options.logbook_live_entries,
                    console.options.logbook_live_age,
                    console.hub.clock.time(),
                ),
                "archive old log-book entries",
            )
            await guarded(check_new(console.logbook), "verify the log book")
        await console.rollcall_flow.tick()
        if console.outbox_dirty:
            await guarded(console.save_outbox(), "save the sent messages")
