"""Failover budgets, measured on the telecom-collapse drill: link death -> detected <= 3 s, first
delivery over the next link <= 5 s, zero loss.

Each run starts the whole drill world (five ``beredt run`` processes, Mosquitto, the fake LoRa mesh,
SINE and Iridium simulators; see ``drill``) and plays the six stages. Per stage it reports, from
the fault (or the restore) onwards: when the staff hub's ``/v1/links`` showed the watched link down
(after the restore: up again at every hub), when the first sitrep sent at the fault reached the care
home's inbox and over which link, and how many accepted messages were lost or duplicated. With
several runs the table shows the median and the worst.

Two kinds of fault, each with its own table: ``loud`` (the internet's connections are refused and
reset, the broker is killed) and ``silent`` (connections open and hang, nothing passes either way:
packets vanish, the broker's sessions stay up and carry nothing). A silent fault is the harder one:
nothing tells the hubs, they must notice by waiting. Stage 6 is silent in both tables: the staff hub's
SINE radio hangs with its cable in, and its row is the mute radio's figure (SINE down at the staff
hub, first sitrep to home1 over LoRa through the relay).

    .venv/bin/python bench/bench_failover.py [--runs 3] [--rounds 1] [--faults loud|silent|both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drill.runner import Drill
from drill.script import Scenario
from drill.stages import (
    DETECTION_BUDGET,
    FIRST_DELIVERY_BUDGET,
    SILENT_STAGES,
    STAGES,
    Stage,
    StageResult,
)

FAULTS = {"loud": STAGES, "silent": SILENT_STAGES}


async def one_run(rounds: int, stages: tuple[Stage, ...]) -> list[StageResult]:
    with tempfile.TemporaryDirectory(prefix="beredt-bench-failover-") as folder:
        async with Drill(Path(folder)) as drill:
            return await Scenario(drill, rounds=rounds, stages=stages).run()


def spread(values: list[float | None]) -> str:
    seen = [v for v in values if v is not None]
    if not seen:
        return "-"
    if len(seen) < len(values):
        return f"{statistics.median(seen):.2f} / never"
    return f"{statistics.median(seen):.2f} / {max(seen):.2f}"


def verdict(values: list[float | None], budget: float) -> str:
    return "ok" if all(v is not None and v <= budget for v in values) else "OVER"


async def run(args: argparse.Namespace) -> int:
    failed = False
    for fault in ("loud", "silent") if args.faults == "both" else (args.faults,):
        failed |= await measure(fault, FAULTS[fault], args)
    print(
        f"\nbudgets: detection <= {DETECTION_BUDGET:.0f} s (link state down in /v1/links at the staff hub),"
        f" first delivery over the next link <= {FIRST_DELIVERY_BUDGET:.0f} s, zero loss;"
        f" stage {STAGES[-1].number} (the restore) is measured, not budgeted: its times run from the"
        " restore to the link being up at every hub and to the first delivery over the internet, while"
        " the other links carry the traffic"
    )
    return 1 if failed else 0


async def measure(fault: str, stages: tuple[Stage, ...], args: argparse.Namespace) -> bool:
    """Play ``args.runs`` drills with ``fault``-kind faults, print their table; True if any budget or
    promise was missed."""
    per_stage: dict[int, list[StageResult]] = defaultdict(list)
    for n in range(args.runs):
        started = time.monotonic()
        for result in await one_run(args.rounds, stages):
            per_stage[result.stage.number].append(result)
        print(f"{fault} faults, run {n + 1}/{args.runs}: {time.monotonic() - started:.1f} s", flush=True)
    header = ("stage", "fault", "detected s (median / max)", "", "1st delivery s (median / max)", "",
              "via", "messages", "lost", "dup", "problems")  # fmt: skip
    rows = [header]
    failed = False
    for stage in stages:
        results = per_stage[stage.number]
        detected = [r.detected for r in results]
        first = [r.first_delivery for r in results]
        lost = sum(r.lost for r in results)
        duplicates = sum(r.duplicates for r in results)
        problems = sum(len(r.problems) for r in results)
        has_fault = stage.target == "down"
        detect_ok = verdict(detected, DETECTION_BUDGET) if has_fault else ""
        first_ok = verdict(first, FIRST_DELIVERY_BUDGET) if has_fault else ""
        failed |= "OVER" in (detect_ok, first_ok) or bool(lost or duplicates or problems)
        rows.append((
            str(stage.number), stage.title, spread(detected) if stage.link else "-", detect_ok,
            spread(first), first_ok, ",".join(sorted({r.first_via or "-" for r in results})),
            str(sum(len(r.sent) for r in results)), str(lost), str(duplicates), str(problems),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print(f"\n{fault} faults ({args.runs} runs)")
    for index, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
    for stage in stages:
        for result in per_stage[stage.number]:
            for problem in result.problems:
                print(f"{fault} stage {stage.number}: {problem}")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="whole drills to play (default 3)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of traffic per stage (default 1)")
    parser.add_argument(
        "--faults", choices=["loud", "silent", "both"], default="both", help="kind of fault (default both)"
    )
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
