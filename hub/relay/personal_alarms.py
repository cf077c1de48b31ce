"""Personal alarms heard by this hub's radio, signed on as CITIZEN_ALARM messages.

A LoRa link with ``personal_alarms = true`` reports each alarm of a registered handheld that its gate
accepted (``transports.lora_alarm``) as a ``PersonalAlarm`` event. This hub signs it as a sealed
CITIZEN_ALARM at life-safety priority to ``report_to``: the municipality's hub (``[personal_alarm]
report_to``), or this hub itself, where it lands in its own inbox like a message received. From then on
it is an ordinary stored message: kept across restarts, retried until acknowledged, sent over whatever
link works. If it cannot even be queued for ``report_to`` (no route configured), it is kept here and
logged as an error. The municipality's hub matches it to the citizen (``hub.citizens.handheld_alarms``).
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
        self.me = report_to
        """This hub: where an alarm is kept when it cannot be sent on."""
        self.report_to = report_to
        self.forwarded = 0
        self.failed = 0

    async def forward(self, link: str, alarm: PersonalAlarm) -> bytes | None:
        """Sign and store the alarm for ``report_to``; its message id. If that fails (no route, say), the
        alarm is kept in this hub's own inbox instead, so its console shows it; None only if both fail."""
        body: dict[str, object] = {
            "handheld": f"{alarm.node:08x}",
            "key": fingerprint(alarm.public_key).hex(),
            "heard": int(self._clock.time()),
            "port": alarm.port,
        }
        if alarm.text:
            body["text"] = alarm.text
        payload = encode_payload(Kind.CITIZEN_ALARM, body)
        for recipient in dict.fromkeys((self.report_to, self.me)):
            try:
                message_id = await self._submit(Kind.CITIZEN_ALARM, recipient, payload, Priority.LIFE_SAFETY)
            except BeredtError as exc:
                log.error(
                    "personal alarm from handheld %s heard on %s could not be sent to %s: %s",
                    node_label(alarm.node), link, recipient.hex(), exc,
                )  # fmt: skip
                continue
            self.forwarded += 1
            log.warning(
                "personal alarm from handheld %s heard on %s: %s for %s",
                node_label(alarm.node), link, message_id.hex(), recipient.hex(),
            )  # fmt: skip
            return message_id
        self.failed += 1
        return None
