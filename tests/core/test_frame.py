from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.core.errors import ProtocolError
from hub.core.frame import (
    BROADCAST,
    HEADER_SIZE,
    MAX_PAYLOAD,
    SIGNATURE_SIZE,
    Frame,
    FrameDecoder,
    Kind,
    Priority,
    Status,
    decode_frame,
    decode_varint,
    encode_varint,
    message_id,
    signed_part,
)
from hub.core.identity import Identity

IDENTITY = Identity.generate("Aarhus", "staff")
OTHER = Identity.generate("Solgaarden", "care-home")


def make(payload: bytes = b"hej", **overrides: object) -> bytes:
    fields: dict[str, object] = {"created": 1_800_000_000, "ttl_minutes": 90}
    fields.update(overrides)
    return IDENTITY.sign(Kind.TEXT, OTHER.node_id, payload, **fields).encode()  # type: ignore[arg-type]


def test_round_trip_of_every_field() -> None:
    for priority in Priority:
        for status in Status:
            for sealed in (False, True):
                frame = IDENTITY.sign(
                    Kind.SITREP,
                    BROADCAST,
                    b"\x00\xff" * 40,
                    created=1_800_000_123,
                    ttl_minutes=65535,
                    priority=priority,
                    status=status,
                    sealed=sealed,
                )
                decoded = decode_frame(frame.encode())
                assert decoded == frame
                assert decoded.expires == 1_800_000_123 + 65535 * 60
                assert decoded.id == frame.id


def test_overhead_within_budget() -> None:
    for size in (0, 10, 127, 128, 1000, MAX_PAYLOAD):
        overhead = len(make(b"x" * size)) - size
        assert overhead <= 96, f"header + signature is {overhead} bytes for a {size}-byte payload"
    assert HEADER_SIZE + 1 + SIGNATURE_SIZE == 95


def test_hop_counter_is_outside_the_signature_and_the_id() -> None:
    frame = decode_frame(make())
    relayed = decode_frame(frame.with_hops(3).encode())
    assert relayed.hops == 3
    assert relayed.id == frame.id
    assert relayed.signed_bytes == frame.signed_bytes


@given(st.binary(max_size=300), st.sampled_from(list(Priority)), st.integers(0, 255))
def test_the_signed_bytes_a_decoded_frame_keeps_are_those_its_fields_sign(
    payload: bytes, priority: Priority, hops: int
) -> None:
    decoded = decode_frame(make(payload, priority=priority))
    fields = {name: getattr(decoded, name) for name in ("kind", "sender", "recipient", "created")}
    fields |= {name: getattr(decoded, name) for name in ("ttl_minutes", "nonce", "payload", "priority")}
    rebuilt = signed_part(**fields, status=decoded.status, sealed=decoded.sealed)  # type: ignore[arg-type]
    assert decoded.signed_bytes == rebuilt
    assert decoded.id == message_id(rebuilt) == decoded.with_hops(hops).id
    assert decoded.with_hops(hops).encode() == make_hops(decoded, hops)


def make_hops(frame: Frame, hops: int) -> bytes:
    """The frame's wire with another hop count, built from scratch (no kept bytes)."""
    fresh = Frame(
        frame.kind, frame.sender, frame.recipient, frame.created, frame.ttl_minutes, frame.nonce,
        frame.payload, frame.signature, frame.priority, frame.status, frame.sealed, hops,
    )  # fmt: skip
    return fresh.encode()


def test_message_id_changes_with_any_signed_byte() -> None:
    assert decode_frame(make(b"a")).id != decode_frame(make(b"b")).id


def test_stream_decoder_whole_input() -> None:
    wires = [make(b"one"), make(b"two" * 100), make(b"")]
    decoder = FrameDecoder()
    decoder.receive_data(b"".join(wires))
    assert [f.encode() for f in iter(decoder.next_frame, None)] == wires
    assert decoder.pending == 0


def test_stream_decoder_one_byte_at_a_time() -> None:
    wire = make(b"langsom radio" * 20)
    decoder = FrameDecoder()
    frames = []
    for byte in wire:
        decoder.receive_data(bytes([byte]))
        frame = decoder.next_frame()
        if frame:
            frames.append(frame)
    assert [f.encode() for f in frames] == [wire]


def test_stream_decoder_leaves_trailing_bytes() -> None:
    wire = make()
    decoder = FrameDecoder()
    decoder.receive_data(wire + b"\x01\x00")
    assert decoder.next_frame() is not None
    assert decoder.next_frame() is None
    assert decoder.pending == 2


def test_single_frame_decode_refuses_trailing_and_truncated_bytes() -> None:
    wire = make()
    with pytest.raises(ProtocolError, match="does not match"):
        decode_frame(wire + b"\x00")
    with pytest.raises(ProtocolError, match="truncated"):
        decode_frame(wire[:20])
    with pytest.raises(ProtocolError):
        decode_frame(wire[:-1])


def test_unknown_version_kind_flags_and_oversize_are_refused() -> None:
    wire = bytearray(make())
    for offset, value, message in ((0, 9, "version"), (3, 99, "Kind"), (2, 0x80, "reserved")):
        bad = bytearray(wire)
        bad[offset] = value
        with pytest.raises(ProtocolError, match=message):
            decode_frame(bytes(bad))
    oversize = bytes(wire[:HEADER_SIZE]) + encode_varint(MAX_PAYLOAD + 1)
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_frame(oversize + b"\x00" * (MAX_PAYLOAD + 65))


def test_varint_round_trip_and_non_minimal_rejected() -> None:
    for value in (0, 1, 127, 128, 300, 4096, 2**20):
        encoded = encode_varint(value)
        assert decode_varint(encoded, 0) == (value, len(encoded))
    with pytest.raises(ProtocolError):
        decode_varint(b"\x80\x00", 0)


@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    try:
        decode_frame(data)
    except ProtocolError:
        pass


@given(st.binary(max_size=300))
def test_stream_decoder_never_raises_anything_else(data: bytes) -> None:
    decoder = FrameDecoder()
    decoder.receive_data(data)
    try:
        while decoder.next_frame() is not None:
            pass
    except ProtocolError:
        pass
