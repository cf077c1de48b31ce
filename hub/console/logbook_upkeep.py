"""Upkeep of the console's log book, run by the console's tick.

Archiving: entries beyond the newest ``keep``, and entries older than ``max_age`` (``[console]
logbook_live_days``), move to archive segments (``hub.console.logbook``).
Witnessed heads: the console sends its log book's newest number and hash to witnesses (the staff
hubs in its roster, unless configured), who keep it in their own log books, so a book rewritten later
(a stolen Pi, every hash recomputed) no longer matches what they hold."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hub.console.logbook import LogBook
from hub.core.errors import BeredtError
from hub.core.frame import Kind, Priority
from hub.core.kinds import encode_payload
from hub.relay.roster import Role as NodeRole

if TYPE_CHECKING:
    from hub.relay.hub import Hub

log = logging.getLogger("beredt.console")


class Witness:
    def __init__(self, hub: Hub, logbook: LogBook, witnesses: tuple[str, ...] | None, sent: set[str]) -> None:
        self.hub = hub
        self.logbook = logbook
        self.witnesses = witnesses  # node ids (hex); None: the staff hubs in the roster
        self.sent = sent  # ids of the heads sent: not messages for the outbox or the log book
        self.last: tuple[int, str] | None = None  # the head last sent

    async def send_head(self) -> None:
        """Send the log book's head to every witness, if it moved since the last time."""
        head = await self.logbook.head()
        if head is None or head == self.last:
            return
        witnesses = self.witnesses
        if witnesses is None:
            me = self.hub.identity.node_id
            witnesses = tuple(
                e.node_id.hex() for e in self.hub.roster if e.role is NodeRole.STAFF and e.node_id != me
            )
        body = {"seq": head[0], "hash": head[1], "at": int(self.hub.clock.time())}
        payload = encode_payload(Kind.LOGBOOK_HEAD, body)
        for node in witnesses:
            try:
                sent = await self.hub.submit(
                    Kind.LOGBOOK_HEAD, bytes.fromhex(node), payload, priority=Priority.ROUTINE
                )
            except (BeredtError, ValueError) as exc:
                log.warning("the log book's head could not be sent to witness %s: %s", node, exc)
                continue
            self.sent.add(sent.hex())
        self.last = head


async def archive_old(logbook: LogBook, keep: int, max_age: float, now: float) -> None:
    """Keep the live log book at ``keep`` entries written within ``max_age`` seconds before ``now`` (but
    at least a page of them): the rest go to archive segments, a batch at a time."""
    while await logbook.rotate(keep=keep, older_than=int(now - max_age)):
        pass
