"""A hub's own account of an exercise (EXERCISE_SUMMARY) always fits in one frame: link changes beyond
what it can carry are counted, not dropped silently, and the message says how many."""

from __future__ import annotations

from hub.core.frame import Kind
from hub.core.kinds import decode_payload
from hub.core.kinds.catalog import MAX_SUMMARY_CHANGES
from hub.exercise.summary import encode_within_limit

NOW = 1_800_000_000


def test_the_summary_leaves_out_the_latest_changes_when_names_are_long() -> None:
    changes = [
        {"at": NOW + i, "link": "l" * 32, "peer": "00112233aabbccdd", "old": "up", "new": "down",
         "reason": "r" * 40}
        for i in range(MAX_SUMMARY_CHANGES)
    ]  # fmt: skip
    use = [{"link": f"{i:02d}" + "x" * 30, "messages": 9, "sends": 9, "bytes": 9999} for i in range(16)]
    body = {"exercise": "0a1b2c3d", "from": NOW, "until": NOW + 60, "final": 1, "changes": changes,
            "left_out": 5, "use": use}  # fmt: skip
    decoded = decode_payload(Kind.EXERCISE_SUMMARY, encode_within_limit(dict(body, changes=list(changes))))
    assert isinstance(decoded, dict)
    kept = len(decoded["changes"])
    assert 0 < kept < MAX_SUMMARY_CHANGES and decoded["changes"] == changes[:kept]
    assert decoded["left_out"] == 5 + MAX_SUMMARY_CHANGES - kept and decoded["use"] == use
