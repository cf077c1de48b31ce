from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from meshtastic.protobuf import mesh_pb2

from hardware.meshtastic_stream import (
    MAX_DEBUG_LINE,
    WAKE_UP,
    DebugText,
    FramePayload,
    StreamDecoder,
    StreamEvent,
    encode_frame,
)
from hub.core.errors import ProtocolError

MY_INFO = mesh_pb2.FromRadio(my_info=mesh_pb2.MyNodeInfo(my_node_num=0x0BADBEEF)).SerializeToString()
PACKET = mesh_pb2.FromRadio(
    packet=mesh_pb2.MeshPacket(
        to=0xFFFFFFFF, id=7, decoded=mesh_pb2.Data(portnum=256, payload=b"\x94\xc3" * 100)
    )
).SerializeToString()
STREAM = b"INFO | boot\r\n" + encode_frame(MY_INFO) + b"DEBUG | radio up\n" + encode_frame(PACKET)
EXPECTED: list[StreamEvent] = [
    DebugText("INFO | boot"),
    FramePayload(MY_INFO),
    DebugText("DEBUG | radio up"),
    FramePayload(PACKET),
]


def drain(decoder: StreamDecoder) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    while (event := decoder.next_event()) is not None:
        events.append(event)
    return events


def test_header_is_magic_and_big_endian_length() -> None:
    assert encode_frame(b"\x01" * 300)[:4] == bytes([0x94, 0xC3, 0x01, 0x2C])
    assert mesh_pb2.FromRadio.FromString(encode_frame(MY_INFO)[4:]).my_info.my_node_num == 0x0BADBEEF


def test_whole_stream_decodes() -> None:
    decoder = StreamDecoder()
    decoder.receive_data(STREAM)
    assert drain(decoder) == EXPECTED
    assert decoder.pending == 0


def test_byte_at_a_time_decodes_the_same() -> None:
    decoder = StreamDecoder()
    events: list[StreamEvent] = []
    for byte in STREAM:
        decoder.receive_data(bytes([byte]))
        events.extend(drain(decoder))
    assert events == EXPECTED


def test_trailing_partial_frame_waits_for_the_rest() -> None:
    decoder = StreamDecoder()
    tail = encode_frame(b"\x08\x01" * 10)
    decoder.receive_data(STREAM + tail[:7])
    assert drain(decoder) == EXPECTED
    assert decoder.pending == 7
    decoder.receive_data(tail[7:])
    assert drain(decoder) == [FramePayload(b"\x08\x01" * 10)]


def test_wake_up_burst_is_not_reported_as_text() -> None:
    decoder = StreamDecoder()
    decoder.receive_data(WAKE_UP + encode_frame(b"\x18\x01"))
    assert drain(decoder) == [FramePayload(b"\x18\x01")]


def test_lone_start_byte_in_text_is_text() -> None:
    decoder = StreamDecoder()
    decoder.receive_data(b"a\x94b\n")
    assert drain(decoder) == [DebugText("a\ufffdb")]


def test_oversize_header_raises_then_resynchronises() -> None:
    decoder = StreamDecoder()
    decoder.receive_data(bytes([0x94, 0xC3, 0x02, 0x01]) + encode_frame(b"ok"))
    with pytest.raises(ProtocolError, match="513 bytes"):
        decoder.next_event()
    events = drain(decoder)
    assert events[-1] == FramePayload(b"ok")


def test_encode_refuses_oversize_payload() -> None:
    with pytest.raises(ProtocolError):
        encode_frame(b"\x00" * 513)
    assert len(encode_frame(b"\x00" * 512)) == 516


def test_endless_text_is_flushed_in_bounded_lines() -> None:
    decoder = StreamDecoder()
    decoder.receive_data(b"x" * (3 * MAX_DEBUG_LINE))
    events = drain(decoder)
    assert [len(e.text) for e in events if isinstance(e, DebugText)] == [MAX_DEBUG_LINE] * 3


@given(st.binary(max_size=2048), st.integers(min_value=1, max_value=64))
def test_any_bytes_decode_or_raise_protocol_error(data: bytes, chunk: int) -> None:
    decoder = StreamDecoder()
    for start in range(0, len(data), chunk):
        decoder.receive_data(data[start : start + chunk])
        while True:
            try:
                event = decoder.next_event()
            except ProtocolError:
                continue
            if event is None:
                break
            assert isinstance(event, FramePayload | DebugText)
    assert decoder.pending <= len(data)


@given(st.lists(st.binary(max_size=512), max_size=8), st.binary(max_size=40).filter(lambda b: 0x94 not in b))
def test_frames_survive_any_interleaved_text(payloads: list[bytes], noise: bytes) -> None:
    decoder = StreamDecoder()
    decoder.receive_data(b"".join(noise + encode_frame(p) for p in payloads))
    frames = [e.payload for e in drain(decoder) if isinstance(e, FramePayload)]
    assert frames == payloads
