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
partial set: a lost fragment costs one fragment, not the whole message. Fragments are unsigned, so the
reassembler bounds what anyone can make it hold: bytes per set, per source and in total, the number of
sets and their age (see ``Reassembler``).
"""

from __future__ import annotations

import hashlib
import struct
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from hub.core.errors import ProtocolError, RefusalReason, TrustError
from hub.core.frame import MAX_FRAME

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
    size: int = 0


@dataclass(slots=True)
class ReassemblyStats:
    """What the reassembler holds and what it turned away, for ``/healthz``."""

    sets: int = 0
    bytes: int = 0
    refused: int = 0
    """Fragments refused because their set could never be a frame (larger than ``max_set_bytes``)."""
    evicted: int = 0
    """Partial sets dropped to make room: over the total byte budget or the sender's share."""
    expired: int = 0
    """Partial sets dropped because they did not complete within the timeout."""


class Reassembler:
    """Collects fragments per (source, set id) until a set is complete, within fixed memory.

    Fragments are unsigned (a set's signature is checked only once it is whole), so everything an
    unknown sender can make it hold is bounded: one set never grows past ``max_set_bytes`` (the largest
    frame there is: a fragment that would take it further is refused with ``TrustError``), all partial
    sets together stay within ``max_sets`` and ``max_bytes``, and one source holds at most
    ``max_sets_per_source`` sets and ``max_bytes_per_source`` bytes. Room is made by dropping the oldest
    set of the source that is over its share, else the oldest set overall; ``timeout`` (seconds) drops
    sets that never complete.
    """

    def __init__(
        self,
        *,
        max_sets: int = 256,
        timeout: float = 900.0,
        max_set_bytes: int = MAX_FRAME,
        max_bytes: int = 256 * MAX_FRAME,
        max_sets_per_source: int = 32,
        max_bytes_per_source: int = 32 * MAX_FRAME,
    ) -> None:
        self.max_sets = max_sets
        self.timeout = timeout
        self.max_set_bytes = max_set_bytes
        self.max_bytes = max_bytes
        self.max_sets_per_source = max_sets_per_source
        self.max_bytes_per_source = max_bytes_per_source
        self._sets: OrderedDict[tuple[str, bytes], _Partial] = OrderedDict()
        self._per_source: Counter[str] = Counter()
        self._bytes_of_source: Counter[str] = Counter()
        self.stats = ReassemblyStats()

    @property
    def dropped(self) -> int:
        return self.stats.evicted + self.stats.expired

    def add(self, source: str, fragment: Fragment, now: float) -> bytes | None:
        """Add a fragment; return the whole frame's bytes when this fragment completes its set.

        Raises ``ProtocolError`` for fragments that contradict their set and ``TrustError``
        (``reassembly-limit``) for a set that would outgrow the largest frame; either way the set is gone."""
        self.expire(now)
        key = (source, fragment.set_id)
        partial = self._sets.get(key)
        if partial is None:
            partial = self._sets[key] = _Partial(fragment.count, now)
            self._per_source[source] += 1
        elif partial.count != fragment.count:
            self._drop(key)
            raise ProtocolError("fragment count differs within one set")
        old = partial.chunks.get(fragment.index)
        grown = partial.size + len(fragment.chunk) - (len(old) if old is not None else 0)
        if grown > self.max_set_bytes or (fragment.count - 1) * len(fragment.chunk) > self.max_set_bytes:
            self._drop(key)
            self.stats.refused += 1
            raise TrustError(
                RefusalReason.REASSEMBLY_LIMIT,
                f"a set of {fragment.count} x {len(fragment.chunk)} bytes exceeds {self.max_set_bytes}",
            )
        partial.chunks[fragment.index] = fragment.chunk
        self._account(source, grown - partial.size)
        partial.size = grown
        if len(partial.chunks) < partial.count:
            self._make_room(source, keep=key)
            return None
        chunks = partial.chunks
        self._drop(key)
        whole = b"".join(chunks[i] for i in range(partial.count))
        if hashlib.sha256(whole).digest()[:4] != fragment.set_id:
            raise ProtocolError("reassembled frame does not match its set id")
        return whole

    def _account(self, source: str, delta: int) -> None:
        self._bytes_of_source[source] += delta
        self.stats.bytes += delta

    def _drop(self, key: tuple[str, bytes]) -> None:
        partial = self._sets.pop(key)
        source = key[0]
        self._account(source, -partial.size)
        self._per_source[source] -= 1
        if self._per_source[source] <= 0:
            del self._per_source[source]
            del self._bytes_of_source[source]
        self.stats.sets = len(self._sets)

    def _make_room(self, source: str, keep: tuple[str, bytes]) -> None:
        """Drop the oldest sets until every bound holds; a source over its share pays first."""
        while (
            self._per_source[source] > self.max_sets_per_source
            or self._bytes_of_source[source] > self.max_bytes_per_source
        ):
            self._evict(next(k for k in self._sets if k[0] == source and k != keep))
        while len(self._sets) > self.max_sets or self.stats.bytes > self.max_bytes:
            self._evict(next(k for k in self._sets if k != keep))
        self.stats.sets = len(self._sets)

    def _evict(self, key: tuple[str, bytes]) -> None:
        self._drop(key)
        self.stats.evicted += 1

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
            self._drop(key)
            self.stats.expired += 1

    def __len__(self) -> int:
        return len(self._sets)
