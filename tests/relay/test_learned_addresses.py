"""When a peer's learned radio node may move (``hub.relay.learned_addresses``), through ``LinkSet.learn``
with a real health board: a replay teaches nothing, a replaced radio is found, and a confirmed radio node
that works is not given up for a frame played back from another."""

from __future__ import annotations

import pytest

from hub.core.clock import ManualClock
from hub.relay.health import HealthBoard, LinkState
from hub.relay.learned_addresses import MAX_LEARNED_PEERS, Learning
from hub.relay.link_reasons import Reason, Why
from hub.relay.links import LinkSet
from hub.relay.settings import PeerConfig

HOME = bytes.fromhex("c3" * 8)
OWN, OTHER, THIRD = "!000000c3", "!000000d4", "!000000e5"
T = 1_800_000_000


@pytest.fixture
def health() -> HealthBoard:
    return HealthBoard(down_after=2)


@pytest.fixture
def links(health: HealthBoard) -> LinkSet:
    return LinkSet({}, {}, [], health, ManualClock())


def _learn(links: LinkSet, address: str, stamped: int, *, vouched: bool = False) -> Learning | None:
    return links.learn(HOME, "lora", address, "Plejecenter Solbakken", stamped=stamped, vouched=vouched)


def _address(links: LinkSet) -> str | None:
    return links.peers[HOME].address("lora")


def _fail(health: HealthBoard) -> None:
    for _ in range(health.down_after):
        health.failure("lora", HOME.hex(), 0.0, Reason(Why.SEND_FAILED, "no ACK"))
    assert health.state("lora", HOME.hex()) is LinkState.DOWN


def test_the_same_frame_played_from_another_radio_teaches_nothing(links: LinkSet) -> None:
    assert _learn(links, OWN, T) is Learning.NEW
    assert _learn(links, OTHER, T) is Learning.STALE
    assert _learn(links, OTHER, T - 60) is Learning.STALE
    assert _address(links) == OWN
    assert links.peer_at("lora", OWN) == HOME and links.peer_at("lora", OTHER) is None
    assert links.learning["new"] == 1 and links.learning["stale"] == 2


def test_an_unconfirmed_radio_moves_with_a_later_frame_from_another(links: LinkSet) -> None:
    _learn(links, OTHER, T)  # its first frame reached us replayed from elsewhere, say
    assert _learn(links, OWN, T + 5) is Learning.MOVED
    assert _address(links) == OWN
    assert links.peer_at("lora", OWN) == HOME and links.peer_at("lora", OTHER) is None


def test_a_confirmed_working_radio_is_kept_and_its_candidate_takes_over_when_it_fails(
    links: LinkSet, health: HealthBoard
) -> None:
    _learn(links, OWN, T)
    assert _learn(links, OWN, T + 1) is Learning.CONFIRMED
    assert _learn(links, OTHER, T + 2) is Learning.HELD
    assert _learn(links, THIRD, T + 3) is Learning.HELD  # the latest other radio is the candidate
    assert _address(links) == OWN
    _fail(health)  # the confirmed radio stops answering: replaced, or gone
    assert _address(links) == THIRD
    assert links.peer_at("lora", THIRD) == HOME and links.peer_at("lora", OWN) is None
    assert links.learning["moved"] == 1 and links.learning["held"] == 2


def test_the_confirmed_radio_speaking_again_drops_the_candidate(links: LinkSet, health: HealthBoard) -> None:
    _learn(links, OWN, T)
    _learn(links, OWN, T + 1)
    _learn(links, OTHER, T + 2)
    _learn(links, OWN, T + 3)  # the peer is still behind its own radio, later than the replay
    _fail(health)
    assert _address(links) == OWN


def test_a_confirmed_radio_that_is_down_moves_at_once(links: LinkSet, health: HealthBoard) -> None:
    _learn(links, OWN, T)
    _learn(links, OWN, T + 1)
    _fail(health)
    assert _learn(links, OTHER, T + 2) is Learning.MOVED
    assert _address(links) == OTHER


def test_an_exercise_that_pretends_the_radio_is_down_moves_nothing(
    links: LinkSet, health: HealthBoard
) -> None:
    _learn(links, OWN, T)
    _learn(links, OWN, T + 1)
    _learn(links, OTHER, T + 2)
    health.simulate_down("lora", HOME.hex(), Reason(Why.SIMULATED, params={"exercise": "Øvelse Nord"}), 0.0)
    assert _address(links) == OWN
    assert _learn(links, THIRD, T + 3) is Learning.HELD


def test_an_address_named_by_a_signed_card_moves_at_once(links: LinkSet) -> None:
    links.learn(HOME, "internet", "http://a:1", "Solbakken", stamped=T, vouched=True)
    links.learn(HOME, "internet", "http://a:1", "Solbakken", stamped=T + 1, vouched=True)
    links.learn(HOME, "internet", "http://b:1", "Solbakken", stamped=T + 2, vouched=True)
    assert links.peers[HOME].address("internet") == "http://b:1"


def test_a_configured_address_is_never_moved(health: HealthBoard) -> None:
    links = LinkSet({}, {}, [PeerConfig(HOME, "Solbakken", {"lora": OWN})], health, ManualClock())
    assert _learn(links, OTHER, T) is None
    assert _address(links) == OWN


def test_the_learned_table_is_bounded(links: LinkSet) -> None:
    for n in range(MAX_LEARNED_PEERS):
        links.learn(n.to_bytes(8, "big"), "lora", f"!{n:08x}", f"hub {n}", stamped=T)
    assert _learn(links, OWN, T) is Learning.FULL
    assert HOME not in links.peers and links.learning["full"] == 1
