"""Which (next hop, link) pairs one attempt of a delivery goes out on.

The route's hops are tried in order (the primary first, then its alternatives); for each, the policy
ranks the usable links, and pairs already tried in this round are skipped. An ordinary frame takes the
single best pair; a life-safety frame goes out on every usable link to the first hop that has any (the
receiver deduplicates). An empty plan means nothing is usable now: the router backs off or parks it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from hub.core.transport import Cost
from hub.relay.delivery import Delivery
from hub.relay.health import LinkState
from hub.relay.links import LinkSet
from hub.relay.policy import Candidate, Policy

log = logging.getLogger("beredt.router")


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery: Delivery
    hop: bytes
    candidate: Candidate


def tried_key(link: str, hop: bytes) -> str:
    """How a delivery remembers a (link, next hop) pair it has tried this round."""
    return f"{link}@{hop.hex()}"


def plan(delivery: Delivery, policy: Policy, links: LinkSet, blocked: Callable[[str], bool]) -> list[Attempt]:
    """The attempts to make now, best first; ``blocked`` says which links are out of budget."""
    fan_out = policy.fan_out(delivery.policy_priority)
    attempts: list[Attempt] = []
    for hop in delivery.candidates:
        ranked = policy.rank(
            links.options(hop),
            priority=delivery.policy_priority,
            size=len(delivery.wire),
            capabilities=links.capabilities,
            kind_of=links.kind_of,
            state=lambda link, hop=hop: links.state(link, hop),  # type: ignore[misc]
            blocked=blocked,
        )
        if delivery.preferred is not None:  # stable sort: the preferred link first, the rest as ranked
            ranked.sort(key=lambda c: c.link != delivery.preferred)
        for candidate in ranked:
            if tried_key(candidate.link, hop) in delivery.tried:
                continue
            attempts.append(Attempt(delivery, hop, candidate))
            if not fan_out:
                return attempts
        if attempts:
            return attempts
    return attempts


def note_paid_refusal(delivery: Delivery, policy: Policy, links: LinkSet) -> None:
    """A drill nothing can carry now, though a paid link that is up would take real traffic of its
    priority: its exercise does not allow paid links, so the refusal goes on the exercise's account
    (``Tally.refused``, once per delivery) for the after-action report to show."""
    if not delivery.drill or delivery.paid or delivery.refused_paid:
        return
    for hop in delivery.candidates:
        for option in links.options(hop):
            caps = links.capabilities(option.link)
            if (
                caps.cost is Cost.PAID
                and policy.allowed(caps, delivery.priority)
                and links.state(option.link, hop) is not LinkState.DOWN
            ):
                tally = links.account(option.link, delivery.wire)
                if tally is not None:
                    tally.refused += 1
                delivery.refused_paid = True
                log.info(
                    "exercise frame %s kept off the paid link %s", delivery.message_id.hex(), option.link
                )
                return
