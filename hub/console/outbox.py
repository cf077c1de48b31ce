"""What became of every message this hub sent: one delivery state per recipient, as codes the browser words.

The hub knows the truth in three places: the router's open deliveries (queued, why, next try; sent over
which link), the store's settled ones (which next hop took it) and end-to-end acks, and the read
receipts that come back. ``Outbox`` remembers what was sent (id, recipient, kind, who sent it, the
button that sent it) and the receipts; ``recipient_state`` folds the three sources into one state:

    queued     waiting: no usable link, or the last attempt failed (``why``), next try at ``next_try``
    sent       handed to ``link`` towards the next hop; its hop ack has not come yet
    carried    the next hop (a relay) has it and carries it on; the recipient has not confirmed
    delivered  the recipient's signed end-to-end ack came back
    read       the recipient confirmed "read and understood" (``read_by``)
    failed     expired or evicted before it got through, or its recipient was revoked (``why``)

Only ``delivered`` and ``read`` mean the recipient has it; the console says "not confirmed" for the rest.
States are codes with parameters, never sentences, so the Danish and the English console word them alike.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from hub.console.messages import link_label, name_of
from hub.core.at_rest import DAY, Retention
from hub.relay.delivery import DeliveryState

if TYPE_CHECKING:
    from hub.relay.hub import Hub

KEEP = 300
"""The most sent messages remembered; each is also forgotten when its retention ends (``forget_expired``)."""


@dataclass(slots=True)
class Sent:
    id: str
    to: str
    kind: str
    priority: str
    at: float
    author: str
    summary: str = ""
    preset: str | None = None  # the care-home button that sent it
    batch: str | None = None  # one composition sent to several recipients shares a batch id
    delivered_at: float | None = None  # the end-to-end ack, as heard on the event bus
    group: str | None = None  # sent to this group: the batch id is then the group message's id


@dataclass(frozen=True, slots=True)
class Receipt:
    by: str
    at: float


class Outbox:
    """The newest ``KEEP`` messages sent from this hub and the read receipts for them."""

    def __init__(self) -> None:
        self._sent: collections.OrderedDict[str, Sent] = collections.OrderedDict()
        self.receipts: dict[str, Receipt] = {}

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._sent

    def get(self, message_id: str) -> Sent | None:
        return self._sent.get(message_id)

    def add(self, sent: Sent) -> None:
        if sent.id in self._sent:  # the API's MessageSent event for a message the console recorded first
            return
        self._sent[sent.id] = sent
        while len(self._sent) > KEEP:
            old, _ = self._sent.popitem(last=False)
            self.receipts.pop(old, None)

    def forget_expired(self, now: float, retention: Retention) -> int:
        """Forget the messages whose retention (``[retention]``, per kind) ended by ``now``, and their
        receipts: a summary may name a person, and by then the store has deleted the message itself."""
        ended = [s.id for s in self._sent.values() if s.at + retention.days_for(s.kind) * DAY <= now]
        for message_id in ended:
            del self._sent[message_id]
            self.receipts.pop(message_id, None)
        return len(ended)

    def receipt(self, message_id: str, by: str, at: float) -> bool:
        """A read receipt for one of ours; False for a receipt about something we did not send."""
        if message_id not in self._sent or message_id in self.receipts:
            return False
        self.receipts[message_id] = Receipt(by, at)
        return True

    def delivered(self, message_id: str, at: float) -> bool:
        sent = self._sent.get(message_id)
        if sent is None or sent.delivered_at is not None:
            return False
        sent.delivered_at = at
        return True

    def unconfirmed(self, to: str, priorities: tuple[str, ...], older_than: float) -> list[Sent]:
        """Messages to ``to`` of these priorities sent before ``older_than`` and not yet confirmed."""
        return [
            s for s in self._sent.values()
            if s.to == to and s.priority in priorities and s.at < older_than
            and s.delivered_at is None and s.id not in self.receipts
        ]  # fmt: skip

    def newest(self, limit: int = KEEP) -> list[Sent]:
        return list(reversed(self._sent.values()))[:limit]

    def redact(self, redacted: Callable[[str], str]) -> int:
        """Replace each summary with ``redacted(summary)``; returns how many changed."""
        changed = 0
        for sent in self._sent.values():
            if (new := redacted(sent.summary)) != sent.summary:
                sent.summary, changed = new, changed + 1
        return changed

    def snapshot(self) -> dict[str, Any]:
        return {
            "sent": [asdict(s) for s in self._sent.values()],
            "receipts": {k: [r.by, r.at] for k, r in self.receipts.items()},
        }

    def restore(self, saved: dict[str, Any]) -> None:
        for item in saved.get("sent", []):
            self.add(Sent(**item))
        for key, (by, at) in saved.get("receipts", {}).items():
            if key in self._sent:
                self.receipts[key] = Receipt(str(by), float(at))


def _why(error: str | None, no_usable_link: bool) -> str | None:
    """A reason code for a queued delivery (the transport's own words stay in ``detail``)."""
    if no_usable_link:
        return "no_link"
    if error is None:
        return None
    lowered = error.lower()
    if "hop ack" in lowered:
        return "no_hop_ack"
    if "budget" in lowered or "airtime" in lowered or "duty" in lowered:
        return "budget"
    return "send_failed"


async def recipient_state(hub: Hub, sent: Sent, receipt: Receipt | None) -> dict[str, Any]:
    """The state of one sent message at its recipient, from the router, the store and the receipts."""
    message_id = bytes.fromhex(sent.id)
    stored = await hub.store.message(message_id)
    out: dict[str, Any] = {
        "state": "queued", "why": None, "detail": None, "next_try": None, "link": None, "link_kind": None,
        "hop": None, "hop_name": None, "delivered_at": None, "read_at": None, "read_by": None,
        "attempts": 0,
    }  # fmt: skip
    if receipt is not None:
        out.update(state="read", read_at=receipt.at, read_by=receipt.by)
    # the ack as heard on the event bus first: the store writes it behind the router's back, so a view
    # fetched at once after the live event could otherwise still miss it
    acked = sent.delivered_at or (stored.e2e_acked_at if stored is not None else None)
    if acked is not None:
        out["delivered_at"] = acked
        if receipt is None:
            out["state"] = "delivered"
    if out["state"] in ("read", "delivered"):
        return out
    if stored is not None and stored.state == "revoked":  # withdrawn from every queue: it never arrives
        out.update(state="failed", why="revoked")
        return out
    open_ = hub.router.progress(message_id)
    if open_:
        first = open_[0]
        hop = first.hop.hex()
        out.update(hop=hop, hop_name=name_of(hub, hop), link=first.link, attempts=first.attempts,
                   link_kind=link_label(hub, first.link), next_try=first.next_try)  # fmt: skip
        if first.state is DeliveryState.SENT:
            out["state"] = "sent"
        else:
            out.update(why=_why(first.last_error, first.no_usable_link), detail=first.last_error)
        return out
    if stored is None:
        out["state"] = "unknown"  # purged from the store after it expired
        return out
    rows = await hub.store.deliveries(message_id)
    carried = [r for r in rows if r.state == DeliveryState.HOP_ACKED.value]
    if carried:
        row = carried[0]
        hop = (row.next_hop or row.hop).hex()
        out.update(state="carried", hop=hop, hop_name=name_of(hub, hop), link=row.link,
                   link_kind=link_label(hub, row.link), attempts=row.attempts)  # fmt: skip
        return out
    if rows and all(r.state in (DeliveryState.EXPIRED.value, DeliveryState.EVICTED.value) for r in rows):
        out.update(state="failed", why=rows[0].state)
    return out
