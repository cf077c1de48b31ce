"""Personal alarms at the municipality's hub: each CITIZEN_ALARM matched to the citizen of its handheld.

The hub whose radio heard a registered handheld signs the alarm on (``hub.relay.personal_alarms``);
admission has already checked that its sender may send CITIZEN_ALARM. Here the alarm's handheld and key
fingerprint are looked up in this hub's own ``handhelds.toml`` (``hub.core.handhelds``):

- ``registered``: the handheld is listed with that key, so the alarm names its citizen;
- ``key_differs``: listed, but the radio hub heard it with another key (the two registers disagree, or
  the handheld was swapped): shown, flagged, without a citizen;
- ``unregistered``: not listed here: shown, flagged, without a citizen.

No alarm is ever dropped: a life-safety message that matches nothing is still somebody pressing a button.
Alarms stay open until a user acknowledges them (who and when is kept in ``personal-alarms.json`` in the
data folder, so a restart does not reopen them). At start the newest messages of the inbox are read
again, so alarms that came while the hub was down or before a restart are on the board.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.core.errors import BeredtError
from hub.core.frame import Kind, decode_frame
from hub.core.handhelds import FILE_NAME, Handheld, fingerprint, load_handhelds, node_label
from hub.core.kinds import decode_payload
from hub.relay.events import MessageReceived

if TYPE_CHECKING:
    from hub.relay.hub import Hub

log = logging.getLogger("beredt.citizens")

STATE_FILE = "personal-alarms.json"
KEEP = 500
"""Alarms held in memory and re-read from the inbox at start, newest first."""
RESCAN = 1000
"""Inbox messages read at start to find the alarms among them."""


@dataclass(slots=True)
class PersonalAlarmRow:
    id: str
    handheld: str
    citizen: str | None
    match: str
    text: str
    port: str
    heard: float
    received: float
    radio_hub: str
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None


AlarmSink = Callable[[PersonalAlarmRow], Awaitable[None]]


class HandheldAlarms:
    def __init__(self, hub: Hub, handhelds: dict[int, Handheld]) -> None:
        self.hub = hub
        self.handhelds = handhelds
        self._rows: dict[str, PersonalAlarmRow] = {}
        self._acks: dict[str, tuple[str, float]] = {}
        self._sinks: list[AlarmSink] = []
        self._state = hub.config.data_dir / STATE_FILE

    @classmethod
    async def open(cls, hub: Hub) -> HandheldAlarms:
        alarms = cls(hub, load_handhelds(hub.config.data_dir / FILE_NAME))
        alarms._acks = _load_acks(alarms._state)
        for stored in reversed(await hub.store.inbox(limit=RESCAN)):
            if stored.kind == Kind.CITIZEN_ALARM:
                await alarms.take(stored.id, notify=False)
        return alarms

    def on_alarm(self, sink: AlarmSink) -> None:
        """Call ``sink`` for every new alarm (the console writes it to the log book and tells browsers)."""
        self._sinks.append(sink)

    async def run(self) -> None:
        async for event in self.hub.subscribe():
            if isinstance(event, MessageReceived) and event.kind == "citizen_alarm":
                try:
                    await self.take(bytes.fromhex(event.id))
                except BeredtError:
                    log.exception("personal alarm %s could not be read", event.id)

    async def take(self, message_id: bytes, *, notify: bool = True) -> PersonalAlarmRow | None:
        """Match the stored CITIZEN_ALARM ``message_id``; the new row, or None if already known."""
        if message_id.hex() in self._rows:
            return None
        stored = await self.hub.store.message(message_id)
        if stored is None or not stored.for_me:
            return None
        frame = decode_frame(stored.wire)
        body = decode_payload(frame.kind, self.hub.open_payload(frame))
        if frame.kind is not Kind.CITIZEN_ALARM or not isinstance(body, dict):
            return None
        node = int(body["handheld"], 16)
        listed = self.handhelds.get(node)
        if listed is None:
            match, citizen = "unregistered", None
        elif fingerprint(listed.public_key).hex() != body["key"]:
            match, citizen = "key_differs", None
        else:
            match, citizen = "registered", listed.citizen
        ack = self._acks.get(message_id.hex())
        row = PersonalAlarmRow(
            id=message_id.hex(), handheld=node_label(node), citizen=citizen, match=match,
            text=str(body.get("text", "")), port=str(body["port"]), heard=float(body["heard"]),
            received=stored.accepted_at, radio_hub=frame.sender.hex(),
            acknowledged_by=ack[0] if ack else None, acknowledged_at=ack[1] if ack else None,
        )  # fmt: skip
        self._rows[row.id] = row
        while len(self._rows) > KEEP:
            oldest = min(self._rows.values(), key=lambda r: r.received)
            del self._rows[oldest.id]
        if match != "registered":
            log.warning("personal alarm %s from handheld %s: %s", row.id, row.handheld, match)
        if notify:
            for sink in self._sinks:
                await sink(row)
        return row

    def rows(self) -> list[dict[str, Any]]:
        """Open alarms first, then acknowledged ones; newest first within each."""
        ordered = sorted(self._rows.values(), key=lambda r: (r.acknowledged_at is not None, -r.received))
        return [asdict(r) for r in ordered]

    def acknowledge(self, alarm_id: str, by: str) -> bool:
        """Mark an alarm handled by ``by``; False if unknown or already acknowledged."""
        row = self._rows.get(alarm_id)
        if row is None or row.acknowledged_at is not None:
            return False
        row.acknowledged_by, row.acknowledged_at = by, self.hub.clock.time()
        self._acks[alarm_id] = (by, row.acknowledged_at)
        while len(self._acks) > KEEP:
            self._acks.pop(next(iter(self._acks)))
        _save_acks(self._state, self._acks)
        return True


def _load_acks(path: Path) -> dict[str, tuple[str, float]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.error("cannot read %s (%s): acknowledged personal alarms show as open again", path, exc)
        return {}
    return {str(k): (str(v[0]), float(v[1])) for k, v in data.items() if isinstance(v, list) and len(v) == 2}


def _save_acks(path: Path, acks: dict[str, tuple[str, float]]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({k: list(v) for k, v in acks.items()}), encoding="utf-8")
    os.replace(temporary, path)
