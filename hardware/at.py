"""Sans-IO codec for the AT command dialect spoken by TETRA radios and Iridium SBD modems.

Theory of operation. A host writes one command line ending ``\\r`` (ITU-T V.250; ETSI EN 300 392-5 for the
TETRA PEI, Iridium's ISU AT Command Reference for SBD). The device answers with zero or more information
lines, then one *final result*: ``OK``, ``ERROR``, ``+CME ERROR: <n>`` or ``+CMS ERROR: <n>``. Lines end in
``\\r``, ``\\r\\n`` or ``\\n`` and may be surrounded by blank lines. Between and even inside answers the
device may emit *unsolicited result codes* (URCs) such as TETRA's ``+CTSDSR:`` or Iridium's ``SBDRING``;
some URCs carry a second line with data (``+CTSDSR: ...`` is followed by the SDS user data in hex). Before
taking message text a device may print a ``>`` prompt with no line end. Iridium's ``AT+SBDRB`` answers in
binary (2-byte length, data, 2-byte checksum) which must be taken by count, never split on line ends.

API. ``AtParser`` is fed bytes with ``receive_data`` and yields events from ``next_event`` until it returns
``None`` (more bytes needed). Before writing a command the caller calls ``begin_command`` to say which extra
words end the answer (Iridium's ``READY``) and whether a binary block comes first (``BinaryRead``). Events:

* ``Response(info, result, code, binary)`` - the answer to the current command: its information lines,
  the final result word (``"OK"``, ``"ERROR"``, ``"+CME ERROR"``, ``"+CMS ERROR"`` or an extra final such
  as ``"READY"``), the numeric error code when given, and the binary block if one was requested.
* ``Urc(line, data)`` - an unsolicited line whose text starts with one of ``urc_prefixes``; ``data`` is
  the following line for prefixes listed in ``urc_with_data``. A prefix can be both a URC and a command's
  own answer (TETRA's ``+CMGS:`` acknowledges ``AT+CMGS`` and later reports the over-the-air result
  unsolicited): ``begin_command(solicited=...)`` makes such lines information of the current answer
  until its final result, after which they are URCs again.
* ``Prompt()`` - the device waits for message text.

``next_event`` raises ``ProtocolError`` for a line that is not text (line noise, a wrong baud rate) or
longer than ``max_line``; the offending bytes are dropped, so the parser stays usable and the caller may
log and carry on. ``encode_command`` and ``encode_text`` build the bytes to write.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from hub.core.errors import ProtocolError

CTRL_Z = b"\x1a"
_ERROR_RESULTS = frozenset({"ERROR", "+CME ERROR", "+CMS ERROR"})
_CODED_ERROR = re.compile(r"^(\+CME ERROR|\+CMS ERROR):\s*(.*)$")
_PRINTABLE = frozenset(range(0x20, 0x7F)) | {0x09}


@dataclass(frozen=True, slots=True)
class BinaryRead:
    """A binary block that precedes the final result: ``prefix`` bytes of big-endian length, that many
    bytes of data and ``trailer`` more bytes (a checksum). ``fixed`` instead gives the block's whole size."""

    prefix: int = 2
    trailer: int = 2
    fixed: int | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """The complete answer to one command."""

    info: tuple[str, ...]
    result: str
    code: int | None = None
    binary: bytes | None = None
    """The raw block, length prefix and trailer included, when a ``BinaryRead`` was requested."""
    detail: str = ""
    """The text after ``+CME ERROR:`` when it is not a number (verbose error mode)."""

    @property
    def ok(self) -> bool:
        return self.result not in _ERROR_RESULTS


@dataclass(frozen=True, slots=True)
class Urc:
    """An unsolicited result code, with its data line for two-line URCs."""

    line: str
    data: str | None = None


@dataclass(frozen=True, slots=True)
class Prompt:
    """The device printed ``>`` and waits for text ended by Ctrl-Z."""


AtEvent = Response | Urc | Prompt


def encode_command(command: str) -> bytes:
    """The bytes of one command line. ``command`` is ASCII without line ends, e.g. ``"AT+CNUMF?"``."""
    if not command or any(ch in command for ch in "\r\n\x1a") or not command.isascii():
        raise ValueError(f"not a single ASCII command line: {command!r}")
    return command.encode("ascii") + b"\r"


def encode_text(text: str) -> bytes:
    """Message text for a prompt (e.g. the hex user data after ``AT+CMGS``), ended by Ctrl-Z."""
    if any(ch in text for ch in "\r\n\x1a\x1b") or not text.isascii():
        raise ValueError(f"not a single ASCII text: {text!r}")
    return text.encode("ascii") + CTRL_Z


