"""What the telecom-collapse drill found in the hub core, kept as regression tests once fixed.

In-process hubs on in-memory links keep these fast; the drill shows the same with real processes.
"""

from __future__ import annotations

from pathlib import Path

from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.relay.policy import Policy
from hub.relay.settings import LinkConfig, PeerConfig
from tests.inproc import eventually, hub_config, medium_name, running
from transports.memory import MemoryMedium

STAFF = Identity.generate("Aarhus krisestab", "staff")
RELAY = Identity.generate("Relay Nord", "relay")
HOME = Identity.generate("Bofællesskabet Lyngtoften", "care-home")


def memory(link: str, medium: str, address: str) -> LinkConfig:
    return LinkConfig(link, "memory", {"kind": "memory", "medium": medium, "address": address})


async def test_the_delivery_record_names_the_next_hop_that_carried_the_frame(tmp_path: Path) -> None:
    # The staff hub reaches the relay and the home on `near`; only the relay also reaches it on `far`.
    near, far = medium_name(), medium_name()
    policy = Policy(order=("near", "far"))
    staff = hub_config(
        tmp_path / "staff", "staff", near, links=(memory("near", near, "staff"),), policy=policy,
        peers=(PeerConfig(RELAY.node_id, "relay", {"near": "relay"}),
               PeerConfig(HOME.node_id, "home", {"near": "home"})),
        default_route=(RELAY.node_id,),
    )  # fmt: skip
    relay = hub_config(
        tmp_path / "relay", "relay", near, links=(memory("near", near, "relay"), memory("far", far, "relay")),
        policy=policy,
        peers=(PeerConfig(STAFF.node_id, "staff", {"near": "staff"}),
               PeerConfig(HOME.node_id, "home", {"near": "home", "far": "home"})),
    )  # fmt: skip
    home = hub_config(
        tmp_path / "home", "home", near, links=(memory("near", near, "home"), memory("far", far, "home")),
        policy=policy,
        peers=(PeerConfig(STAFF.node_id, "staff", {"near": "staff"}),
               PeerConfig(RELAY.node_id, "relay", {"near": "relay", "far": "relay"})),
        default_route=(RELAY.node_id,),
    )  # fmt: skip
    async with running(staff, STAFF) as s, running(relay, RELAY) as r, running(home, HOME) as h:
        for hub, others in ((s, (RELAY, HOME)), (r, (STAFF, HOME)), (h, (STAFF, RELAY))):
            for other in others:
                hub.roster.add(other.card)
        MemoryMedium.named(near).unplug("home")  # the home's near radio is gone: only the relay reaches it

        message_id = await s.submit(Kind.TEXT, HOME.node_id, b"Sitrep 4: kun via relay")
        await eventually(lambda: h.inbound.accepted >= 1, timeout=15)
        await eventually(lambda: s.router.open_count() == 0, timeout=15)
        assert await r.store.message(message_id) is not None, "the relay carried the frame"
        await s.store.flush()
        [row] = await s.store.deliveries(message_id)
        assert row.state == "hop-acked"
        assert row.hop == HOME.node_id, "the delivery stays keyed by its primary next hop"
        assert row.next_hop == RELAY.node_id, f"the record names {row.next_hop!r} as carrier, not the relay"
