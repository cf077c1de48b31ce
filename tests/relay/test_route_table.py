"""Learned routes: the path-vector table alone, and many tables over memory links on a manual clock."""

from __future__ import annotations

import cbor2
import pytest

from drill.route_mesh import FREE_PACE, RouteMesh
from hub.core.errors import ProtocolError
from hub.core.kinds.routes import MAX_PATH, RouteAnnouncement, RouteEntry, decode, encode, paginate
from hub.relay.route_table import Pace, RouteTable


def nid(n: int) -> bytes:
    return n.to_bytes(8, "big")


A, B, C, D, E = (nid(n) for n in range(1, 6))


def free_pace() -> Pace:
    return Pace(*FREE_PACE)


# ---- the payload --------------------------------------------------------------------------------------


def test_announcement_round_trips() -> None:
    sent = RouteAnnouncement(30, (RouteEntry(3, (B, C)), RouteEntry(1, (D,))), (E,), default=True)
    assert decode(encode(sent)) == sent
    with_roster = RouteAnnouncement(30, roster=0)  # a hub that holds no roster says so
    assert decode(encode(with_roster)).roster == 0
    assert decode(encode(RouteAnnouncement(30))).roster is None  # one that does not say
    alone = RouteAnnouncement(43200, roster=2, alone=True)  # a hub that knows no neighbour there yet
    assert decode(encode(alone)) == alone and not decode(encode(RouteAnnouncement(30))).alone


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"\xa0", "interval"),
        (encode(RouteAnnouncement(30))[:-1], "not CBOR"),
        (cbor2.dumps({1: 30, 2: [[1, b"\x01"]]}), "not a list of 8-byte"),
        (cbor2.dumps({1: 30, 2: [[-1, A]]}), "cost"),
        (cbor2.dumps({1: 30, 4: 1}), "default"),
        (cbor2.dumps({1: 30, 5: -1}), "roster version"),
        (cbor2.dumps({1: 30, 6: 1}), "alone"),
    ],
)
def test_bad_payloads_are_refused_with_a_reason(body: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=why):
        decode(body)


def test_a_path_holding_a_node_twice_or_too_long_is_refused() -> None:
    twice = encode(RouteAnnouncement(30, (RouteEntry(2, (B, C, B)),)))
    with pytest.raises(ProtocolError, match="twice"):
        decode(twice)
    long = encode(RouteAnnouncement(30, (RouteEntry(2, tuple(nid(100 + i) for i in range(MAX_PATH + 1))),)))
    with pytest.raises(ProtocolError, match="hops"):
        decode(long)


def test_a_large_table_is_cut_into_self_contained_pages() -> None:
    entries = [RouteEntry(i, (nid(1000 + i), nid(2000 + i))) for i in range(400)]
    pages = paginate(30, entries, [nid(9)], budget=4000)
    assert len(pages) > 1
    assert all(len(encode(page)) <= 4000 for page in pages)
    assert [e for page in pages for e in decode(encode(page)).entries] == entries
    assert [w for page in pages for w in page.withdrawn] == [nid(9)]


# ---- one table ----------------------------------------------------------------------------------------


def test_a_route_keeps_when_it_was_told_until_told_again_even_when_its_hop_changes_cost() -> None:
    table = RouteTable(A)
    table.neighbour_up(B, 1, free_pace())
    table.hear(B, RouteAnnouncement(30, (RouteEntry(1, (C,)),)), now=10)
    assert [(r.path, r.cost, r.heard) for r in table.routes(C)] == [((B, C), 2, 10)]
    table.neighbour_up(B, 2, free_pace())  # now reached over a dearer link: what it told still holds
    assert [(r.cost, r.heard) for r in table.routes(C)] == [(3, 10)]
    table.hear(B, RouteAnnouncement(30, (RouteEntry(1, (C,)),)), now=40)
    assert [(r.cost, r.heard) for r in table.routes(C)] == [(3, 40)]
    assert table.routes(D) == [] and table.defaults() == []
    table.neighbour_up(D, 10, free_pace())
    table.neighbour_up(E, 5, free_pace())
    for neighbour in (D, E):
        table.hear(neighbour, RouteAnnouncement(30, default=True), now=41)
    assert table.defaults() == [E, D]  # the cheaper first


