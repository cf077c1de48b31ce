"""``beredt simulate``: run the telecom-collapse drill from the command line, for demos and exercises.

It starts the whole simulated world (five hubs, Mosquitto, the mesh, SINE, the Iridium provider) in a
folder, plays the stages, prints the stage-by-stage table and exits 0 only when every promise held.
With ``--keep-running`` the world stays up afterwards (or, with ``--stages none``, from the start) so a
planner can open the hubs' consoles, send messages and watch ``beredt links`` until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from drill import DrillError
from drill.stages import SILENT_STAGES, STAGES, StageResult, table
from hub.cli.danish_argparse import DanishParser

if TYPE_CHECKING:  # at run time imported where the drill starts
    from drill.runner import Drill

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LONG_ROUNDS = 5
ALL_HELD = "every check held: no loss, no duplicates, no routine traffic on the satellite"


def add_simulate_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``simulate`` on the ``beredt`` command's subparsers."""
    command = subparsers.add_parser(
        "simulate",
        help="kør øvelsen med telekollaps: fem hubber, alle forbindelser simuleret, fejl trin for trin",
        description=f"{len(STAGES)} trin, ét ad gangen; --stages vælger hvilke.",
    )
    command.add_argument("--short", action="store_true", help="én runde trafik pr. trin (som i CI)")
    command.add_argument(
        "--silent",
        action="store_true",
        help="internettet og brokeren svigter stille (pakker forsvinder; brokeren kvitterer og"
        " leverer intet) i stedet for højlydt (forbindelser afvist og nulstillet, brokeren dræbt)",
    )
    command.add_argument(
        "--stages",
        type=_stages,
        default=None,
        help="kommaseparerede trin at spille (standard: alle), eller 'none' for kun at starte verdenen",
    )
    command.add_argument(
        "--dir", type=Path, help="arbejdsmappe (standard: en midlertidig, der fjernes bagefter)"
    )
    command.add_argument(
        "--keep-running", action="store_true", help="lad verdenen køre efter trinene, indtil Ctrl-C"
    )
    command.set_defaults(func=cmd_simulate)


def _stages(text: str) -> list[int]:
    if text == "none":
        return []
    known = {s.number for s in STAGES}
    try:
        chosen = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected stage numbers such as 1,2,6; got {text!r}") from None
    unknown = sorted(set(chosen) - known)
    if unknown:
        raise argparse.ArgumentTypeError(f"no stage {unknown[0]}; stages are {sorted(known)}")
    return chosen


def cmd_simulate(args: argparse.Namespace) -> int:
    folder = args.dir or Path(tempfile.mkdtemp(prefix="beredt-drill-"))
    try:
        return asyncio.run(_simulate(folder, args))
    except KeyboardInterrupt:
        return EXIT_OK
    except DrillError as exc:
        print(f"beredt simulate: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if args.dir is None:
            shutil.rmtree(folder, ignore_errors=True)


async def _simulate(folder: Path, args: argparse.Namespace) -> int:
    # Imported here, not at the top: the drill pulls in every device simulator, which a hub's own
    # commands (``beredt run`` on a Pi) have no use for.
    from drill.runner import Drill
    from drill.script import Scenario

    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {text}", flush=True)

    say(f"starting the world in {folder}")
    async with Drill(folder) as drill:
        say("five hubs running: " + ", ".join(f"{k} {p.api_url}" for k, p in drill.plans.items()))
        scenario = Scenario(
            drill,
            rounds=1 if args.short else LONG_ROUNDS,
            log=say,
            stages=SILENT_STAGES if args.silent else STAGES,
        )
        results = await scenario.run(args.stages)
        problems = [f"stage {r.stage.number}: {p}" for r in results for p in r.problems]
        if results:
            print(table(results))
            print("\n".join(problems) if problems else ALL_HELD + _held_extra(results))
        if args.keep_running:
            await _hold(drill, say)
        if problems:
            for key, runner in drill.hubs.items():
                say(f"log of {key}: {runner.log_path}")
        return EXIT_FAILED if problems else EXIT_OK


def _held_extra(results: list[StageResult]) -> str:
    if results[-1].stage.number == STAGES[-1].number:
        return ", traffic back on the internet after the restore"
    waiting = sum(r.links["(waiting)"] for r in results)
    return (
        f"; {waiting} routine message(s) still wait for a free link (stage {STAGES[-1].number} restores it)"
        if waiting
        else ""
    )


async def _hold(drill: Drill, say: Callable[[str], None]) -> None:
    """Keep the world up until SIGINT or SIGTERM, printing where everything is."""
    for key, plan in drill.plans.items():
        say(f"{key:6} {plan.site.name}: API {plan.api_url}  config {plan.config_path}  node {plan.node_id}")
    say("try: beredt links --config <config>; stop with Ctrl-C")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """``python -m hub.cli.simulate simulate ...``: the same command without the rest of ``beredt``."""
    parser: argparse.ArgumentParser = DanishParser(prog="beredt")
    add_simulate_command(parser.add_subparsers(dest="command", required=True, metavar="KOMMANDO"))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
