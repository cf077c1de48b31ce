"""Build a ``ReportInput`` from what was recorded: the exercise's own facts, the hub's ``store.db`` and
its ``console.db``. Read-only: the hub may still be running (both databases are SQLite in WAL mode).

Where each figure comes from:

- messages sent in the exercise: ``store.db`` messages from this hub (``local``) flagged as an exercise
  in their signed frame, accepted within the exercise window; ``e2e_acked_at`` is the recipient's signed
  acknowledgement; ``deliveries`` say which link took each to its next hop, how often it was sent and
  when the hop acknowledged it (``updated`` of a ``hop-acked`` row);
- statuses heard and the first status after an inject: the STATUS frames from each participating
  institution accepted in the window, with the link they came over (``via``);
- roll-calls: the exercise roll-calls the console ran (``console.db`` ``rollcalls``/``rollcall_targets``
  marked ``exercise``; a real roll-call run meanwhile is not the exercise's) started within the window,
  and those the exercise sent as injects (``hub.exercise.report.rollcalls``);
- read receipts: the READ_RECEIPT frames the recipients signed, from ``store.db`` (``hub.exercise.report.
  receipts``; a receipt's time has whole seconds, so one read within the second of sending counts as read
  then);
- link changes: ``console.db`` ``link_changes``; simulated outages from the exercise's own facts;
- each hub's own link changes and link use, as it reported them (``hub.exercise.report.reported``);
- airtime and credits: metered, as this hub's LoRa and satellite links counted them for the exercise's
  frames (``hub.relay.exercise_usage``; every frame marked Exercise, acknowledgements too).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from hub.core.at_rest import DEFAULT_RETENTION_DAYS, KEY_FOLDER, DataKeys, DocumentSealer, Retention
from hub.core.errors import ProtocolError, StoreError
from hub.core.frame import BROADCAST, Kind, Priority, Status, decode_frame
from hub.core.metering import Tally
from hub.exercise.report.model import (
    Carried,
    Heard,
    Inject,
    LinkEvent,
    Note,
    ReportInput,
    RollCallAnswer,
    RollCallResult,
    SentMessage,
    Targets,
    Usage,
)
from hub.exercise.report.receipts import read_receipts
from hub.exercise.report.reported import read_reported
from hub.exercise.report.rollcalls import Opener, inject_rollcalls
from hub.relay.exercise_usage import read_usage
from hub.relay.link_reasons import link_reason
from hub.relay.store_at_rest import FrameVault
from hub.relay.store_file import held_error, is_held, store_uri

LINK_STATES = {"up": "oppe", "degraded": "svækket", "down": "nede"}
NOT_MESSAGES = (
    Kind.ACK,
    Kind.HOP_ACK,
    Kind.ROSTER,
    Kind.READ_RECEIPT,
    Kind.EXERCISE_CONTROL,
    Kind.EXERCISE_SUMMARY,
)
"""Kinds that are bookkeeping, not something a person sent (an exercise's controls steer the hubs)."""


@dataclass(frozen=True, slots=True)
class InjectSent:
    label: str
    kind: str
    at: float
    recipients: tuple[str, ...]
    """Node ids (hex)."""
    deadline: float | None = None
    message_ids: tuple[str, ...] = ()
    """The messages it was sent as (hex): a roll-call inject's answers are matched to these."""


@dataclass(frozen=True, slots=True)
class Outage:
    """A link outage the exercise simulated: ``peer`` None means towards every peer."""

    link: str
    peer: str | None
    start: float
    end: float | None


@dataclass(frozen=True, slots=True)
class ExerciseFacts:
    """What the exercise itself recorded (its record at the coordinating hub)."""

    id: str
    name: str
    started: float
    ended: float | None
    participants: tuple[str, ...]
    """Node ids (hex) of the participating institutions."""
    targets: Targets
    injects: tuple[InjectSent, ...] = ()
    outages: tuple[Outage, ...] = ()
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True, slots=True)
class HubFacts:
    """What the report needs to know about the hub it reads: its files, names and links."""

    name: str
    store: Path
    console: Path
    names: Mapping[str, str]
    """Node id (hex) -> name, from the roster."""
    link_kinds: Mapping[str, str]
    usage_file: Path | None
    """The hub's metered exercise usage (``hub.relay.exercise_usage``); None: not metered."""
    open_payload: Opener | None = None
    """Opens the hub's sealed frames (roll-calls and their answers); None: roll-call injects go unread."""
    timezone: str = "Europe/Copenhagen"


READ_WAIT_MS = 5000
"""How long a read of the store waits for a lock the hub's own connections hold a moment (a checkpoint)."""


