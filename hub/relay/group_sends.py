"""Group messages: one logical message to a group, sent as one message per member, and what became of it.

Sealing is per reader and an end-to-end ack is per recipient, so the sending hub expands a group to its
members at the moment of sending (``hub.relay.groups``) and submits one ordinary message to each: each
is sealed to its member, routed, retried and acknowledged on its own. This ledger remembers which
message went to which member under one group message id, so the API, the CLI and the console can say
"3 af 5 har modtaget". A member enrolled later gets nothing of an earlier group message; a member revoked
afterwards drops out of the count (its copy is withdrawn, as for any revoked node).

The ledger is a small JSON file in the data folder (``group-sends.json``), replaced atomically after each
group message and bounded to the newest ``KEEP``. The member messages themselves are in the store like
any other, so a crash between them and the ledger's write loses no message, only the grouping.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.core.files import write_atomically

if TYPE_CHECKING:
    from hub.relay.roster import Roster
    from hub.relay.store import Store

log = logging.getLogger("beredt.groups")

KEEP = 500
LEDGER_FILE = "group-sends.json"


@dataclass(frozen=True, slots=True)
class GroupSend:
    """One message to a group: its id (16 hex digits), the group and, per member, its message's id."""

    id: str
    group: str
    kind: str
    created: float
    members: tuple[tuple[str, str], ...]  # (node id hex, message id hex), in the group's order


class GroupSends:
    """The newest ``KEEP`` group messages this hub sent, kept in ``path`` (or in memory without one)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._sends: collections.OrderedDict[str, GroupSend] = collections.OrderedDict()
        self._by_message: dict[str, str] = {}
        self._lock = asyncio.Lock()

    def load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            for item in saved:
                self._add(GroupSend(item["id"], item["group"], item["kind"], float(item["created"]),
                                    tuple((str(n), str(m)) for n, m in item["members"])))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # the member messages are in the store; only their grouping is lost
            log.error("group message ledger %s unreadable, starting empty: %s", self.path, exc)
            self._sends.clear()
            self._by_message.clear()

    def _add(self, send: GroupSend) -> None:
        self._sends[send.id] = send
        self._by_message.update({message: send.id for _, message in send.members})
        while len(self._sends) > KEEP:
            _, old = self._sends.popitem(last=False)
            for _, message in old.members:
                self._by_message.pop(message, None)

    async def _save(self) -> None:
        if self.path is None:
            return
        text = json.dumps([asdict(s) for s in self._sends.values()], separators=(",", ":"))
        await asyncio.to_thread(write_atomically, self.path, text, mode=0o600)

    def get(self, send_id: str) -> GroupSend | None:
        return self._sends.get(send_id)

    def of_message(self, message_id: str) -> GroupSend | None:
        """The group message a member's message belongs to, if any."""
        send_id = self._by_message.get(message_id)
        return None if send_id is None else self._sends.get(send_id)

    def newest(self, limit: int = KEEP) -> list[GroupSend]:
        return list(reversed(self._sends.values()))[:limit]

    async def send(
        self,
        group: str,
        members: Sequence[bytes],
        submit_one: Callable[[bytes], Awaitable[bytes]],
        *,
        kind: str,
        now: float,
        send_id: str | None = None,
    ) -> GroupSend:
        """Submit one message per member with ``submit_one`` and record them as one group message (under
        ``send_id`` if given: the console makes it first, to label the member messages with it).

        If a submit fails part way (a full store), the members already sent are recorded before the
        error is raised, so what was accepted is still tracked."""
        send_id = send_id or secrets.token_hex(8)
        sent: list[tuple[str, str]] = []
        async with self._lock:
            try:
                for member in members:
                    message_id = await submit_one(member)
                    sent.append((member.hex(), message_id.hex()))
            finally:
                if sent:
                    self._add(GroupSend(send_id, group, kind, now, tuple(sent)))
                    await self._save()
        return self._sends[send_id]


async def progress(sends: Sequence[GroupSend], store: Store, roster: Roster) -> list[dict[str, Any]]:
    """Per group message and member: ``received`` (its signed end-to-end ack came back), ``pending``,
    ``failed`` (expired or evicted first) or ``revoked`` (no longer trusted: dropped from the count); and
    the totals. The store writes acks behind the router's back, so its queued writes are committed first:
    an ack the console has shown is counted here too."""
    await store.flush()
    return [await _progress(send, store, roster) for send in sends]


async def _progress(send: GroupSend, store: Store, roster: Roster) -> dict[str, Any]:
    rows = []
    for node_hex, message_hex in send.members:
        node = bytes.fromhex(node_hex)
        entry = roster.get(node)
        stored = await store.message(bytes.fromhex(message_hex))
        if stored is not None and stored.e2e_acked_at is not None:
            state, at = "received", stored.e2e_acked_at
        elif entry is None:
            state, at = "revoked", None
        elif stored is None or stored.state in ("expired", "evicted"):
            state, at = "failed", None
        else:
            state, at = "pending", None
        rows.append({"node": node_hex, "name": entry.name if entry else node_hex, "message": message_hex,
                     "state": state, "received_at": at})  # fmt: skip
    return {
        "id": send.id,
        "group": send.group,
        "kind": send.kind,
        "created": send.created,
        "members": rows,
        "received": sum(1 for r in rows if r["state"] == "received"),
        "total": sum(1 for r in rows if r["state"] != "revoked"),
    }
