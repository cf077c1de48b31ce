"""How urgent a frame is, from its first bytes, before any signature is checked.

Only the order of work depends on it, never trust: a forged "ack" ranked urgent is still verified (and
refused) like any frame, and every queue it can enter stays bounded. Real traffic goes first: a frame of
an exercise or a test (CAP status not Actual) ranks as routine, whatever priority it claims, and the
router queues it behind every real frame (``is_drill``).
"""

from __future__ import annotations

from hub.core.frame import VERSION, Kind, Priority, Status
from hub.core.ranked import URGENT_RANK

_ACK_KINDS = frozenset({Kind.ACK, Kind.HOP_ACK})
_READ_FIRST = _ACK_KINDS | {Kind.EXERCISE_CONTROL}
"""Acks, and an exercise's control: the end of a simulated outage must act before the frames that came
with it are judged, or they would be ignored as if the link were still down."""
_PRIORITY_BITS = 0x03
_STATUS_SHIFT = 2


def frame_rank(data: bytes) -> int:
    """``URGENT_RANK`` for an unfragmented ack or exercise control (kind, byte 3), else the frame's
    priority (flags byte 2, bits 0-1). A fragment (or anything that is not a version-1 frame) cannot be
    read this cheaply and ranks as normal data."""
    if len(data) < 4 or data[0] != VERSION:
        return int(Priority.NORMAL)
    if data[3] in _READ_FIRST:
        return URGENT_RANK
    if is_drill(data):
        return int(Priority.ROUTINE)
    return data[2] & _PRIORITY_BITS


def is_exercise_control(data: bytes) -> bool:
    """Whether unchecked bytes claim to be an unfragmented EXERCISE_CONTROL (kind, byte 3): only the
    order of work depends on it, the frame is verified like any other."""
    return len(data) >= 4 and data[0] == VERSION and data[3] == Kind.EXERCISE_CONTROL


def is_drill(data: bytes) -> bool:
    """Whether a version-1 frame is marked Exercise or Test (flags byte 2, bits 2-3): not the real thing."""
    if len(data) < 4 or data[0] != VERSION:
        return False
    return (data[2] >> _STATUS_SHIFT) & 0x03 in (Status.EXERCISE, Status.TEST)
