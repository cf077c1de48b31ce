"""Read receipts ("læst og forstået") for the exercise's messages, read from ``store.db``.

Each receipt is a READ_RECEIPT frame the reader's hub signed and sealed to this hub, stored when it
arrived: durable, and kept for as long as the store keeps messages, so every message of the exercise is
covered however many were sent. The receipts are read row by row from the exercise's start on (a
receipt may come after the exercise's end) and only those naming one of the exercise's messages are
kept, so memory grows with the exercise's messages, not with the store. A receipt counts only when its
signer is the message's recipient (or the message went to everyone); the first one for a message wins.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Set

from hub.core.frame import BROADCAST, Kind
from hub.exercise.report.rollcalls import Opener, opened_body
from hub.relay.store_at_rest import FrameVault

PAGE = 500
"""Rows fetched at a time."""


def read_receipts(
    db: sqlite3.Connection, frames: FrameVault, messages: Set[str], start: float, open_payload: Opener
) -> dict[str, tuple[str, float]]:
    """Message id (hex) -> (who read it, or "" when the reader gave no name; when: Unix seconds) for
    the ids in ``messages``. ``db`` holds ``message_rows`` (``collect``: each id's row)."""
    out: dict[str, tuple[str, float]] = {}
    if not messages:
        return out
    rows = db.execute(
        "SELECT id, wire, key_id, sender FROM messages WHERE kind = ? AND local = 0 AND accepted_at >= ?"
        " ORDER BY accepted_at",
        (int(Kind.READ_RECEIPT), start),
    )
    while page := rows.fetchmany(PAGE):
        for receipt_id, stored, key_id, sender in page:
            body = opened_body(
                frames.open(bytes(receipt_id), key_id, bytes(stored)), Kind.READ_RECEIPT, open_payload
            )
            message = None if body is None else body.get("message")
            if not isinstance(message, str) or message not in messages or message in out:
                continue
            if not _from_recipient(db, message, bytes(sender)):
                continue
            assert body is not None
            read_at = body.get("read_at")
            if isinstance(read_at, int | float):
                out[message] = (str(body.get("by") or ""), float(read_at))  # "": the recipient's name
    return out


def _from_recipient(db: sqlite3.Connection, message: str, signer: bytes) -> bool:
    row = db.execute(
        "SELECT recipient FROM messages WHERE row = (SELECT row FROM message_rows WHERE id = ?)",
        (bytes.fromhex(message),),
    ).fetchone()
    return row is not None and bytes(row[0]) in (signer, BROADCAST)