@contextmanager
def read_db(
    path: Path, what: str, connect: Callable[[Path], sqlite3.Connection] | None = None
) -> Iterator[sqlite3.Connection]:
    """A connection that reads the database at ``path`` (read-only unless ``connect`` opens it otherwise);
    ``StoreError`` naming ``what`` when it is missing or cannot be opened or read."""
    if not path.is_file():
        raise StoreError(f"{what} {path} findes ikke: lav rapporten på den hub, øvelsen blev kørt fra")
    try:
        db = connect(path) if connect else sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"kan ikke åbne {what} {path}: {exc}") from exc
    try:
        yield db
    except sqlite3.Error as exc:
        raise StoreError(f"kan ikke læse {what} {path}: {exc}") from exc
    finally:
        db.close()


def read_store(path: Path) -> AbstractContextManager[sqlite3.Connection]:
    """``read_db`` of the hub's store, through the VFS the hub holds it with (``hub.relay.store_file``): in
    the hub's own process (the console's report, the exercise summary) it reads beside the hub's
    connections; in another process while the hub runs it raises ``StoreHeld`` at once."""
    return read_db(path, "lageret", _connect_store)


def _connect_store(path: Path) -> sqlite3.Connection:
    # read-write as the hub's own connections are, so it shares their hold on the file (a read-only one
    # would lock and unlock it on its own); it only selects, and writes its own temporary tables. No wait
    # for the lock: in the hub's process it is held already, in another the hub holds it until it stops.
    db = sqlite3.connect(store_uri(path, mode="rw"), uri=True, timeout=0)
    try:
        db.execute("PRAGMA schema_version").fetchone()  # takes the lock
        db.execute(f"PRAGMA busy_timeout={READ_WAIT_MS}")  # a checkpoint beside it
    except sqlite3.Error as exc:
        db.close()
        if is_held(exc):
            raise held_error(path) from exc
        raise
    return db


def collect(exercise: ExerciseFacts, hub: HubFacts, *, now: float) -> ReportInput:
    """Everything the report shows about ``exercise``; an exercise still running is read up to ``now``."""
    # the journal keeps whole seconds: everything within the exercise's last second belongs to it
    end = (exercise.ended + 1) if exercise.ended is not None else now

    def name(node: str) -> str:
        return "alle" if node == BROADCAST.hex() else hub.names.get(node, node)

    metered = None if hub.usage_file is None else read_usage(hub.usage_file, exercise.id)
    gaps = [
        "Sendetid (LoRa) og satellitkreditter er målt: det, denne hubs forbindelser brugte på øvelsens"
        " rammer (beskeder, svar og kvitteringer). Andre hubs' forbrug står i deres egne tal."
        if metered is not None
        else "Sendetid (LoRa) og satellitkreditter blev ikke målt for denne øvelse på denne hub.",
    ]
    receipts: dict[str, tuple[str, float]] = {}
    asked = [m for i in exercise.injects if i.kind == "rollcall" for m in i.message_ids]
    injected: list[RollCallResult] = []
    keys = DataKeys(hub.store.with_name(KEY_FOLDER))  # both databases are sealed at rest with these
    frames, documents = FrameVault(keys, Retention()), DocumentSealer(keys, DEFAULT_RETENTION_DAYS, time.time)
    with read_store(hub.store) as db:
        _message_rows(db)
        messages = sent_messages(db, exercise.started, end, name, frames)
        statuses = _statuses(db, exercise.started, end, frames)
        reports = read_reported(
            db, frames, exercise.id, exercise.name, exercise.started, name, dict(hub.link_kinds)
        )
        if hub.open_payload is not None:
            injected = inject_rollcalls(db, asked, exercise.started, end, name, hub.open_payload, frames)
            ids = {m.id for m in messages}
            receipts = read_receipts(db, frames, ids, exercise.started, hub.open_payload)
    if hub.open_payload is None:
        gaps.append(
            "Øvelsens statusrunder og læsekvitteringer kunne ikke læses: hubbens nøgle var ikke tilgængelig."
        )
    messages = [_with_receipt(m, receipts.get(m.id)) for m in messages]
    injects = tuple(
        Inject(i.label, i.kind, i.at, tuple(name(r) for r in i.recipients),
               {name(r): _first_after(statuses.get(r, []), i.at) for r in i.recipients}, i.deadline)
        for i in exercise.injects
    )  # fmt: skip
    rollcalls: tuple[RollCallResult, ...] = ()
    events: list[LinkEvent] = []
    if hub.console.is_file():
        with read_db(hub.console, "konsollens database") as db:
            rollcalls = _rollcalls(db, exercise.started, end, name, documents)
            events = _link_events(db, exercise.started, end, name)
    else:
        gaps.append("Hubben har ingen konsol: konsollens statusrunder og forbindelsesskift mangler.")
    for outage in exercise.outages:
        peer = None if outage.peer is None else name(outage.peer)
        events.append(LinkEvent(outage.start, outage.link, peer, "down", "Simuleret udfald begynder", True))
        if outage.end is not None:
            events.append(LinkEvent(outage.end, outage.link, peer, "up", "Simuleret udfald slutter", True))
    return ReportInput(
        exercise_id=exercise.id,
        name=exercise.name,
        hub=hub.name,
        started=exercise.started,
        ended=exercise.ended,
        timezone=hub.timezone,
        targets=exercise.targets,
        institutions=tuple(name(p) for p in exercise.participants),
        rollcalls=tuple(sorted((*rollcalls, *injected), key=lambda c: c.started)),
        injects=injects,
        messages=tuple(messages),
        heard=tuple(
            sorted(
                (
                    Heard(name(node), at, via)
                    for node in exercise.participants
                    for at, via in statuses.get(node, [])
                ),
                key=lambda h: h.at,
            )
        ),
        link_events=tuple(sorted(events, key=lambda e: e.at)),
        usage=tuple(usage(messages, hub.link_kinds, metered)),
        notes=tuple(sorted(exercise.notes, key=lambda n: n.at)),
        reported=tuple(sorted(reports.values(), key=lambda r: r.hub)),
        unreported=tuple(name(p) for p in exercise.participants if p not in reports and name(p) != hub.name),
        link_kinds=dict(hub.link_kinds),
        gaps=tuple(gaps),
    )


