"""Upkeep of the console's log book, run by the console's tick.

Archiving: entries beyond the newest ``keep``, and entries older than ``max_age`` (``[console]
logbook_live_days``), move to archive segments (``hub.console.logbook``).
Checking: the live entries not yet verified are walked after each archiving (after a start, the whole live
table), so the first view of the log book after a start has only the newest entries to walk.
Witnessed heads: the console sends its log book's newest number and hash to witnesses (``[logbook]
witnesses`` in the config, by name; by default the staff hubs in its roster and one more peer), who keep it
in their own log books, so a book rewritten later (a stolen Pi, every hash recomputed) no longer matches
what they hold. Each head sent is also added to this hub's own record of them, in the key folder
(``hub.console.logbook_chain``)."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiosqlite

from hub.console.logbook import LogBook
from hub.console.logbook_chain import record_sent
from hub.core.errors import BeredtError, StoreError
from hub.core.frame import Kind, Priority
from hub.core.kinds import encode_payload
from hub.relay.roster import Role as NodeRole

if TYPE_CHECKING:
    from hub.relay.hub import Hub

log = logging.getLogger("beredt.console")

_WITNESSED = re.compile(r"anker (\d+):([0-9a-f]{64})(?: \(node ([0-9a-f]{16})\))?")
"""A received head as the witness's log book records it (``hub.console.messages.received_line``); heads
logged before the sender's node id was added to the line lack the ``(node …)`` part."""
_OLD_SENDER = re.compile(r"^(?:\S+ )?[Ll]ogbogsanker fra (.+) via .*\[id ([0-9a-f]{32})\]$")
"""The sender's name and the message id in such an older line."""


@dataclass(frozen=True, slots=True)
class WitnessedHead:
    """A head of another hub's book, as this hub (the witness) logged it in its own book."""

    seq: int
    hash: str
    witness: str
    """This hub's node id (hex): whose book vouches for the head."""
    entry: int
    """The entry in the witness's book that records it."""
    time: int
    """When the witness logged it (Unix time)."""


async def witnessed_heads(logbook: LogBook, node: str, hub: Hub | None = None) -> list[WitnessedHead]:
    """The heads of ``node``'s log book (node id hex) that this hub witnessed, oldest first: read from this
    hub's own log book, whose chain vouches for them. A head logged without the sender's node id (by an
    older version) counts when ``hub``'s store still holds that message from ``node``, or else when
    ``node`` goes by the logged sender's name in ``hub``'s roster now."""
    node = node.lower()
    heads = []
    for entry in await logbook.entries():
        found = _WITNESSED.search(entry.text)
        if found is None:
            continue
        if found[3] != node and not (found[3] is None and await _sent_by(entry.text, node, hub)):
            continue
        heads.append(WitnessedHead(int(found[1]), found[2], entry.node, entry.seq, entry.time))
    return heads


async def _sent_by(text: str, node: str, hub: Hub | None) -> bool:
    """Whether an older head line, which names its sender only by name, came from ``node``."""
    old = _OLD_SENDER.match(text)
    if old is None or hub is None:
        return False
    stored = await hub.store.message(bytes.fromhex(old[2]))
    if stored is not None:
        return stored.sender.hex() == node
    entry = hub.roster.get(bytes.fromhex(node))
    return entry is not None and entry.name == old[1]


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
        # the held entries first: stamped before now, they must not come after a head witnessed now
        await self.logbook.flush()
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


async def check_new(logbook: LogBook) -> None:
    """Verify the live entries added since the last check; a break is logged here and shown in the view."""
    try:
        broken = await logbook.verify_new()
    except aiosqlite.Error as exc:
        raise StoreError(f"cannot read the log book to verify it: {exc}") from exc
    if broken is not None:
        log.error("the log book's chain is broken at entry %d: run `beredt log verify`", broken)


async def archive_old(logbook: LogBook, keep: int, max_age: float, now: float) -> None:
    """Keep the live log book at ``keep`` entries written within ``max_age`` seconds before ``now`` (but
    at least a page of them): the rest go to archive segments, a batch at a time."""
    while await logbook.rotate(keep=keep, older_than=int(now - max_age)):
        pass
