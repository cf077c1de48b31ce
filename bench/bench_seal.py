"""What sealing and opening cost a hub, against what relaying a message costs it, in one process.

Figures, each against what it is compared with:

- seal + open per message, for a 100-byte status sealed to one recipient (DIRECT) and a 400-byte sitrep
  sealed as a broadcast to --readers readers (WRAPPED: the origin wraps a key per reader, one reader
  opens it), with the pair secrets already cached as in a running hub (the first message to a peer
  adds one X25519 exchange, timed separately).
- the Ed25519 verify floor measured in the same run, just before and just after: relaying a message
  costs a hub at least one signature check, so no hub relays faster than this floor. Sealing and
  opening are done once per message, at its two ends, never by relays; their cost as a share of one
  relayed message's cost is therefore at most (seal + open time) x verify rate. Budget <= 20 %.
- with --relay-rate (messages per second from bench/bench_relay.py on the same machine), the same
  share against that measured rate too.

    .venv/bin/python bench/bench_seal.py [--seconds 2] [--readers 10] [--relay-rate 1500]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.frame import BROADCAST, Kind
from hub.core.identity import Identity
from hub.core.seal import Context, SealingKey

BUDGET = 0.20


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``work`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(50):
        work()
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            work()
        count += 100
    return count / elapsed


def verify_floor(seconds: float) -> float:
    key = Ed25519PrivateKey.generate()
    message = b"\x01" * 180
    signature = key.sign(message)
    public = key.public_key()
    return rate(lambda: public.verify(signature, message), seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per figure")
    parser.add_argument("--readers", type=int, default=10, help="readers of the sealed broadcast")
    parser.add_argument("--relay-rate", type=float, help="messages/s measured by bench/bench_relay.py")
    args = parser.parse_args()

    sender = Identity.generate("Plejecenter Lindely", "care-home")
    readers = [Identity.generate(f"Hub {n}", "staff") for n in range(args.readers)]
    keys = {i.node_id: i.sealing_public for i in [sender, *readers]}
    sealer = SealingKey(sender.sealing_private, sender.node_id)
    opener = SealingKey(readers[-1].sealing_private, readers[-1].node_id)
    status, sitrep = b"s" * 100, b"r" * 400
    direct = Context(sender.node_id, readers[0].node_id, Kind.STATUS, 1_795_000_000, 7)
    wrapped = Context(sender.node_id, BROADCAST, Kind.SITREP, 1_795_000_000, 8)
    slots = [(r.node_id, r.sealing_public) for r in readers]
    direct_opener = SealingKey(readers[0].sealing_private, readers[0].node_id)
    sealed_status = sealer.seal_direct(status, readers[0].sealing_public, direct)
    sealed_sitrep = sealer.seal_wrapped(sitrep, slots, wrapped)

    floor_before = verify_floor(args.seconds)
    rows = {
        "seal status, 1 recipient": rate(
            lambda: sealer.seal_direct(status, readers[0].sealing_public, direct), args.seconds
        ),
        "open status, 1 recipient": rate(
            lambda: direct_opener.open(sealed_status, direct, keys), args.seconds
        ),
        f"seal sitrep, {args.readers} readers": rate(
            lambda: sealer.seal_wrapped(sitrep, slots, wrapped), args.seconds
        ),
        f"open sitrep, {args.readers} readers": rate(
            lambda: opener.open(sealed_sitrep, wrapped, keys), args.seconds
        ),
        "first message to a new peer (X25519)": rate(
            lambda: SealingKey(sender.sealing_private, sender.node_id).seal_direct(
                status, readers[0].sealing_public, direct
            ),
            args.seconds,
        ),
    }
    floor_after = verify_floor(args.seconds)
    floor = min(floor_before, floor_after)

    print(
        f"Ed25519 verify floor: {floor_before:,.0f}/s before, {floor_after:,.0f}/s after (using {floor:,.0f})"
    )
    for name, per_second in rows.items():
        print(f"  {name:<40} {per_second:>10,.0f}/s  {1e6 / per_second:7.1f} us")
    names = list(rows)
    for label, seal_name, open_name in (
        ("status to one recipient", names[0], names[1]),
        (f"sitrep to {args.readers} readers", names[2], names[3]),
    ):
        cost = 1 / rows[seal_name] + 1 / rows[open_name]
        share = cost * floor
        verdict = "within" if share <= BUDGET else "OVER"
        print(
            f"{label}: seal + open {cost * 1e6:.1f} us = {share:.0%} of one relayed message at the"
            f" verify floor ({verdict} the {BUDGET:.0%} budget)"
        )
        if args.relay_rate:
            print(
                f"  and {cost * args.relay_rate:.1%} of one relayed message at the measured"
                f" {args.relay_rate:,.0f}/s"
            )


if __name__ == "__main__":
    main()
