"""The staff status board: one row per institution, worst first, then the longest silent first.

Pure logic: the console feeds it what it hears (any frame from an institution, and its latest STATUS
with the frame's priority) and the roll-call state; ``rows(now)`` returns JSON-ready rows. The rank
puts a life-safety call or an escalated roll-call above a request for help, above silence, above "all
OK"; within a rank the institution heard from longest ago comes first, because silence is the risk.
The browser renders "sidst hørt for 3 t siden via SINE" from ``last_heard`` and ``last_link_kind``.
A SINE status SDS (two bytes from the radio's status plan) counts when it is newer than the last
STATUS message: "ok" is OK, any other value asks for help.

Every change marks the institution; ``changed()`` hands the marked ones over (as JSON-ready documents)
for the console to save, and ``load`` puts saved documents back after a restart, so the board shows
each institution's last status and last-heard time however long ago it was heard.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

FUEL_WARNING_HOURS = 12
OK_STATUS = "ok"  # the status plan entry that means all is well


class Concern(enum.IntEnum):
    """Lower sorts first."""

    CRITICAL = 0
    HELP = 1
    UNKNOWN = 2
    OK = 3


@dataclass(slots=True)
class Institution:
    node: str
    name: str
    last_heard: float | None = None
    last_link: str | None = None
    last_link_kind: str | None = None
    status: dict[str, Any] | None = None
    status_priority: str | None = None
    status_at: float | None = None
    rollcall: str | None = None  # state of the newest roll-call for this institution
    radio_status: str | None = None  # name in the SINE status plan; None for a value outside it
    radio_value: int | None = None
    radio_at: float | None = None


def concern(item: Institution) -> Concern:
    """How worried the staff should be, from the latest status and the roll-call state."""
    status = item.status or {}
    radio_news = item.radio_at is not None and (item.status_at is None or item.radio_at >= item.status_at)
    if item.rollcall == "escalated" or item.status_priority == "life-safety":
        return Concern.CRITICAL
    if status.get("facility") in ("Evacuating", "Closed"):
        return Concern.CRITICAL
    if item.rollcall == "overdue":
        return Concern.HELP
    if radio_news:
        # a two-byte radio status is all the news there is: anything but the plan's "ok" asks for help
        return Concern.OK if item.radio_status == OK_STATUS else Concern.HELP
    if status and (
        status.get("facility") == "Compromised"
        or status.get("needs")
        or "Insufficient" in (status.get("staffing"), status.get("operations"))
        or (
            status.get("power") in ("generator", "battery")
            and status.get("fuel_hours", 99) < FUEL_WARNING_HOURS
        )
        or status.get("residents", {}).get("needing_help", 0) > 0
    ):
        return Concern.HELP
    if not status:
        return Concern.UNKNOWN
    return Concern.OK


_SAVED = tuple(f.name for f in fields(Institution))


class StatusBoard:
    """Institutions known to this hub, updated from inbound traffic."""

    def __init__(self) -> None:
        self._items: dict[str, Institution] = {}
        self._changed: set[str] = set()
        self.radio_unsaved = False
        """A SINE status changed a row since the last ``changed``: the store does not hold it, so a restart
        could not fold it in again (the console saves such a row sooner)."""

    def know(self, node: str, name: str) -> Institution:
        item = self._items.get(node)
        if item is None:
            item = self._items[node] = Institution(node, name)
        return item

    def _touch(self, node: str, name: str) -> Institution:
        self._changed.add(node)
        return self.know(node, name)

    def heard(self, node: str, name: str, at: float, link: str | None, link_kind: str | None) -> None:
        item = self.know(node, name)
        if item.last_heard is None or at >= item.last_heard:
            self._touch(node, name)
            item.last_heard, item.last_link, item.last_link_kind = at, link, link_kind

    def status(self, node: str, name: str, body: Mapping[str, Any], priority: str, at: float) -> None:
        item = self.know(node, name)
        if item.status_at is None or at >= item.status_at:
            self._touch(node, name)
            item.status, item.status_priority, item.status_at = dict(body), priority, at

    def radio(self, node: str, name: str, status: str | None, value: int, at: float) -> None:
        """A SINE status SDS: unsigned, vouched for by the radio network, newest wins."""
        item = self.know(node, name)
        if item.radio_at is None or at >= item.radio_at:
            self._touch(node, name)
            self.radio_unsaved = True
            item.radio_status, item.radio_value, item.radio_at = status, value, at

    def rollcall(self, node: str, name: str, state: str) -> None:
        self._touch(node, name).rollcall = state

    def statuses(self) -> dict[str, dict[str, Any]]:
        """The newest status of each institution that sent one."""
        return {node: item.status for node, item in self._items.items() if item.status is not None}

    def redact(self, redacted: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
        """Replace each status with ``redacted(status)``; returns how many changed (marked to be saved)."""
        changed = 0
        for node, status in self.statuses().items():
            if (new := redacted(status)) != status:
                self._touch(node, self._items[node].name).status = new
                changed += 1
        return changed

    def changed(self) -> dict[str, dict[str, Any]]:
        """The institutions changed since the last call, as documents for ``load``; clears the marks."""
        out = {node: asdict(self._items[node]) for node in self._changed}
        self._changed.clear()
        self.radio_unsaved = False
        return out

    def mark_changed(self, nodes: Iterable[str]) -> None:
        """Mark again what ``changed`` handed over but could not be saved."""
        before = len(self._changed)
        self._changed.update(node for node in nodes if node in self._items)
        self.radio_unsaved |= len(self._changed) > before  # perhaps a radio row: tried again soon

    def load(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        """Put saved institutions back (unknown fields are ignored, so old documents still load)."""
        for node, document in documents.items():
            known = {key: document[key] for key in _SAVED if key in document}
            self._items[node] = Institution(
                **{**known, "node": node, "name": str(document.get("name", node))}
            )

    def rows(self, now: float) -> list[dict[str, Any]]:
        def key(item: Institution) -> tuple[int, float, str]:
            silence = now - item.last_heard if item.last_heard is not None else float("inf")
            return (concern(item), -silence, item.name)

        return [_row(i, now) for i in sorted(self._items.values(), key=key)]

    def row(self, node: str, now: float) -> dict[str, Any] | None:
        """One institution's row as ``rows`` has it (None if the board does not know it)."""
        item = self._items.get(node)
        return None if item is None else _row(item, now)


def _row(i: Institution, now: float) -> dict[str, Any]:
    return {
        "node": i.node,
        "name": i.name,
        "concern": concern(i).name.lower(),
        "last_heard": i.last_heard,
        "silent_for": None if i.last_heard is None else max(0.0, now - i.last_heard),
        "last_link": i.last_link,
        "last_link_kind": i.last_link_kind,
        "status": i.status,
        "status_priority": i.status_priority,
        "status_at": i.status_at,
        "rollcall": i.rollcall,
        "radio": None
        if i.radio_at is None
        else {"status": i.radio_status, "value": i.radio_value, "at": i.radio_at},
    }