def test_a_path_through_ourselves_is_refused_and_drops_the_route_through_that_neighbour() -> None:
    table = RouteTable(A)
    table.neighbour_up(B, 1, free_pace())
    table.hear(B, RouteAnnouncement(30, (RouteEntry(1, (C,)),)), now=0)
    assert table.next_hops(C) == [B]
    refused = table.hear(B, RouteAnnouncement(30, (RouteEntry(2, (A, C)),)), now=1)
    assert refused == 1
    assert table.next_hops(C) == []
    assert table.next_hops(B) == [B]


def test_unknown_destinations_are_not_learned() -> None:
    table = RouteTable(A, known=lambda n: n != D)
    table.neighbour_up(B, 1, free_pace())
    assert table.hear(B, RouteAnnouncement(30, (RouteEntry(1, (C,)), RouteEntry(1, (D,)))), now=0) == 1
    assert table.destinations() == [B, C] or set(table.destinations()) == {B, C}


def test_cheapest_then_shortest_route_first_and_withdrawal_falls_back() -> None:
    table = RouteTable(A)
    table.neighbour_up(B, 1, free_pace())
    table.neighbour_up(C, 10, free_pace())
    table.hear(B, RouteAnnouncement(30, (RouteEntry(3, (E, D)),)), now=0)
    table.hear(C, RouteAnnouncement(30, (RouteEntry(1, (D,)),)), now=0)
    assert table.next_hops(D) == [B, C]  # 1 + 3 < 10 + 1
    table.hear(B, RouteAnnouncement(30, withdrawn=(D,)), now=1)
    assert table.next_hops(D) == [C]


def test_entries_expire_unless_repeated() -> None:
    table = RouteTable(A)
    table.neighbour_up(B, 1, free_pace())
    table.hear(B, RouteAnnouncement(30, (RouteEntry(1, (C,)),)), now=0)
    table.expire(74)
    assert table.next_hops(C) == [B]
    table.expire(75)
    assert table.next_hops(C) == []
    assert table.next_hops(B) == []  # the neighbour itself fell silent too


def test_split_horizon_and_poisoned_reverse() -> None:
    table = RouteTable(A)
    table.neighbour_up(B, 1, free_pace())
    table.neighbour_up(C, 1, free_pace())
    table.outgoing(0)
    table.hear(B, RouteAnnouncement(30, (RouteEntry(1, (D,)),)), now=0)
    sent = table.outgoing(2)
    to_b = [e.destination for page in sent[B] for e in page.entries]
    to_c = [e.path for page in sent[C] for e in page.entries]
    assert D not in to_b  # never offered back to the neighbour it goes through
    assert [w for page in sent[B] for w in page.withdrawn] == [D]  # and withdrawn from it at once
    assert (B, D) in to_c


def test_radio_neighbours_get_a_default_and_only_radio_routes() -> None:
    table = RouteTable(A)
    table.neighbour_up(B, 1, free_pace())
    table.neighbour_up(C, 10, Pace(1800, 300, radio=True))
    table.neighbour_up(E, 10, Pace(1800, 300, radio=True))
    table.hear(B, RouteAnnouncement(30, (RouteEntry(1, (D,)), RouteEntry(12, (nid(7),)))), now=0)
    table.hear(E, RouteAnnouncement(1800), now=0)
    sent = table.outgoing(0)[C]
    assert sent[0].default
    # only what another radio neighbour gives access to; the rest is covered by the default
    assert [e.path for page in sent for e in page.entries] == [(E,)]

    stub = RouteTable(C)
    stub.neighbour_up(A, 10, Pace(1800, 300, radio=True))
    for page in sent:
        stub.hear(A, page, now=0)
    assert stub.next_hops(D) == [A]  # through the default
    assert not stub.offers_default  # one default deep: a stub never passes one on


