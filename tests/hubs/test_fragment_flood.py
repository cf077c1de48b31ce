"""Unsigned fragments cannot fill a hub's memory: a keyless flood of fragment sets that never complete,
against a real ``beredt run`` process, is refused and counted, and the hub keeps relaying. (The precise
memory figure against the 100 MB budget comes from ``bench/bench_fragment_flood.py``.)"""

from __future__ import annotations

from pathlib import Path

from tests.attacker import fragment_flood, rss_mb
from tests.hubproc import staff_and_care_home

RSS_CEILING_MB = 150  # loose: the interpreter's own size varies; the bench holds the 100 MB budget


def test_128_never_completed_fragment_sets_stay_within_budget(tmp_path: Path) -> None:
    staff, home = staff_and_care_home(tmp_path)
    staff.start()
    home.start()
    try:
        # Sets as large as the internet link carries (the old reassembler held 4 MB per set) ...
        assert fragment_flood(staff, sets=128, fragments=40, chunk=16_000) > 0
        # ... and sets shaped to pass the per-set limit, from 128 made-up sources.
        fragment_flood(staff, sets=128, fragments=3, chunk=1_000, count=4)

        health = staff.get("/healthz")
        reassembly = health["reassembly"]
        assert health["refused"]["reassembly-limit"] >= 128 * 40, health["refused"]
        assert reassembly["refused"] >= 128 * 40
        assert 0 < reassembly["bytes"] <= reassembly["budget_bytes"], reassembly
        assert rss_mb(staff) < RSS_CEILING_MB

        message_id = staff.send(home.node_id, "text", "Vand til fløj B")
        home.wait_for(
            "the message sent after the flood", lambda: any(m["id"] == message_id for m in home.inbox())
        )
    finally:
        staff.kill()
        home.kill()
