"""Memory of a relay under a keyless fragment flood (budget: RSS <= 100 MB).

The attack: fragment sets that never complete, as large as the internet link carries (255 fragments of
16,000 bytes each, of which all but one are sent), each set under its own made-up reply-to address. No
key is needed: fragments are reassembled before any signature can be checked. The relay is a real
``beredt run`` process with a care-home peer; its resident memory is read from ``/proc/<pid>`` every 0.1 s
while the flood runs. Then a second flood, four times as many sets shaped to pass the per-set limit (four
fragments of 1,000 bytes, three sent), from 16 loopback addresses (each holds at most its own share of
32 sets, together more than the 256 the reassembler holds), fills the reassembler to its bounds. The
figures printed are: RSS
idle before the flood (the floor, same run), peak RSS during each flood, the bytes the reassembler held
and its budget, and the refusals and evictions ``/healthz`` counted.

    .venv/bin/python bench/bench_fragment_flood.py              # 128 sets x 254 fragments (~520 MB sent)
    .venv/bin/python bench/bench_fragment_flood.py --fragments 60
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.attacker import fragment_flood, peak_rss_mb, rss_mb  # noqa: E402 - the repository root goes on the path first
from tests.hubproc import HubProcess, staff_and_care_home  # noqa: E402

RSS_BUDGET_MB = 100.0
ADDRESSES = 16  # sources of the second flood: 16 x 32 sets is more than the reassembler's 256


def flood_peak(relay: HubProcess, **flood: int) -> tuple[float, float]:
    """Run one flood; return (its peak RSS in MB, seconds it took)."""
    started = time.monotonic()
    with peak_rss_mb(relay) as peak:
        fragment_flood(relay, **flood)
        time.sleep(1.0)  # let the hub drain what the link queued
    return peak.value, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=128)
    parser.add_argument("--fragments", type=int, default=254, help="fragments sent per large set (of 255)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        relay, home = staff_and_care_home(Path(folder))
        relay.start()
        home.start()
        try:
            time.sleep(3.0)  # settle: first probes, imports done
            idle = rss_mb(relay)
            big, big_seconds = flood_peak(relay, sets=args.sets, fragments=args.fragments, chunk=16_000)
            sent_mb = args.sets * args.fragments * 16_007 / 2**20
            small, small_seconds = flood_peak(
                relay, sets=4 * args.sets, fragments=3, chunk=1_000, count=4, addresses=ADDRESSES
            )
            health = relay.get("/healthz")
            message_id = relay.send(home.node_id, "text", "efter angrebet")
            home.wait_for(
                "a message after the flood", lambda: any(m["id"] == message_id for m in home.inbox())
            )
        finally:
            relay.kill()
            home.kill()
    reassembly = health["reassembly"]
    peak = max(big, small)
    print(f"idle RSS before the flood (floor):          {idle:6.1f} MB")
    print(
        f"peak RSS, {args.sets} sets x {args.fragments} x 16,000 B:   {big:6.1f} MB"
        f"  ({sent_mb:.0f} MB sent in {big_seconds:.0f} s)"
    )
    print(
        f"peak RSS, {4 * args.sets} sets shaped to pass, {ADDRESSES} addresses: {small:6.1f} MB"
        f"  ({small_seconds:.0f} s)"
    )
    print(
        f"reassembler holds {reassembly['bytes']:,} B in {reassembly['sets']} sets"
        f" (budget {reassembly['budget_bytes']:,} B)"
    )
    print(
        f"refused fragments {reassembly['refused']:,}, evicted sets {reassembly['evicted']:,},"
        f" /healthz refused: {health['refused']}"
    )
    print("a message sent after the flood was delivered")
    verdict = "within" if peak <= RSS_BUDGET_MB else "OVER"
    print(f"peak {peak:.1f} MB: {verdict} the {RSS_BUDGET_MB:.0f} MB budget")
    return 0 if peak <= RSS_BUDGET_MB else 1


if __name__ == "__main__":
    raise SystemExit(main())
