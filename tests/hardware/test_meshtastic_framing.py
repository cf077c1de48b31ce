"""The simulator's reading of Meshtastic's stream framing, checked with bytes written out by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.meshtastic_framing import MAX_PAYLOAD, FrameReader, frame


def test_header_is_magic_and_big_endian_length() -> None:
    assert frame(b"\x01" * 300)[:4] == b"\x94\xc3\x01\x2c"
    assert frame(b"") == b"\x94\xc3\x00\x00"
    with pytest.raises(ValueError):
        frame(b"\x00" * (MAX_PAYLOAD + 1))
    assert len(frame(b"\x00" * MAX_PAYLOAD)) == MAX_PAYLOAD + 4


def test_wake_up_burst_and_console_text_around_frames_are_dropped() -> None:
    stream = b"\xc3" * 32 + b"\x94\xc3\x00\x03\x18\x92\x21" + b"INFO | boot\r\n" + b"\x94\xc3\x00\x02\x08\x01"
    assert FrameReader().feed(stream) == [b"\x18\x92\x21", b"\x08\x01"]


def test_byte_at_a_time_gives_the_same_frames() -> None:
    stream = b"a\x94b" + frame(b"\x94\xc3" * 40) + frame(b"ok")
    reader = FrameReader()
    payloads = [p for byte in stream for p in reader.feed(bytes([byte]))]
    assert payloads == [b"\x94\xc3" * 40, b"ok"]


def test_an_oversize_header_is_skipped_and_the_reader_resynchronises() -> None:
    assert FrameReader().feed(b"\x94\xc3\x02\x01" + frame(b"ok")) == [b"ok"]  # 513 bytes announced


@given(st.binary(max_size=2048), st.integers(min_value=1, max_value=64))
def test_any_bytes_in_any_chunking_never_break_the_reader(data: bytes, chunk: int) -> None:
    reader = FrameReader()
    for start in range(0, len(data), chunk):
        for payload in reader.feed(data[start : start + chunk]):
            assert len(payload) <= MAX_PAYLOAD
    assert reader.pending <= 4 + MAX_PAYLOAD  # at most one unfinished frame is held back
