"""``beredt exercise report ID --out DIR``: the after-action report of an exercise, from the hub's files.

Run it on the hub the exercise was run from (its data folder holds the exercise journal, ``store.db`` and
``console.db``). The running hub holds ``store.db`` for itself alone (``hub.relay.store_file``): beside it
the command stops at once and says to stop the hub first or to get the report from the console, which
draws the same report inside the hub. Writes ``rapport.html``, ``rapport.pdf``, the charts and the CSV
files into DIR. The charts and the PDF need the optional ``report`` extra; without it the command says how
to install it and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import time
from pathlib import Path

from hub.cli.remote import load_config
from hub.core.clock import SystemClock
from hub.core.errors import ConfigError, StoreHeld
from hub.exercise.record import ExerciseRecord
from hub.exercise.report import missing_libraries, write_report
from hub.exercise.report.collect import collect
from hub.exercise.report.from_record import EXERCISES_DB, exercise_facts, hub_facts, payload_opener
from hub.exercise.report.model import ReportInput
from hub.relay.roster import Roster
from hub.service.config import HubConfig
from hub.service.node_identity import load_identity

EXIT_OK = 0
CONSOLE_REPORT = "/console/api/exercise-report/{id}/rapport.html"
"""Where the console serves the same report (``hub.console.exercise_report``), on the hub's own address."""


def add_report_command(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``report`` on the ``beredt exercise`` command's actions (``common`` carries ``--config``)."""
    report = actions.add_parser(
        "report",
        parents=[common],
        help="evalueringsrapporten for en øvelse: HTML, PDF og CSV",
        description="Skriver evalueringsrapporten for øvelse ID (se 'beredt exercise status') i en "
        "mappe: rapport.html, rapport.pdf (A4, til beredskabskommissionen), figurer/*.png og "
        "csv/*.csv (til kommunens egen evaluering). Kør den på den koordinerende hub, når hubben er "
        "stoppet (den kørende hub låser lageret; konsollen viser den samme rapport); den læser kun.",
        epilog="eksempel: beredt exercise report 3f9a1c2e --out ~/evaluering-stroemsvigt",
    )
    report.add_argument("id", help="øvelsens id")
    report.add_argument("--out", required=True, type=Path, help="mappen, rapporten skrives i")
    report.set_defaults(func=cmd_exercise_report)


def cmd_exercise_report(args: argparse.Namespace) -> int:
    missing = missing_libraries()
    if missing:  # before any work: say at once what to install
        raise ConfigError(
            f"rapporten kræver {', '.join(missing)}: pip install 'beredt[report]'"
            " (på en Pi også: sudo apt install libpango-1.0-0 libpangoft2-1.0-0)"
        )
    config = load_config(args)
    try:
        facts = asyncio.run(_facts(config, args.id))
    except StoreHeld as exc:
        if not hub_running(config):
            raise StoreHeld(
                f"lageret {config.store_path} er åbent i et andet program (en sqlite3-skal, en anden"
                " rapport?); hubben kører ikke: luk det program, og kør kommandoen igen"
            ) from None
        raise StoreHeld(
            f"{exc}, eller hent rapporten i konsollen: fanen Øvelse, 'Evalueringsrapport'"
            f" ({CONSOLE_REPORT.format(id=args.id)})"
        ) from None
    files = write_report(facts, args.out.expanduser())
    print(f"Rapport: {files.html}")
    print(f"PDF:     {files.pdf}")
    print(f"CSV:     {files.csv[0].parent}/ ({len(files.csv)} filer)")
    return EXIT_OK


def hub_running(config: HubConfig) -> bool:
    """Whether a ``beredt run`` holds this data folder (``HubConfig.lock_path``): when the store is held and
    no hub runs, another program (a ``sqlite3`` shell, a second report) has it open, and stopping the hub
    would not help. True when it cannot be told (the lock file unreadable for this user)."""
    try:
        fd = os.open(config.lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:  # held: a hub runs
        return True
    finally:
        os.close(fd)  # also lets go of a lock taken here
    return False


async def _facts(config: HubConfig, exercise_id: str) -> ReportInput:
    journal = config.data_dir / EXERCISES_DB
    if not journal.is_file():
        raise ConfigError(
            f"ingen øvelsesjournal i {journal}: lav rapporten på den hub, øvelsen blev kørt fra"
        )
    record = await ExerciseRecord.open(journal, SystemClock())
    try:
        exercise, participant_names = await exercise_facts(record, exercise_id)
    finally:
        await record.aclose()
    identity = load_identity(config, create=False)
    roster = Roster.load(identity.card, config.roster_path)
    names = {entry.node_id.hex(): entry.name for entry in roster} | participant_names
    return collect(exercise, hub_facts(config, names, payload_opener(identity, roster)), now=time.time())
