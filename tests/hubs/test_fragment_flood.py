"""Unsigned fragments cannot fill a hub's memory: a keyless flood of fragment sets that never complete,
against a real ``beredt run`` process, is refused and counted, the process stays within the 100 MB memory
budget throughout (resident memory sampled every 0.1 s while the flood runs, as
``bench/bench_fragment_flood.py`` does with a larger flood), and the hub keeps relaying."""

from __future__ import annotations

from pathlib import Path

from hub.core.fragment import Reassembler
from tests.attacker import fragment_flood, peak_rss_mb
from tests.hubproc import staff_and_care_home

RSS_BUDGET_MB = 100.0  # the relay's budget; about 62 MB measured idle and at the peak of this flood


def test_128_never_completed_fragment_sets_stay_within_budget(tmp_path: Path) -> None:
    staff, home = staff_and_care_home(tmp_path)
    staff.start()
    home.start()
    try:
        with peak_rss_mb(staff) as peak:
            # Sets as large as the internet link carries (the old reassembler held 4 MB per set) ...
            assert fragment_flood(staff, sets=128, fragments=40, chunk=16_000) > 0
            # ... and sets shaped to pass the per-set limit, each under its own made-up reply-to.
            fragment_flood(staff, sets=128, fragments=3, chunk=1_000, count=4)
            health = staff.get("/healthz")

        reassembly = health["reassembly"]
        assert health["refused"]["reassembly-limit"] >= 128 * 40, health["refused"]
        assert reassembly["refused"] >= 128 * 40
        assert 0 < reassembly["bytes"] <= reassembly["budget_bytes"], reassembly
        # The reply-to is the sender's claim: all 128 sets came from one address and count as one source,
        # which keeps only its own share and cannot push out other senders' sets.
        share = Reassembler().max_sets_per_source
        assert reassembly["sets"] <= share and reassembly["evicted"] >= 128 - share, reassembly
        assert peak.value <= RSS_BUDGET_MB, f"peak resident memory {peak.value:.1f} MB"

        message_id = staff.send(home.node_id, "text", "Vand til fløj B")
        home.wait_for(
            "the message sent after the flood", lambda: any(m["id"] == message_id for m in home.inbox())
        )
    finally:
        staff.kill()
        home.kill()
