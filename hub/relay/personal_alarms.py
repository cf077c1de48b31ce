"""Personal alarms heard by this hub's radio, signed on as CITIZEN_ALARM messages.

A LoRa link with ``personal_alarms = true`` reports each alarm of a registered handheld that its gate
accepted (``transports.lora_alarm``) as a ``PersonalAlarm`` event. This hub signs it as a sealed
CITIZEN_ALARM at life-safety priority to ``report_to``: the municipality's hub (``[personal_alarm]
report_to``), or this hub itself, where it lands in its own inbox like a message received. From then on
it is an ordinary stored message: kept across restarts, retried until acknowledged, sent over whatever
link works. The municipality's hub matches it to the citizen (``hub.console.alarms``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from hub.core.clock import Clock
from hub.core.errors import BeredtError
from hub.core.frame import Kind, Priority
from hub.core.handhelds import fingerprint, node_label
from hub.core.kinds import encode_payload
from hub.core.transport import PersonalAlarm

log = logging.getLogger("beredt.alarms")

Submit = Callable[[Kind, bytes, bytes, Priority], Awaitable[bytes]]


class PersonalAlarms:
    def __init__(self, submit: Submit, clock: Clock, report_to: bytes) -> None:
        self._submit = submit
        self._clock = clock
        self.report_to = report_to
        self.forwarded = 0
        self.failed = 0

    async def forward(self, link: str, alarm: PersonalAlarm) -> bytes | None:
        """Sign and store the alarm for ``report_to``; its message id, or None (logged) if it failed."""
        body: dict[str, object] = {
            "handheld": f"{alarm.node:08x}",
            "key": fingerprint(alarm.public_key).hex(),
            "heard": int(self._clock.time()),
            "port": alarm.port,
        }
        if alarm.text:
            body["text"] = alarm.text
        try:
            message_id = await self._submit(
                Kind.CITIZEN_ALARM,
                self.report_to,
                encode_payload(Kind.CITIZEN_ALARM, body),
                Priority.LIFE_SAFETY,
            )
        except BeredtError as exc:
            self.failed += 1
            log.error(
                "personal alarm from handheld %s heard on %s could NOT be passed on: %s",
                node_label(alarm.node), link, exc,
            )  # fmt: skip
            return None
        self.forwarded += 1
        log.warning(
            "personal alarm from handheld %s heard on %s: sent as %s to %s",
            node_label(alarm.node), link, message_id.hex(), self.report_to.hex(),
        )  # fmt: skip
        return message_id
