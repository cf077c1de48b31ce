"""What sealing frames at rest costs a hub (``hub.core.at_rest``), against what relaying a message costs it.

Unlike sealing to a recipient, sealing at rest happens at every hub a frame passes: the store seals it
on accept (``FrameVault.seal``: the day key's id and ChaCha20-Poly1305) and opens it whenever it is read
again (resumed after a restart, shown, checked at start). Figures, each against what it is compared with:

- seal + open per frame, for a 180-byte status frame and a 1,200-byte sitrep frame, with the day key
  cached as in a running hub (the first frame of a day reads or makes its key file, timed separately).
- the Ed25519 verify floor measured in the same run, just before and just after: relaying a message
  costs a hub at least one signature check, so the share of one relayed message's cost is at most
  (seal + open time) x verify rate. Budget <= 20 %.
- with --relay-rate (messages per second from bench/bench_relay.py on the same machine), the same share
  against that measured rate too.
- what opening every frame at start adds for a full store (200,000 messages by default).

    .venv/bin/python bench/bench_at_rest.py [--seconds 2] [--relay-rate 1500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_seal import BUDGET, rate, verify_floor
from hub.core.at_rest import DataKeys, Retention
from hub.core.frame import Kind, decode_frame
from hub.core.identity import Identity
from hub.relay.store_at_rest import FrameVault

FULL_STORE = 200_000


def seal_and_open(vault: FrameVault, name: str, wire: bytes, now: float, seconds: float) -> dict[str, float]:
    frame = decode_frame(wire)
    key_id, sealed = vault.seal(frame, wire, now)
    return {
        f"seal {name} ({len(wire)} bytes)": rate(lambda: vault.seal(frame, wire, now), seconds),
        f"open {name} ({len(wire)} bytes)": rate(lambda: vault.open(frame.id, key_id, sealed), seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per figure")
    parser.add_argument("--relay-rate", type=float, help="messages/s measured by bench/bench_relay.py")
    args = parser.parse_args()

    sender = Identity.generate("Plejecenter Lindely", "care-home")
    recipient = Identity.generate("Aarhus krisestab", "staff").node_id
    now = time.time()
    frames = {
        "status": sender.sign(Kind.STATUS, recipient, b"s" * 80, created=int(now), ttl_minutes=60).encode(),
        "sitrep": sender.sign(Kind.SITREP, recipient, b"r" * 1100, created=int(now), ttl_minutes=60).encode(),
    }
    with tempfile.TemporaryDirectory() as folder:
        vault = FrameVault(DataKeys(Path(folder) / "keys"), Retention())
        floor_before = verify_floor(args.seconds)
        rows: dict[str, float] = {}
        for name, wire in frames.items():
            rows.update(seal_and_open(vault, name, wire, now, args.seconds))
        day = [0]

        def first_of_a_day() -> object:
            day[0] += 1
            return vault.seal(decode_frame(frames["status"]), frames["status"], now + 86400 * day[0])

        rows["first frame of a day (key file made)"] = rate(first_of_a_day, args.seconds / 4)
        floor_after = verify_floor(args.seconds)
    floor = min(floor_before, floor_after)

    print(
        f"Ed25519 verify floor: {floor_before:,.0f}/s before, {floor_after:,.0f}/s after (using {floor:,.0f})"
    )
    for name, per_second in rows.items():
        print(f"  {name:<40} {per_second:>10,.0f}/s  {1e6 / per_second:7.1f} us")
    names = list(rows)
    for label, seal_name, open_name in (("status", names[0], names[1]), ("sitrep", names[2], names[3])):
        cost = 1 / rows[seal_name] + 1 / rows[open_name]
        share = cost * floor
        verdict = "within" if share <= BUDGET else "OVER"
        print(
            f"{label}: seal + open at rest {cost * 1e6:.1f} us = {share:.0%} of one relayed message at the"
            f" verify floor ({verdict} the {BUDGET:.0%} budget)"
        )
        if args.relay_rate:
            measured = f"{args.relay_rate:,.0f}/s"
            print(f"  and {cost * args.relay_rate:.1%} of one relayed message at the measured {measured}")
    start = FULL_STORE / rows[names[1]]
    print(f"opening every status frame of a full store ({FULL_STORE:,}) at start adds {start:.1f} s")


if __name__ == "__main__":
    main()
