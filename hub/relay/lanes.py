"""How urgent a received frame is, from its first bytes, before any signature is checked.

Only the order of work depends on it, never trust: a forged "ack" ranked urgent is still verified (and
refused) like any frame, and every queue it can enter stays bounded.
"""

from __future__ import annotations

from hub.core.frame import VERSION, Kind, Priority
from hub.core.ranked import URGENT_RANK

_ACK_KINDS = frozenset({Kind.ACK, Kind.HOP_ACK})
_PRIORITY_BITS = 0x03


def frame_rank(data: bytes) -> int:
    """``URGENT_RANK`` for an unfragmented ack (kind, byte 3), else the frame's priority (flags byte 2,
    bits 0-1). A fragment (or anything that is not a version-1 frame) cannot be read this cheaply and
    ranks as normal data."""
    if len(data) < 4 or data[0] != VERSION:
        return int(Priority.NORMAL)
    if data[3] in _ACK_KINDS:
        return URGENT_RANK
    return data[2] & _PRIORITY_BITS
