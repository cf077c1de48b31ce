"""Each hub's own account of its links in the exercise, as it reported it to the coordinator's hub.

Every hub in an exercise sends the coordinator a signed EXERCISE_SUMMARY (``hub.exercise.summary``) when
the exercise is over there, and whenever the coordinator asks: the coordinator's hub sees only the last
hop, so a care home's failover to MQTT behind a relay shows only here. They are read from ``store.db``
(received frames of that kind, marked Exercise, for this exercise), the latest from each hub. Nothing is
filled in for a hub whose summary never arrived: the report names it instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from hub.core.errors import ProtocolError
from hub.core.frame import Kind, Status, decode_frame
from hub.core.kinds import decode_payload
from hub.exercise.report.model import LinkEvent, Reported, Usage
from hub.relay.link_reasons import Why, link_reason
from hub.relay.store_at_rest import FrameVault

LINK_STATES = {"up": "oppe", "degraded": "svækket", "down": "nede"}
_SIMULATED = (Why.SIMULATED.value, Why.SIMULATED_LIFTED.value)


def read_reported(
    db: sqlite3.Connection, frames: FrameVault, exercise: str, exercise_name: str, since: float,
    name: Callable[[str], str], kinds: dict[str, str],
) -> dict[str, Reported]:  # fmt: skip
    """Sender (hex) -> its latest summary of ``exercise``, from the frames received since ``since``."""
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for message_id, stored, key_id in db.execute(
        "SELECT id, wire, key_id FROM messages WHERE kind = ? AND local = 0 AND accepted_at >= ?"
        " ORDER BY accepted_at",
        (int(Kind.EXERCISE_SUMMARY), since),
    ):  # row by row: one small frame per hub and request
        wire = frames.open(bytes(message_id), key_id, bytes(stored))
        if wire is None:
            continue  # past its retention
        try:
            frame = decode_frame(wire)
            body = decode_payload(Kind.EXERCISE_SUMMARY, frame.payload)
        except ProtocolError:
            continue  # admission let it in, so it decoded then; a newer hub's fields are no reason to fail
        if frame.status is not Status.EXERCISE or not isinstance(body, dict) or body["exercise"] != exercise:
            continue
        sender = frame.sender.hex()
        if sender not in latest or body["until"] >= latest[sender][0]:
            latest[sender] = (body["until"], body)
    return {
        sender: _reported(name(sender), body, exercise_name, name, kinds)
        for sender, (_, body) in latest.items()
    }


def _reported(
    hub: str, body: dict[str, Any], exercise_name: str, name: Callable[[str], str], kinds: dict[str, str]
) -> Reported:
    usage = tuple(
        Usage(
            u["link"], kinds.get(u["link"], u["link"]),
            u.get("messages", 0), u.get("sends", 0), u.get("bytes", 0),
            u["airtime_ms"] / 1000 if "airtime_ms" in u else None, u.get("credits"), u.get("refused", 0),
        )
        for u in body.get("use", [])
    )  # fmt: skip
    events = tuple(
        LinkEvent(
            c["at"], c["link"], None if "peer" not in c else name(c["peer"]), c["new"],
            f"{LINK_STATES.get(c['old'], c['old'])} → {LINK_STATES.get(c['new'], c['new'])}",
            simulated=c.get("reason") in _SIMULATED,
            reason=link_reason(c.get("reason"), {"exercise": exercise_name, "seconds": "?"}),
        )
        for c in body.get("changes", [])
    )  # fmt: skip
    return Reported(
        hub, body["from"], body["until"], bool(body.get("final")), usage, events, body.get("left_out", 0)
    )
