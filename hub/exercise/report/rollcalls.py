"""Roll-calls the exercise sent as injects, and the answers to them, read from ``store.db``.

The runner sends an inject's roll-call straight through the hub (one ROLLCALL frame per recipient,
recorded with its message id in the journal), so the console's roll-call board never knew it. An answer is
a STATUS from the recipient carrying the roll-call's request id, matched by that id alone, as the console
matches its own; both are sealed, so they are opened with the hub's key (``open_payload``). The links
tried are those the ROLLCALL frame's deliveries went over. The store keeps frames sealed at rest
(``hub.relay.store_at_rest``): each is opened with the day keys beside it first.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from hub.core.errors import ProtocolError, SealError
from hub.core.frame import Frame, Kind, decode_frame
from hub.core.kinds import decode_payload
from hub.exercise.report.model import RollCallAnswer, RollCallResult
from hub.relay.store_at_rest import FrameVault

Opener = Callable[[Frame], bytes]
"""Opens a frame's payload, sealed or not (``Hub.open_payload``); raises ``SealError`` if it cannot."""


def opened_body(wire: bytes | None, kind: Kind, open_payload: Opener) -> dict[str, object] | None:
    if wire is None:  # erased, or past its retention
        return None
    try:
        frame = decode_frame(wire)
        body = decode_payload(kind, open_payload(frame))
    except (ProtocolError, SealError):
        return None
    return body if isinstance(body, dict) else None


def inject_rollcalls(
    db: sqlite3.Connection,
    message_ids: Sequence[str],
    start: float,
    end: float,
    name: Callable[[str], str],
    open_payload: Opener,
    frames: FrameVault,
) -> list[RollCallResult]:
    """One result per request id among the ROLLCALL messages ``message_ids`` (hex), with each recipient's
    first answer up to ``end``. ``db`` holds ``message_rows`` (``collect``: each id's row)."""
    asked: dict[str, tuple[str, float, list[tuple[str, tuple[str, ...]]]]] = {}
    for message_id in message_ids:
        row = db.execute(
            "SELECT wire, recipient, accepted_at, key_id FROM messages"
            " WHERE row = (SELECT row FROM message_rows WHERE id = ?) AND kind = ?",
            (bytes.fromhex(message_id), int(Kind.ROLLCALL)),
        ).fetchone()
        wire = None if row is None else frames.open(bytes.fromhex(message_id), row[3], bytes(row[0]))
        body = None if row is None else opened_body(wire, Kind.ROLLCALL, open_payload)
        if body is None:
            continue
        links = tuple(
            str(link)
            for (link,) in db.execute(
                "SELECT link FROM deliveries WHERE message_row = (SELECT row FROM message_rows WHERE id = ?)"
                " AND link IS NOT NULL",
                (bytes.fromhex(message_id),),
            )
        )
        call = asked.setdefault(str(body["request"]), (str(body.get("question", "")), float(row[2]), []))
        call[2].append((bytes(row[1]).hex(), links))
    answers = _answers(db, set(asked), start, end, open_payload, frames)
    out = []
    for request, (question, started, targets) in asked.items():
        results = []
        for node, links in targets:
            at, link = answers.get((request, node), (None, None))
            results.append(RollCallAnswer(name(node), at, link, links, escalated=False))
        out.append(RollCallResult(request, question, started, tuple(results)))
    return out


def _answers(
    db: sqlite3.Connection,
    requests: set[str],
    start: float,
    end: float,
    open_payload: Opener,
    frames: FrameVault,
) -> dict[tuple[str, str], tuple[float, str | None]]:
    """(request, sender hex) -> (time, link) of the first STATUS answering it."""
    out: dict[tuple[str, str], tuple[float, str | None]] = {}
    if not requests:
        return out
    for message_id, stored, key_id, sender, at, via in db.execute(
        "SELECT id, wire, key_id, sender, accepted_at, via FROM messages"
        " WHERE kind = ? AND local = 0 AND accepted_at BETWEEN ? AND ? ORDER BY accepted_at",
        (int(Kind.STATUS), start, end),
    ):
        body = opened_body(frames.open(bytes(message_id), key_id, bytes(stored)), Kind.STATUS, open_payload)
        request = None if body is None else body.get("rollcall")
        if isinstance(request, str) and request in requests:
            out.setdefault((request, bytes(sender).hex()), (at, via))
    return out
