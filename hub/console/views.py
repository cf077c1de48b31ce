"""What the console shows, computed from the hub and the console's records (no I/O of its own but the
delivery states of sent messages): the institutions, each one's contact assessment for the board, a
received message as the messages view lists it, and the sent view with per-recipient state."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from hub.console.contact import ContactIntervals
from hub.console.messages import link_label, name_of
from hub.console.outbox import Outbox, recipient_state
from hub.core.frame import BROADCAST
from hub.relay.health import LinkState
from hub.relay.roster import Role as NodeRole

if TYPE_CHECKING:
    from hub.relay.hub import Hub

_CONCERNS = ["critical", "help", "unknown", "ok"]


def institutions(hub: Hub) -> dict[str, tuple[str, ...]]:
    """Care homes in the roster, each with the links to try in the hub's configured order."""
    order = [link.name for link in hub.config.links]
    peers = {p.node_id: p for p in hub.config.peers}
    out = {}
    for entry in hub.roster:
        if entry.role is not NodeRole.CARE_HOME:
            continue
        peer = peers.get(entry.node_id)
        links = [name for name in order if peer is None or name in peer.links]
        out[entry.node_id.hex()] = tuple(links or order)
    return out


def with_contact(
    hub: Hub,
    rows: list[dict[str, Any]],
    now: float,
    intervals: ContactIntervals,
    outbox: Outbox,
    confirm_within: float,
) -> list[dict[str, Any]]:
    """``rows`` of the status board, each given its ``contact``: how the institution can be reached now,
    when it was last heard from (a message, or a link answering it directly), and the alarms a
    coordinator must act on."""
    for row in rows:
        row["contact"] = _contact(hub, row, now, intervals, outbox, confirm_within)
    return rows


def by_urgency(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Board rows by concern, and out of contact first within each: silence is the risk the board exists
    for."""
    return sorted(rows, key=lambda r: (_CONCERNS.index(r["concern"]), not r["contact"]["alarms"]))


def _contact(
    hub: Hub,
    row: dict[str, Any],
    now: float,
    intervals: ContactIntervals,
    outbox: Outbox,
    confirm_within: float,
) -> dict[str, Any]:
    node, last_heard, last_link = row["node"], row["last_heard"], row["last_link"]
    try:
        raw = bytes.fromhex(node)
    except ValueError:
        raw = b""
    paths = []
    if len(raw) == 8:
        for hop in hub.router.route(raw):
            for candidate in hub.links.options(hop):
                link_state = hub.links.state(candidate.link, hop)
                paths.append({"hop": hop.hex(), "hop_name": name_of(hub, hop.hex()),
                              "link": candidate.link, "link_kind": link_label(hub, candidate.link),
                              "state": link_state.label})  # fmt: skip
    offset = now - hub.clock.monotonic()
    for entry in hub.health.entries():
        # a link answering the institution itself (a probe or a hop ack) is contact too
        if entry.peer == node and entry.last_success and entry.last_success + offset > (last_heard or 0):
            last_heard, last_link = entry.last_success + offset, entry.link
    alarms = []
    if paths and not any(p["state"] != LinkState.DOWN.label for p in paths):
        alarms.append("route_down")
    elif not paths:
        alarms.append("no_route")
    silent = None if last_heard is None else max(0.0, now - last_heard)
    expected, source = intervals.expected(node)
    if silent is None:
        alarms.append("never_heard")
    elif silent > expected:
        alarms.append("silent")
    unconfirmed = outbox.unconfirmed(node, ("life-safety",), now - confirm_within)
    if unconfirmed:
        alarms.append("unconfirmed")
    return {
        "last_heard": last_heard, "silent_for": silent, "last_link": last_link,
        "last_link_kind": link_label(hub, last_link), "paths": paths, "alarms": alarms,
        "expected_interval": expected, "interval_source": source,
        "unconfirmed": [{"id": s.id, "kind": s.kind, "at": s.at} for s in unconfirmed],
    }  # fmt: skip


def message_row(hub: Hub, item: dict[str, Any], read: set[str], outbox: Outbox) -> dict[str, Any]:
    """A received message as the messages view shows it: whether it was confirmed read, and for a read
    receipt what it is about."""
    view = dict(item, read=item["id"] in read)
    body = item["body"]
    if item["kind"] == "read_receipt" and isinstance(body, dict):
        original = outbox.get(str(body.get("message")))
        view["about"] = None if original is None else {
            "id": original.id, "kind": original.kind, "summary": original.summary, "at": original.at,
            "to_name": name_of(hub, original.to),
        }  # fmt: skip
    return view


async def sent_rows(hub: Hub, outbox: Outbox, limit: int) -> list[dict[str, Any]]:
    """The newest messages sent from this hub, each with its recipient's delivery state."""
    out = []
    for sent in outbox.newest(limit):
        state = await recipient_state(hub, sent, outbox.receipts.get(sent.id))
        to_name = "*" if sent.to == BROADCAST.hex() else name_of(hub, sent.to)
        out.append({**asdict(sent), "to_name": to_name, **state})
    return out
