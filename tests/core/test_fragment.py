from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.errors import ProtocolError, TrustError
from hub.core.fragment import FRAGMENT_HEADER, Fragment, Reassembler, decode_fragment, is_fragment, split
from hub.core.frame import MAX_FRAME


def test_small_frame_is_not_fragmented() -> None:
    assert split(b"\x01abc", 200) == [b"\x01abc"]


def test_split_respects_mtu_and_reassembles_in_any_order() -> None:
    wire = bytes(random.Random(1).randbytes(1000))
    pieces = split(wire, 200)
    assert all(len(p) <= 200 and is_fragment(p) for p in pieces)
    assert len(pieces) == -(-1000 // (200 - FRAGMENT_HEADER))
    random.Random(2).shuffle(pieces)
    reassembler = Reassembler()
    results = [reassembler.add("radio", decode_fragment(p), 0.0) for p in pieces]
    assert results[-1] == wire
    assert results[:-1] == [None] * (len(pieces) - 1)
    assert len(reassembler) == 0


def test_a_lost_fragment_is_filled_by_the_retransmission() -> None:
    wire = b"\x01" + bytes(range(256)) * 2
    first, second = split(wire, 100), split(wire, 100)
    reassembler = Reassembler()
    for piece in first[:2] + first[3:]:  # fragment 2 lost on the air
        assert reassembler.add("mesh", decode_fragment(piece), 0.0) is None
    assert reassembler.missing("mesh", decode_fragment(first[0]).set_id) == [2]
    assert reassembler.add("mesh", decode_fragment(second[2]), 1.0) == wire


def test_partials_are_bounded_and_time_out() -> None:
    reassembler = Reassembler(max_sets=3, timeout=10.0)
    for n in range(5):
        reassembler.add(f"s{n}", decode_fragment(split(bytes([1, n]) * 200, 100)[0]), float(n))
    assert len(reassembler) == 3 and reassembler.dropped == 2
    reassembler.expire(100.0)
    assert len(reassembler) == 0


def test_a_set_larger_than_any_frame_is_refused_at_its_first_fragment() -> None:
    reassembler = Reassembler()
    with pytest.raises(TrustError, match="reassembly-limit"):
        reassembler.add("flood", Fragment(b"abcd", 0, 255, b"x" * 16_000), 0.0)
    assert reassembler.stats.refused == 1 and reassembler.stats.bytes == 0 and len(reassembler) == 0


def test_a_set_that_grows_past_the_largest_frame_is_dropped() -> None:
    reassembler = Reassembler()
    chunk = b"x" * (MAX_FRAME // 2 - 100)
    for index in range(2):
        assert reassembler.add("flood", Fragment(b"abcd", index, 3, chunk), 0.0) is None
    with pytest.raises(TrustError):
        reassembler.add("flood", Fragment(b"abcd", 2, 3, b"y" * 1000), 0.0)
    assert len(reassembler) == 0 and reassembler.stats.bytes == 0


def test_one_source_cannot_push_out_the_others() -> None:
    reassembler = Reassembler(max_sets=64, max_sets_per_source=4, max_bytes_per_source=10_000)
    reassembler.add("care-home", Fragment(b"good", 0, 2, b"g" * 100), 0.0)
    for n in range(100):
        reassembler.add("flood", Fragment(n.to_bytes(4, "big"), 0, 3, b"x" * 2000), float(n))
    assert reassembler.missing("care-home", b"good") == [1], "the genuine partial set survived the flood"
    assert reassembler.stats.bytes == 100 + 4 * 2000
    assert reassembler.stats.evicted == 96


def test_total_bytes_stay_within_budget_across_many_sources() -> None:
    reassembler = Reassembler(max_bytes=50_000)
    for n in range(1000):
        reassembler.add(f"source-{n}", Fragment(n.to_bytes(4, "big"), 0, 3, b"x" * 2000), float(n))
        assert reassembler.stats.bytes <= 50_000
    assert reassembler.stats.sets == len(reassembler) == 25
    assert reassembler.stats.evicted == 975


def test_impossible_fragments_are_refused() -> None:
    with pytest.raises(ProtocolError):
        decode_fragment(b"\x02abcd\x05\x03x")  # index 5 of 3
    with pytest.raises(ProtocolError):
        decode_fragment(b"\x02abcd")
    forged = bytearray(split(b"\x01" + b"z" * 300, 100)[1])
    forged[-1] ^= 0xFF
    reassembler = Reassembler()
    pieces = [decode_fragment(p) for p in split(b"\x01" + b"z" * 300, 100)]
    pieces[1] = decode_fragment(bytes(forged))
    with pytest.raises(ProtocolError, match="set id"):
        for piece in pieces:
            reassembler.add("x", piece, 0.0)


@given(st.binary(max_size=64))
def test_any_bytes_decode_as_fragment_or_raise_protocol_error(data: bytes) -> None:
    try:
        decode_fragment(data)
    except ProtocolError:
        pass


@given(st.binary(min_size=1, max_size=3000), st.integers(min_value=20, max_value=400))
def test_split_then_reassemble_is_identity(wire: bytes, mtu: int) -> None:
    pieces = split(wire, mtu)
    if len(pieces) == 1:
        assert pieces == [wire]
        return
    reassembler = Reassembler()
    out = [reassembler.add("p", decode_fragment(p), 0.0) for p in pieces]
    assert out[-1] == wire
