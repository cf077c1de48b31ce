"""The device side of Meshtastic's stream framing, written from the published serial API.

Meshtastic's client API ("Client API (Serial/TCP/BLE)", meshtastic.org/docs/development/device/client-api)
frames every protobuf on a serial port or TCP port 4403 as::

    0x94 0xC3 <length MSB> <length LSB> <protobuf, at most 512 bytes>

A receiver that finds a length over 512 treats the header as corrupt and looks for the next ``0x94``;
bytes outside a frame are the device's debug console (device to host) or the host's wake-up burst of
``0xC3`` bytes (host to device), and a device ignores them. This module is the simulator's own reading
of that document, deliberately separate from the hub's driver codec so the two can disagree.
"""

from __future__ import annotations

START = b"\x94\xc3"
MAX_PAYLOAD = 512


def frame(payload: bytes) -> bytes:
    """One protobuf as it travels on the wire."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"a stream frame carries at most {MAX_PAYLOAD} bytes, not {len(payload)}")
    return START + len(payload).to_bytes(2, "big") + payload


class FrameReader:
    """Collects bytes in any chunking and hands out the protobufs of complete frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back: the start of a frame whose rest has not arrived."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the payloads of the frames it completed, dropping everything else."""
        self._buffer += data
        payloads: list[bytes] = []
        while True:
            start = self._buffer.find(START)
            if start < 0:
                # Keep a trailing 0x94: it may be the first half of the next header.
                del self._buffer[: len(self._buffer) - (self._buffer[-1:] == b"\x94")]
                return payloads
            del self._buffer[:start]
            if len(self._buffer) < 4:
                return payloads
            length = int.from_bytes(self._buffer[2:4], "big")
            if length > MAX_PAYLOAD:
                del self._buffer[:1]  # a corrupt header: resynchronise on the next 0x94
                continue
            if len(self._buffer) < 4 + length:
                return payloads
            payloads.append(bytes(self._buffer[4 : 4 + length]))
            del self._buffer[: 4 + length]