def test_told_again_the_whole_channel_gets_the_full_table_once_out_of_pace() -> None:
    table = RouteTable(A)
    table.neighbour_up(B, 1, free_pace())
    table.neighbour_up(C, 10, Pace(12 * 3600, 3600, radio=True), channel="lora")
    table.neighbour_up(E, 10, Pace(12 * 3600, 3600, radio=True), channel="lora")
    table.hear(B, RouteAnnouncement(30, (RouteEntry(1, (D,)),)), now=0)
    assert set(table.outgoing(0)) == {B, "lora"}
    assert "lora" not in table.outgoing(60)  # the radio pace: nothing for 12 h
    table.tell_again(60, C)  # C has just caught up: one broadcast everyone on the channel hears
    again = table.outgoing(61)
    assert set(again) == {"lora"} and again["lora"][0].default
    assert not table.outgoing(62), "once, then the radio pace again"


# ---- many tables --------------------------------------------------------------------------------------


def ring_with_stubs(mesh: RouteMesh, ring: int, stubs: int) -> list[bytes]:
    nodes = [nid(i) for i in range(ring + stubs)]
    for node in nodes:
        mesh.add_node(node)
    for i in range(ring):
        mesh.link(nodes[i], nodes[(i + 1) % ring], "internet")
    for i in range(stubs):
        mesh.link(nodes[ring + i], nodes[i % ring], "internet")
    return nodes


def test_a_ring_converges_and_routes_around_a_relay_lost_silently_without_loops() -> None:
    mesh = RouteMesh()
    nodes = ring_with_stubs(mesh, 6, 6)
    mesh.link(nodes[6 + 2], nodes[3], "internet")  # the stub on relay 2 also reaches relay 3
    mesh.run(15)
    assert mesh.unreached(nodes) == []
    mesh.kill(nodes[2])
    lost_at = mesh.now
    while mesh.unreached(nodes):
        mesh.run(1)
        assert mesh.loops(nodes) == []  # at every step, not just at the end
        assert mesh.now - lost_at <= 3 * FREE_PACE[0], mesh.unreached(nodes)[:3]
    path, arrived = mesh.forwarding(nodes[0], nodes[8])
    assert arrived and nodes[2] not in path


def test_a_cut_line_does_not_count_to_infinity() -> None:
    mesh = RouteMesh()
    for node in (A, B, C):
        mesh.add_node(node)
    mesh.link(A, B, "internet")
    mesh.link(B, C, "internet")
    mesh.run(5)
    assert mesh.forwarding(A, C) == ([A, B, C], True)
    mesh.unlink(B, C)
    mesh.run(3)
    assert mesh.tables[A].next_hops(C) == []
    assert mesh.tables[B].next_hops(C) == []
    sent_before = mesh.sent["internet"].frames
    mesh.run(60)
    assert mesh.tables[A].next_hops(C) == []
    assert mesh.sent["internet"].frames - sent_before <= 2 * 2 * 2 + 2  # full refreshes only: no churn


def test_a_moved_care_home_is_relearned_within_seconds() -> None:
    mesh = RouteMesh()
    nodes = ring_with_stubs(mesh, 5, 5)
    home = nodes[5]
    mesh.run(15)
    assert mesh.forwarding(nodes[2], home)[0][-2] == nodes[0]
    mesh.unlink(home, nodes[0])
    mesh.link(home, nodes[3], "internet")
    mesh.run(10)
    assert mesh.unreached(nodes) == []
    assert all(mesh.forwarding(n, home)[0][-2] == nodes[3] for n in nodes if n not in (home, nodes[3]))


