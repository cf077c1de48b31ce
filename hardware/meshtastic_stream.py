"""Sans-IO codec of the Meshtastic stream framing used on serial ports and TCP port 4403.

Theory of operation (Meshtastic "Client API", stream protocol; the same bytes flow over a USB serial port
and over a network radio's TCP socket): every protobuf (``ToRadio`` host -> device, ``FromRadio`` device
-> host) travels as ``0x94 0xC3`` followed by a 2-byte big-endian length (at most 512) and that many bytes
of protobuf. Anything outside a frame is the device's debug console text, which a host shows or drops.
A host wakes a sleeping device and resynchronises its parser by sending 32 x ``0xC3`` (a byte that can
never start a frame) before its first request.

``StreamDecoder`` takes bytes in any chunking through ``receive_data`` and hands out ``FramePayload`` and
``DebugText`` events from ``next_event``. A header announcing more than 512 bytes raises ``ProtocolError``
once and the decoder resynchronises after the bad start marker, as the firmware and the Python library
do. No I/O and no clock live here; the fake radio and any host driver wrap it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub.core.errors import ProtocolError

START1 = 0x94
START2 = 0xC3
HEADER_LEN = 4
MAX_PAYLOAD = 512
"""Largest protobuf a frame may carry (``MAX_TO_FROM_RADIO_SIZE`` in firmware and library)."""
WAKE_UP = bytes([START2]) * 32
"""What a host sends before its first request to wake the device and reset its parser."""
MAX_DEBUG_LINE = 1024
"""Debug text without a newline is flushed at this length so a chatty device cannot grow memory."""


@dataclass(frozen=True, slots=True)
class FramePayload:
    """One complete protobuf taken out of its frame (still serialized)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class DebugText:
    """One line of the device's debug console, without its line ending."""

    text: str


StreamEvent = FramePayload | DebugText


def encode_frame(payload: bytes) -> bytes:
    """Wrap one serialized protobuf in the stream header; raises ``ProtocolError`` above 512 bytes."""
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"stream frame payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return bytes((START1, START2, len(payload) >> 8, len(payload) & 0xFF)) + payload


class StreamDecoder:
    """Incremental decoder: feed bytes with ``receive_data``, pull events with ``next_event``."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._text = bytearray()
        self._events: list[StreamEvent] = []

    def receive_data(self, data: bytes) -> None:
        """Add bytes as they arrived; call ``next_event`` until it returns None."""
        self._buffer += data

    def next_event(self) -> StreamEvent | None:
        """The next complete event, or None when more bytes are needed.

        Raises ``ProtocolError`` for a header announcing an oversize frame; the decoder has already
        skipped the bad start marker, so calling ``next_event`` again continues with the bytes after it.
        """
        while not self._events:
            if not self._parse_one():
                return None
        return self._events.pop(0)

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the rest of a frame or a line end."""
        return len(self._buffer) + len(self._text)

    def _parse_one(self) -> bool:
        """Consume some input, maybe queueing an event; False when nothing more can be done now."""
        buf = self._buffer
        if not buf:
            return False
        start = buf.find(START1)
        if start != 0:
            # Everything before a possible frame start is console text.
            text_end = len(buf) if start < 0 else start
            self._take_text(bytes(buf[:text_end]))
            del buf[:text_end]
            return bool(self._events) or bool(buf)
        if len(buf) < 2:
            return False
        if buf[1] != START2:
            # A lone 0x94 is not a frame start (it can appear inside UTF-8 text): treat it as text.
            self._take_text(bytes(buf[:1]))
            del buf[:1]
            return True
        if len(buf) < HEADER_LEN:
            return False
        length = (buf[2] << 8) | buf[3]
        if length > MAX_PAYLOAD:
            del buf[:2]
            raise ProtocolError(f"stream frame header announces {length} bytes, more than {MAX_PAYLOAD}")
        if len(buf) < HEADER_LEN + length:
            return False
        self._flush_text()
        self._events.append(FramePayload(bytes(buf[HEADER_LEN : HEADER_LEN + length])))
        del buf[: HEADER_LEN + length]
        return True

    def _take_text(self, chunk: bytes) -> None:
        for byte in chunk:
            if byte == 0x0A:
                self._flush_text()
            elif byte == 0x0D or (byte == START2 and not self._text):
                # Carriage returns end lines on some consoles; leading 0xC3 bytes are a host's wake-up burst.
                continue
            else:
                self._text.append(byte)
                if len(self._text) >= MAX_DEBUG_LINE:
                    self._flush_text()

    def _flush_text(self) -> None:
        if self._text:
            self._events.append(DebugText(self._text.decode("utf-8", errors="replace")))
            self._text.clear()