def _message_rows(db: sqlite3.Connection) -> None:
    """Each message id's row, in a temporary table of this connection (``message_rows``): the store has no
    index of its random ids, and the report looks messages up by id."""
    db.execute("CREATE TEMP TABLE message_rows(id BLOB PRIMARY KEY, row INTEGER NOT NULL)")
    db.execute("INSERT OR IGNORE INTO message_rows SELECT id, row FROM messages WHERE id IS NOT NULL")


def sent_messages(
    db: sqlite3.Connection, start: float, end: float, name: Callable[[str], str], frames: FrameVault
) -> list[SentMessage]:
    rows = db.execute(
        "SELECT id, wire, recipient, kind, priority, size, accepted_at, e2e_acked_at, key_id, row"
        " FROM messages"
        " WHERE local = 1 AND accepted_at BETWEEN ? AND ?"
        f" AND kind NOT IN ({','.join('?' * len(NOT_MESSAGES))}) ORDER BY accepted_at",
        (start, end, *map(int, NOT_MESSAGES)),
    )  # read row by row: an exercise's messages are never all in memory at once as frames
    out = []
    for message_id, stored, recipient, kind, priority, size, accepted_at, acked_at, key_id, row in rows:
        wire = frames.open(bytes(message_id), key_id, bytes(stored))
        if wire is None:
            continue  # erased on request, or past its retention
        try:
            if decode_frame(wire).status is not Status.EXERCISE:
                continue  # real traffic during the exercise is not the exercise's
        except ProtocolError as exc:
            raise StoreError(f"beskeden {bytes(message_id).hex()} i lageret er beskadiget: {exc}") from exc
        hops = tuple(
            Carried(bytes(hop).hex(), link, state, attempts, updated if state == "hop-acked" else None)
            for hop, link, state, attempts, updated in db.execute(
                "SELECT hop, link, state, attempts, updated FROM deliveries WHERE message_row = ?"
                " ORDER BY hop",
                (row,),
            )
        )
        out.append(
            SentMessage(
                bytes(message_id).hex(),
                name(bytes(recipient).hex()),
                Kind(kind).name.lower(),
                _priority(priority),
                size,
                accepted_at,
                acked_at,
                None,
                None,
                hops,
            )
        )
    return out


def _priority(value: int) -> str:
    return Priority(value).name.lower().replace("_", "-")


def _statuses(
    db: sqlite3.Connection, start: float, end: float, frames: FrameVault
) -> dict[str, list[tuple[float, str | None]]]:
    """Sender (hex) -> (time, link) of the STATUS frames marked Exercise received from it in the window,
    oldest first (a real status sent meanwhile is not the exercise's)."""
    out: dict[str, list[tuple[float, str | None]]] = {}
    for message_id, stored, key_id, sender, at, via in db.execute(
        "SELECT id, wire, key_id, sender, accepted_at, via FROM messages"
        " WHERE kind = ? AND local = 0 AND accepted_at BETWEEN ? AND ? ORDER BY accepted_at",
        (int(Kind.STATUS), start, end),
    ):
        wire = frames.open(bytes(message_id), key_id, bytes(stored))
        try:
            if wire is None or decode_frame(wire).status is not Status.EXERCISE:
                continue
        except ProtocolError:
            continue  # not a status anyone can read: not one the exercise heard
        out.setdefault(bytes(sender).hex(), []).append((at, via))
    return out


