"""A serial device that plays a literal byte transcript, for driving a real driver over a pty.

Each step is ``(expected, reply)``: once the host has written exactly ``expected``, the device writes
``reply``; a step with ``expected == b""`` replies as soon as the step before it is done. ``push`` writes
unsolicited bytes at any moment. Anything the host writes that the transcript did not expect is kept in
``unexpected`` (and stops the transcript), so a test can assert the host wrote exactly what the manual
says and nothing else.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable


class Transcript:
    def __init__(self, steps: Iterable[tuple[bytes, bytes]]) -> None:
        self.steps = collections.deque(steps)
        self.wakeup: Callable[[], None] | None = None
        self.unexpected = bytearray()
        self._in = bytearray()
        self._out = bytearray()

    @property
    def finished(self) -> bool:
        return not self.steps and not self.unexpected

    def extend(self, steps: Iterable[tuple[bytes, bytes]]) -> None:
        self.steps.extend(steps)
        self._advance()

    def push(self, data: bytes) -> None:
        self._out += data
        if self.wakeup is not None:
            self.wakeup()

    def receive_data(self, data: bytes) -> None:
        if self.unexpected:
            self.unexpected += data
            return
        self._in += data
        self._advance()

    def _advance(self) -> None:
        while self.steps:
            expected, reply = self.steps[0]
            if not bytes(expected).startswith(bytes(self._in[: len(expected)])):
                self.unexpected += self._in
                self._in.clear()
                return
            if len(self._in) < len(expected):
                return
            del self._in[: len(expected)]
            self.steps.popleft()
            self._out += reply
        if self._in:
            self.unexpected += self._in
            self._in.clear()
        if self._out and self.wakeup is not None:
            self.wakeup()

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out