def test_a_lora_only_care_home_reaches_everyone_through_a_default() -> None:
    mesh = RouteMesh()
    nodes = ring_with_stubs(mesh, 4, 0)
    home = nid(99)
    mesh.add_node(home)
    mesh.run(15)
    mesh.link(home, nodes[1], "lora")
    mesh.run(15)
    assert mesh.unreached([*nodes, home]) == []
    assert mesh.sent["lora"].frames == 2  # one announcement each way, until the next interval
    mesh.run(3600)
    assert mesh.sent_by[home]["lora"].frames <= 3
    assert mesh.sent_by[nodes[1]]["lora"].frames <= 3


def test_radio_neighbours_on_a_channel_share_one_broadcast_and_split_horizon_is_theirs() -> None:
    table = RouteTable(A)
    table.neighbour_up(B, 1, free_pace())
    for radio in (C, D, E):
        table.neighbour_up(radio, 10, Pace(1800, 300, radio=True), channel="lora")
    table.hear(E, RouteAnnouncement(1800, (RouteEntry(10, (nid(7),)),)), now=0, shared=True)
    due = table.outgoing(0)
    assert set(due) == {B, "lora"}  # one announcement for C, D and E together, none to each
    sent = due["lora"]
    assert sent[0].default
    assert (E, nid(7)) in [e.path for page in sent for e in page.entries]

    # E hears its own route to 7 offered back: refused without counting it, and it drops any route to
    # 7 through A (the poisoned reverse a unicast withdrawal would have told it)
    at_e = RouteTable(E)
    at_e.neighbour_up(A, 10, Pace(1800, 300, radio=True), channel="lora")
    at_e.hear(A, RouteAnnouncement(1800, (RouteEntry(10, (nid(7),)),)), now=0, shared=True)
    assert at_e.next_hops(nid(7)) == [A]
    assert sum(at_e.hear(A, page, now=1, shared=True) for page in sent) == 0
    assert at_e.best(nid(7)) is None

    # a fourth radio neighbour waits for the channel's gap, then everyone hears the full table once more
    table.neighbour_up(nid(8), 10, Pace(1800, 300, radio=True, next_full=10), channel="lora")
    assert "lora" not in table.outgoing(10)
    assert "lora" in table.outgoing(300)
    for radio in (C, D, E, nid(8)):
        table.neighbour_down(radio)
    assert "lora" not in table.outgoing(5000)  # nobody left on the channel: it goes


def test_a_route_that_leaves_the_radio_is_withdrawn_there() -> None:
    table = RouteTable(A)
    table.neighbour_up(B, 1, free_pace())
    table.neighbour_up(C, 10, Pace(1800, 300, radio=True), channel="lora")
    table.neighbour_up(E, 10, Pace(1800, 300, radio=True), channel="lora")
    table.hear(E, RouteAnnouncement(1800, (RouteEntry(10, (D,)),)), now=0, shared=True)
    first = table.outgoing(0)["lora"]
    assert D in [e.destination for page in first for e in page.entries]
    table.hear(B, RouteAnnouncement(30, (RouteEntry(1, (D,)),)), now=1)  # cheaper now, over the internet
    later = table.outgoing(400)["lora"]
    assert D in [w for page in later for w in page.withdrawn]
    assert D not in [e.destination for page in later for e in page.entries]


def test_a_relay_with_several_lora_homes_spends_one_frame_per_announcement() -> None:
    mesh = RouteMesh()
    nodes = ring_with_stubs(mesh, 4, 0)
    homes = [nid(90 + i) for i in range(5)]
    for home in homes:
        mesh.add_node(home)
    mesh.run(15)
    for home in homes:
        mesh.link(home, nodes[1], "lora")
    mesh.run(15)
    assert mesh.unreached([*nodes, *homes]) == []
    assert mesh.sent_by[nodes[1]]["lora"].frames == 1  # the relay: one broadcast heard by all five
    mesh.run(3 * 3600)
    assert mesh.sent_by[nodes[1]]["lora"].frames <= 2
    # a home offers nothing it reaches only through the relay, its one listener: no frame for that
    assert all(mesh.sent_by[home]["lora"].frames == 1 for home in homes)
    assert mesh.loops([*nodes, *homes]) == []
