"""The body of an internet link's ``POST /v1/frames``: length-prefixed frames, sans-IO.

A batch body is one or more frames, each preceded by its length as a 2-byte big-endian integer, so a
frame is 1 to 65535 bytes and an empty body carries nothing (docs/internet.md, "Wire format").
``encode_batch`` builds a body; ``BatchDecoder`` takes one apart incrementally, chunk by chunk as aiohttp
hands the request body over, so a frame split across chunks is reassembled and an oversized declared
length is refused as soon as its prefix arrives, before its bytes are read. Nothing here touches a socket
or the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from hub.core.errors import FrameTooLarge, ProtocolError

MAX_MTU = 0xFFFF  # the length prefix is two bytes


def encode_batch(frames: Sequence[bytes]) -> bytes:
    """The POST body for ``frames``: each one preceded by its length, 2 bytes big-endian."""
    parts: list[bytes] = []
    for frame in frames:
        if not 0 < len(frame) <= MAX_MTU:
            raise ValueError(f"frame length {len(frame)} outside 1..{MAX_MTU}")
        parts.append(len(frame).to_bytes(2, "big"))
        parts.append(frame)
    return b"".join(parts)


class BatchDecoder:
    """Incremental decoder of a POST body (sans-IO): feed chunks as they come, then call ``end``.

    ``receive_data`` returns the frames completed by the chunk; a zero length raises ``ProtocolError``
    and a declared length above ``max_frame`` raises ``FrameTooLarge`` as soon as its prefix is seen.
    ``end`` raises ``ProtocolError`` if the body stopped inside a frame or held no frame at all.
    """

    def __init__(self, max_frame: int = MAX_MTU) -> None:
        self._buffer = bytearray()
        self._max_frame = max_frame
        self.frames = 0

    def receive_data(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        at, size = 0, len(buffer)
        while size - at >= 2:
            length = (buffer[at] << 8) | buffer[at + 1]
            if length == 0:
                raise ProtocolError(f"frame {self.frames + 1} has length zero")
            if length > self._max_frame:
                raise FrameTooLarge(
                    f"frame {self.frames + 1} of {length} bytes exceeds MTU {self._max_frame}"
                )
            end = at + 2 + length
            if end > size:
                break
            out.append(bytes(buffer[at + 2 : end]))
            self.frames += 1
            at = end
        del buffer[:at]
        return out

    def end(self) -> None:
        if self._buffer:
            raise ProtocolError(f"body ends inside a frame ({len(self._buffer)} bytes left over)")
        if not self.frames:
            raise ProtocolError("empty body: expected one or more length-prefixed frames")
