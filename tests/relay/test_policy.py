"""Policy: which links may carry a frame of a given priority, and in which order they are tried."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from hub.core.frame import Priority
from hub.core.transport import Capabilities, Cost
from hub.relay.health import LinkState
from hub.relay.policy import Candidate, Policy

LINKS: Mapping[str, tuple[str, Capabilities]] = {
    "net": ("internet", Capabilities(mtu=65_000, link_ack=False)),
    "broker": ("mqtt", Capabilities(mtu=65_000, link_ack=False)),
    "mesh": ("lora", Capabilities(mtu=200, link_ack=True, cost=Cost.METERED)),
    "tetra": ("sine", Capabilities(mtu=120, link_ack=True, cost=Cost.METERED)),
    "iridium": ("satellite", Capabilities(mtu=300, link_ack=True, cost=Cost.PAID)),
}
EVERY = [Candidate(name, f"addr-{name}") for name in LINKS]


def rank(
    policy: Policy,
    priority: Priority,
    *,
    size: int = 100,
    states: Mapping[str, LinkState] | None = None,
    blocked: frozenset[str] = frozenset(),
    options: list[Candidate] = EVERY,
    links: Mapping[str, tuple[str, Capabilities]] = LINKS,
) -> list[str]:
    ranked = policy.rank(
        options,
        priority=priority,
        size=size,
        capabilities=lambda link: links[link][1],
        kind_of=lambda link: links[link][0],
        state=lambda link: (states or {}).get(link, LinkState.UP),
        blocked=lambda link: link in blocked,
    )
    return [c.link for c in ranked]


def test_default_order_and_cost_classes_by_priority() -> None:
    policy = Policy()
    assert rank(policy, Priority.ROUTINE) == ["net", "broker"]  # nothing metered or paid
    assert rank(policy, Priority.NORMAL) == ["net", "broker", "mesh", "tetra"]
    assert rank(policy, Priority.URGENT) == ["net", "broker", "mesh", "tetra", "iridium"]
    assert rank(policy, Priority.LIFE_SAFETY) == ["net", "broker", "mesh", "tetra", "iridium"]


def test_down_and_budget_blocked_links_are_left_out() -> None:
    states = {"net": LinkState.DOWN}
    assert rank(Policy(), Priority.URGENT, states=states, blocked=frozenset({"mesh"})) == [
        "broker",
        "tetra",
        "iridium",
    ]


def test_healthy_links_come_before_degraded_ones_whatever_the_order() -> None:
    states = {"net": LinkState.DEGRADED, "broker": LinkState.DEGRADED}
    assert rank(Policy(), Priority.URGENT, states=states) == ["mesh", "tetra", "iridium", "net", "broker"]


def test_the_configured_order_names_links_or_kinds_and_unnamed_links_go_last() -> None:
    policy = Policy(order=("iridium", "lora"))  # a link by name, a link by kind
    assert rank(policy, Priority.URGENT) == ["iridium", "mesh", "net", "broker", "tetra"]


def test_fewer_fragments_break_a_tie() -> None:
    links = {
        "small": ("memory", Capabilities(mtu=100, link_ack=False)),
        "large": ("memory", Capabilities(mtu=1000, link_ack=False)),
    }
    options = [Candidate("small", "a"), Candidate("large", "a")]
    assert rank(Policy(order=()), Priority.NORMAL, size=900, options=options, links=links) == [
        "large",
        "small",
    ]
    # one fragment on both: the tie stays in the order given
    assert rank(Policy(order=()), Priority.NORMAL, size=90, options=options, links=links) == [
        "small",
        "large",
    ]


def test_thresholds_are_configurable() -> None:
    generous = Policy(metered_min=Priority.ROUTINE, paid_min=Priority.NORMAL)
    assert "iridium" in rank(generous, Priority.NORMAL)
    assert "mesh" in rank(generous, Priority.ROUTINE)
    strict = Policy(paid_min=Priority.LIFE_SAFETY)
    assert "iridium" not in rank(strict, Priority.URGENT)


@pytest.mark.parametrize(
    ("priority", "fans_out"),
    [
        (Priority.ROUTINE, False),
        (Priority.NORMAL, False),
        (Priority.URGENT, False),
        (Priority.LIFE_SAFETY, True),
    ],
)
def test_only_life_safety_fans_out_by_default(priority: Priority, fans_out: bool) -> None:
    assert Policy().fan_out(priority) is fans_out