def _first_after(heard: list[tuple[float, str | None]], at: float) -> float | None:
    return next((t for t, _ in heard if t >= at), None)


def _rollcalls(
    db: sqlite3.Connection, start: float, end: float, name: Callable[[str], str], documents: DocumentSealer
) -> tuple[RollCallResult, ...]:
    columns = {row[1] for row in db.execute("PRAGMA table_info(rollcalls)")}
    if "exercise" not in columns:
        return ()  # a console from before exercise roll-calls ran only real ones
    out = []
    for request, question, started in db.execute(
        "SELECT request, question, started FROM rollcalls WHERE started BETWEEN ? AND ? AND exercise = 1"
        " ORDER BY started",
        (start, end),
    ).fetchall():
        answers = []
        for institution, document in db.execute(
            "SELECT institution, document FROM rollcall_targets WHERE request = ? ORDER BY institution",
            (request,),
        ):
            target = documents.open(document, f"rollcall:{request}:{institution}")
            if target is None:
                continue  # past its retention
            answer = target["answer"]
            answers.append(
                RollCallAnswer(
                    name(target["institution"]),
                    None if answer is None else float(answer["at"]),
                    None if answer is None else str(answer["link"]),
                    tuple(str(link) for link, _ in target["attempts"]),
                    target["state"] == "escalated",
                )
            )
        question = (
            documents.open(question, f"rollcall:{request}") if isinstance(question, bytes) else question
        )
        out.append(RollCallResult(request, question or "", started, tuple(answers)))
    return tuple(out)


def _with_receipt(message: SentMessage, receipt: tuple[str, float] | None) -> SentMessage:
    if receipt is None:
        return message
    by, at = receipt
    by = by or message.to  # the reader gave no name: the recipient read it
    at = max(at, message.sent_at)  # a receipt has whole seconds: one read in the sending's second counts then
    return SentMessage(message.id, message.to, message.kind, message.priority, message.size, message.sent_at,
                       message.delivered_at, at, by, message.hops)  # fmt: skip


def _link_events(
    db: sqlite3.Connection, start: float, end: float, name: Callable[[str], str]
) -> list[LinkEvent]:
    columns = {row[1] for row in db.execute("PRAGMA table_info(link_changes)")}
    if not columns:
        return []
    # the reason in Danish from its code; a row from before the code was kept has none
    coded = "reason_code, reason_params" if "reason_code" in columns else "NULL, NULL"
    return [
        LinkEvent(
            at,
            link,
            None if peer is None else name(peer),
            new,
            f"{LINK_STATES.get(old, old)} → {LINK_STATES.get(new, new)}",
            reason=link_reason(code, json.loads(params) if params else None),
        )
        for at, link, peer, old, new, code, params in db.execute(
            f"SELECT time, link, peer, old, new, {coded} FROM link_changes WHERE time BETWEEN ? AND ?"
            " ORDER BY time",
            (start, end),
        )
    ]


def usage(
    messages: list[SentMessage], kinds: Mapping[str, str], metered: Mapping[str, Tally] | None
) -> list[Usage]:
    """Per link: the exercise's messages it took, their sends and bytes (from the deliveries), and the
    airtime (LoRa) and credits (satellite) it spent on the exercise's frames as metered (None: not
    metered, or a link that spends neither)."""
    totals: dict[str, tuple[set[str], list[int]]] = {}
    for message in messages:
        for hop in message.hops:
            if hop.link is None or hop.attempts == 0:
                continue
            ids, counts = totals.setdefault(hop.link, (set(), [0, 0]))
            ids.add(message.id)
            counts[0] += hop.attempts
            counts[1] += hop.attempts * message.size
    out = []
    for link in sorted(set(totals) | set(metered or {})):
        kind = kinds.get(link, link)
        ids, (attempts, size) = totals.get(link, (set(), [0, 0]))
        tally = (metered or {}).get(link, Tally())
        airtime = tally.airtime_s if metered is not None and kind == "lora" else None
        credits = tally.credits if metered is not None and kind == "satellite" else None
        out.append(Usage(link, kind, len(ids), attempts, size, airtime, credits, tally.refused))
    return out
