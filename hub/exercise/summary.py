"""A participating hub's own account of an exercise, sent to the coordinator's hub (EXERCISE_SUMMARY).

The coordinator's hub sees only the last hop of what reaches it: a care home's status that went over MQTT
to a relay arrives over the relay's internet link. So every hub that takes part tells the coordinator
itself, when the exercise is over here and whenever the coordinator asks (``ExerciseState.summaries_due``):

- every change of its links' health within the exercise (``console.db`` ``link_changes``, with the
  reason's code), the earliest ``MAX_SUMMARY_CHANGES`` of them and how many more there were;
- per link, the exercise messages this hub sent that left by it, their sends and bytes (``store.db``
  deliveries, counted as the report counts the coordinator's own), and the airtime and credits the link
  metered for the exercise's frames (``exercise-usage.json``).

Everything is read from the files the hub keeps; the coordinator's report (``hub.exercise.report.
reported``) shows it as reported by this hub.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hub.core.at_rest import KEY_FOLDER, DataKeys, Retention
from hub.core.errors import BeredtError
from hub.core.frame import Kind, Status
from hub.core.kinds import encode_payload
from hub.core.kinds.catalog import MAX_SUMMARY_CHANGES
from hub.core.metering import Tally
from hub.exercise.report.collect import read_db, read_store, sent_messages, usage
from hub.relay.exercises import SummaryDue
from hub.relay.hub import Hub
from hub.relay.store_at_rest import FrameVault

log = logging.getLogger("beredt.exercise")

CONSOLE_DB = "console.db"


def build(data_dir: Path, due: SummaryDue, until: float, tallies: Mapping[str, Tally]) -> dict[str, Any]:
    """The EXERCISE_SUMMARY body for ``due``, from ``due.started`` until ``until``, read from ``data_dir``."""
    start, end = int(due.started), int(until)  # whole seconds, as the summary says them
    changes = link_changes(data_dir / CONSOLE_DB, start, end)
    frames = FrameVault(DataKeys(data_dir / KEY_FOLDER), Retention())
    with read_store(data_dir / "store.db") as db:
        messages = sent_messages(db, start, end, str, frames)
    use: dict[str, dict[str, object]] = {
        u.link: {"link": u.link, "messages": u.messages, "sends": u.attempts, "bytes": u.bytes}
        for u in usage(messages, {}, None)
    }
    for link, tally in tallies.items():  # only what a link spent: an internet link has no airtime
        spent = {
            "airtime_ms": round(tally.airtime_s * 1000),
            "credits": tally.credits,
            "refused": tally.refused,
        }
        for what, amount in spent.items():
            if amount > 0:
                use.setdefault(link, {"link": link})[what] = amount
    return {
        "exercise": due.exercise,
        "from": start,
        "until": end,
        "final": int(due.final),
        "changes": changes[:MAX_SUMMARY_CHANGES],
        "left_out": max(0, len(changes) - MAX_SUMMARY_CHANGES),
        "use": [use[link] for link in sorted(use)][:16],
    }


def link_changes(console_db: Path, start: float, end: float) -> list[dict[str, object]]:
    """Every change of this hub's links' health between ``start`` and ``end``, oldest first (none when
    the console never recorded one)."""
    if not console_db.is_file():
        return []
    with read_db(console_db, "konsollens database") as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(link_changes)")}
        if not columns:
            return []
        code = "reason_code" if "reason_code" in columns else "NULL"
        rows = db.execute(
            f"SELECT time, link, peer, old, new, {code} FROM link_changes WHERE time BETWEEN ? AND ?"
            " ORDER BY time",
            (start, end),
        ).fetchall()
    return [
        {"at": int(at), "link": link, "old": old, "new": new}
        | ({"peer": peer} if peer else {})
        | ({"reason": reason} if reason else {})
        for at, link, peer, old, new, reason in rows
    ]


def encode_within_limit(body: dict[str, Any]) -> bytes:
    """The summary's payload; when long link names make it larger than a frame holds, the latest link
    changes are left out (and counted in ``left_out``) until it fits."""
    while True:
        try:
            return encode_payload(Kind.EXERCISE_SUMMARY, body)
        except ValueError:
            if not body["changes"]:
                raise
            body["changes"].pop()
            body["left_out"] += 1


async def send(hub: Hub, due: SummaryDue) -> bytes:
    """Build the summary ``due`` from this hub's files and send it to the coordinator; its message id."""
    await hub.store.flush()  # what was sent until now is in store.db
    tallies = hub.exercise.usage.of(due.exercise)
    body = await asyncio.to_thread(build, hub.config.data_dir, due, hub.clock.time(), tallies)
    payload = encode_within_limit(body)
    return await hub.submit(
        Kind.EXERCISE_SUMMARY, bytes.fromhex(due.coordinator), payload, status=Status.EXERCISE
    )


async def send_forever(hub: Hub) -> None:
    """Send each summary as it falls due; never returns."""
    state = hub.exercise
    while True:
        await state.summary_wanted.wait()
        state.summary_wanted.clear()
        while state.summaries_due:
            due = state.summaries_due.popleft()
            try:
                message_id = await send(hub, due)
            except (BeredtError, sqlite3.Error, OSError) as exc:  # the coordinator can ask again
                log.error("could not send the summary of exercise %s: %s", due.exercise, exc)
                continue
            state.summary_sent(due)
            log.info(
                "summary of exercise %s sent to %s as %s", due.exercise, due.coordinator, message_id.hex()
            )
