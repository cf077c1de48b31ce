"""Which link carries which frame to which next hop.

For each attempt the router asks ``Policy.rank`` for the usable (link, address) pairs to a next hop,
best first. A link is usable when it is not down, not budget-blocked, and its cost class is allowed
for the frame's priority (by default routine traffic stays off metered radio links and only urgent and
life-safety traffic may spend satellite credit). Among usable links, healthy ones come before degraded
ones, then the configured preference order (internet -> MQTT -> LoRa -> SINE -> satellite by default),
then fewer fragments. Life-safety frames go out on every usable link at once (``fan_out``); the
receiver deduplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hub.core.frame import Priority
from hub.core.transport import Capabilities, Cost
from hub.relay.health import LinkState

DEFAULT_ORDER = ("internet", "mqtt", "lora", "sine", "satellite", "memory")


@dataclass(frozen=True, slots=True)
class Candidate:
    link: str
    address: str


@dataclass(frozen=True, slots=True)
class Policy:
    order: Sequence[str] = DEFAULT_ORDER
    """Link names or kinds, most preferred first."""
    metered_min: Priority = Priority.NORMAL
    paid_min: Priority = Priority.URGENT
    fan_out_min: Priority = Priority.LIFE_SAFETY

    def allowed(self, caps: Capabilities, priority: Priority) -> bool:
        match caps.cost:
            case Cost.PAID:
                return priority >= self.paid_min
            case Cost.METERED:
                return priority >= self.metered_min
            case _:
                return True

    def preference(self, link: str, kind: str) -> int:
        for index, name in enumerate(self.order):
            if name in (link, kind):
                return index
        return len(self.order)

    def rank(
        self,
        options: Sequence[Candidate],
        *,
        priority: Priority,
        size: int,
        capabilities: Callable[[str], Capabilities],
        kind_of: Callable[[str], str],
        state: Callable[[str], LinkState],
        blocked: Callable[[str], bool],
    ) -> list[Candidate]:
        scored = []
        for option in options:
            caps = capabilities(option.link)
            link_state = state(option.link)
            if link_state is LinkState.DOWN or blocked(option.link) or not self.allowed(caps, priority):
                continue
            fragments = -(-size // caps.mtu)
            key = (
                link_state is not LinkState.UP,
                self.preference(option.link, kind_of(option.link)),
                fragments,
            )
            scored.append((key, option))
        scored.sort(key=lambda pair: pair[0])
        return [option for _, option in scored]

    def fan_out(self, priority: Priority) -> bool:
        return priority >= self.fan_out_min
