"""Fragmentation of encoded frames below a link's MTU, and their reassembly (sans-IO, time injected).

A frame that fits the MTU travels as it is (its first byte is the frame version, 1). A larger one is cut
into fragments, each a 7-byte header and a chunk:

    offset size field
    0      1    envelope type 2 (fragment)
    1      4    set id: first 4 bytes of SHA-256 of the whole encoded frame
    5      1    index of this fragment, 0-based
    6      1    number of fragments in the set (2..255)
    7      n    chunk

The set id depends only on the frame's bytes, so a retransmission of the same frame refills the same
partial set: a lost fragment costs one fragment, not the whole message. The reassembler bounds both the
number of partial sets it keeps and their age, evicting the oldest first.
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict
from dataclasses import dataclass, field

from hub.core.errors import ProtocolError

FRAGMENT_TYPE = 2
FRAGMENT_HEADER = 7
MAX_FRAGMENTS = 255
_HEADER = struct.Struct(">B4sBB")


@dataclass(frozen=True, slots=True)
class Fragment:
    set_id: bytes
    index: int
    count: int
    chunk: bytes

    def encode(self) -> bytes:
        return _HEADER.pack(FRAGMENT_TYPE, self.set_id, self.index, self.count) + self.chunk


def is_fragment(data: bytes) -> bool:
    return bool(data) and data[0] == FRAGMENT_TYPE


def decode_fragment(data: bytes) -> Fragment:
    if len(data) <= FRAGMENT_HEADER or data[0] != FRAGMENT_TYPE:
        raise ProtocolError("not a fragment")
    _, set_id, index, count = _HEADER.unpack_from(data)
    if count < 2 or index >= count:
        raise ProtocolError(f"fragment index {index} of {count} is impossible")
    return Fragment(set_id, index, count, bytes(data[FRAGMENT_HEADER:]))


def split(wire: bytes, mtu: int) -> list[bytes]:
    """Cut an encoded frame into pieces of at most ``mtu`` bytes (one piece if it already fits)."""
    if len(wire) <= mtu:
        return [wire]
    room = mtu - FRAGMENT_HEADER
    if room < 1:
        raise ValueError(f"MTU {mtu} leaves no room for fragment data")
    count = -(-len(wire) // room)
    if count > MAX_FRAGMENTS:
        raise ValueError(f"{len(wire)} bytes need {count} fragments at MTU {mtu}; at most {MAX_FRAGMENTS}")
    set_id = hashlib.sha256(wire).digest()[:4]
    return [Fragment(set_id, i, count, wire[i * room : (i + 1) * room]).encode() for i in range(count)]


@dataclass(slots=True)
class _Partial:
    count: int
    started: float
    chunks: dict[int, bytes] = field(default_factory=dict)


class Reassembler:
    """Collects fragments per (source, set id) until a set is complete.

    ``max_sets`` bounds memory; ``timeout`` (seconds) drops sets that never complete.
    """

    def __init__(self, *, max_sets: int = 256, timeout: float = 900.0) -> None:
        self.max_sets = max_sets
        self.timeout = timeout
        self._sets: OrderedDict[tuple[str, bytes], _Partial] = OrderedDict()
        self.dropped = 0

    def add(self, source: str, fragment: Fragment, now: float) -> bytes | None:
        """Add a fragment; return the whole frame's bytes when this fragment completes its set."""
        self.expire(now)
        key = (source, fragment.set_id)
        partial = self._sets.get(key)
        if partial is None:
            while len(self._sets) >= self.max_sets:
                self._sets.popitem(last=False)
                self.dropped += 1
            partial = self._sets[key] = _Partial(fragment.count, now)
        elif partial.count != fragment.count:
            raise ProtocolError("fragment count differs within one set")
        partial.chunks[fragment.index] = fragment.chunk
        if len(partial.chunks) < partial.count:
            return None
        del self._sets[key]
        whole = b"".join(partial.chunks[i] for i in range(partial.count))
        if hashlib.sha256(whole).digest()[:4] != fragment.set_id:
            raise ProtocolError("reassembled frame does not match its set id")
        return whole

    def missing(self, source: str, set_id: bytes) -> list[int]:
        partial = self._sets.get((source, set_id))
        if partial is None:
            return []
        return [i for i in range(partial.count) if i not in partial.chunks]

    def expire(self, now: float) -> None:
        while self._sets:
            key, partial = next(iter(self._sets.items()))
            if now - partial.started < self.timeout:
                break
            del self._sets[key]
            self.dropped += 1

    def __len__(self) -> int:
        return len(self._sets)
