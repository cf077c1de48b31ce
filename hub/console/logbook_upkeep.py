"""Upkeep of the console's log book, run by the console's tick.

Archiving: entries beyond the newest ``keep``, and entries older than ``max_age`` (``[console]
logbook_live_days``), move to archive segments (``hub.console.logbook``).
Witnessed heads: the console sends its log book's newest number and hash to witnesses (``[logbook]
witnesses`` in the config, by name; by default the staff hubs in its roster and one more peer), who keep it
in their own log books, so a book rewritten later (a stolen Pi, every hash recomputed) no longer matches
what they hold. Each head sent is also added to this hub's own record of them, in the key folder
(``hub.console.logbook_chain``)."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

from hub.console.logbook import LogBook
from hub.console.logbook_chain import record_sent
from hub.core.errors import BeredtError
from hub.core.frame import Kind, Priority
from hub.core.kinds import encode_payload
from hub.relay.roster import Role as NodeRole

if TYPE_CHECKING:
    from hub.relay.hub import Hub

log = logging.getLogger("beredt.console")

_WITNESSED = re.compile(r"anker (\d+):([0-9a-f]{64}) \(node ([0-9a-f]{16})\)")
"""A received head as the witness's log book records it (``hub.console.messages.received_line``)."""


async def witnessed_heads(logbook: LogBook, node: str) -> list[tuple[int, str]]:
    """The heads of ``node``'s log book (node id hex) that this hub witnessed, as (seq, hash hex), oldest
    first: read from this hub's own log book, whose chain vouches for them."""
    node = node.lower()
    return [
        (int(found[1]), found[2])
        for entry in await logbook.entries()
        if (found := _WITNESSED.search(entry.text)) is not None and found[3] == node
    ]


class Witness:
    def __init__(self, hub: Hub, logbook: LogBook, witnesses: tuple[str, ...] | None, sent: set[str]) -> None:
        self.hub = hub
        self.logbook = logbook
        self.witnesses = witnesses  # roster names or node ids (hex); None: see chosen()
        self.sent = sent  # ids of the heads sent: not messages for the outbox or the log book
        self.last: tuple[int, str] | None = None  # the head last sent

    def chosen(self) -> list[str]:
        """The witnesses' node ids (hex): those configured that the roster knows, or else every staff hub
        and one more peer (the first other by name), so that one site's rewrite is caught at two."""
        me = self.hub.identity.node_id
        others = sorted((e for e in self.hub.roster if e.node_id != me), key=lambda e: (e.name, e.node_id))
        if self.witnesses is None:
            staff = [e for e in others if e.role is NodeRole.STAFF]
            extra = [e for e in others if e.role is not NodeRole.STAFF][:1]
            return [e.node_id.hex() for e in staff + extra]
        by_name = {e.name: e.node_id.hex() for e in others} | {
            e.node_id.hex(): e.node_id.hex() for e in others
        }
        unknown = [w for w in self.witnesses if w not in by_name]
        if unknown:
            log.warning("log book witnesses not in the roster: %s", ", ".join(unknown))
        return [by_name[w] for w in self.witnesses if w in by_name]

    async def send_head(self) -> None:
        """Send the log book's head to every witness, if it moved since the last time."""
        head = await self.logbook.head()
        if head is None or head == self.last:
            return
        at = int(self.hub.clock.time())
        payload = encode_payload(Kind.LOGBOOK_HEAD, {"seq": head[0], "hash": head[1], "at": at})
        reached: list[str] = []
        for node in self.chosen():
            try:
                sent = await self.hub.submit(
                    Kind.LOGBOOK_HEAD, bytes.fromhex(node), payload, priority=Priority.ROUTINE
                )
            except (BeredtError, ValueError) as exc:
                log.warning("the log book's head could not be sent to witness %s: %s", node, exc)
                continue
            self.sent.add(sent.hex())
            reached.append(node)
        if reached and self.logbook.keys is not None:
            await asyncio.to_thread(record_sent, self.logbook.keys, head[0], head[1], at, reached)
        self.last = head


async def archive_old(logbook: LogBook, keep: int, max_age: float, now: float) -> None:
    """Keep the live log book at ``keep`` entries written within ``max_age`` seconds before ``now`` (but
    at least a page of them): the rest go to archive segments, a batch at a time."""
    while await logbook.rotate(keep=keep, older_than=int(now - max_age)):
        pass