class AtParser:
    """Splits a device's byte stream into ``Response``, ``Urc`` and ``Prompt`` events."""

    def __init__(
        self,
        *,
        urc_prefixes: Iterable[str] = (),
        urc_with_data: Iterable[str] = (),
        max_line: int = 2048,
    ) -> None:
        self._urc_with_data = tuple(urc_with_data)
        self._urc_prefixes = tuple(urc_prefixes) + self._urc_with_data
        self._max_line = max_line
        self._buffer = bytearray()
        self._info: list[str] = []
        self._finals: frozenset[str] = frozenset()
        self._solicited: tuple[str, ...] = ()
        self._binary_spec: BinaryRead | None = None
        self._binary: bytes | None = None
        self._urc_waiting: str | None = None

    def begin_command(
        self,
        *,
        finals: Iterable[str] = (),
        binary: BinaryRead | None = None,
        solicited: Iterable[str] = (),
    ) -> None:
        """Start collecting the answer to a new command; call before writing it.

        Lines left over from an earlier, abandoned answer are discarded. ``finals`` are extra words that end
        this answer (besides OK and the errors); ``binary`` says a binary block comes before them;
        ``solicited`` are URC prefixes whose lines belong to this answer until its final result.
        """
        self._info = []
        self._finals = frozenset(finals)
        self._solicited = tuple(solicited)
        self._binary_spec = binary
        self._binary = None

    def reset(self) -> None:
        """Forget all buffered bytes and state, e.g. after the device was reopened."""
        self._buffer.clear()
        self._urc_waiting = None
        self.begin_command()

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> AtEvent | None:
        """The next complete event, or ``None`` until more bytes arrive. Raises ``ProtocolError``."""
        while True:
            if self._binary_spec is not None and self._urc_waiting is None:
                if not self._take_binary(self._binary_spec):
                    return None
                continue
            self._skip_line_ends()
            if self._buffer[:1] == b">" and self._urc_waiting is None:
                # The prompt has no line end: ">" or "> " is complete as soon as it is seen.
                del self._buffer[: 2 if self._buffer[1:2] == b" " else 1]
                return Prompt()
            line = self._take_line()
            if line is None:
                return None
            event = self._classify(line)
            if event is not None:
                return event

    def _skip_line_ends(self) -> None:
        skip = 0
        while skip < len(self._buffer) and self._buffer[skip] in (0x0D, 0x0A):
            skip += 1
        del self._buffer[:skip]

    def _take_line(self) -> str | None:
        end = next((i for i, byte in enumerate(self._buffer) if byte in (0x0D, 0x0A)), -1)
        if end < 0:
            if len(self._buffer) > self._max_line:
                self._buffer.clear()
                raise ProtocolError(f"AT line longer than {self._max_line} bytes without a line end")
            return None
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        if len(raw) > self._max_line:
            raise ProtocolError(f"AT line of {len(raw)} bytes exceeds {self._max_line}")
        if not set(raw) <= _PRINTABLE:
            self._urc_waiting = None
            raise ProtocolError(f"AT line is not text (noise or wrong baud rate?): {raw[:40]!r}")
        return raw.decode("ascii").strip()

    def _take_binary(self, spec: BinaryRead) -> bool:
        if spec.fixed is not None:
            size = spec.fixed
        else:
            if len(self._buffer) < spec.prefix:
                return False
            size = spec.prefix + int.from_bytes(self._buffer[: spec.prefix], "big") + spec.trailer
        if len(self._buffer) < size:
            return False
        self._binary = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._binary_spec = None
        return True

    def _classify(self, line: str) -> AtEvent | None:
        if self._urc_waiting is not None:
            urc = Urc(self._urc_waiting, line)
            self._urc_waiting = None
            return urc
        if line.startswith(self._urc_prefixes) and not (self._solicited and line.startswith(self._solicited)):
            if line.startswith(self._urc_with_data):
                self._urc_waiting = line
                return None
            return Urc(line)
        if line == "OK" or line == "ERROR" or line in self._finals:
            return self._finish(line, None, "")
        coded = _CODED_ERROR.match(line)
        if coded is not None:
            text = coded.group(2).strip()
            if text.isdigit():
                return self._finish(coded.group(1), int(text), "")
            return self._finish(coded.group(1), None, text)
        self._info.append(line)
        return None

    def _finish(self, result: str, code: int | None, detail: str) -> Response:
        response = Response(tuple(self._info), result, code, self._binary, detail)
        self.begin_command()
        return response
