"""``beredt data search|export|erase``: subject access and erasure for one person, over the hub's API.

The running hub searches what it can open (``hub.console.subject_access``): its store and its console's
records. ``export`` writes what was found as JSON or CSV for the person's request; ``erase`` erases it
after showing how much it is and asking (``--yes`` skips the question, for scripts).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from hub.cli.danish_argparse import DanishFormatter
from hub.cli.remote import EXIT_OK, api_call, load_config, local_time, print_table
from hub.console.subject_access import Finding, export_csv, export_json
from hub.core.errors import UsageError

PLACES = {
    "message": "besked",
    "sent": "sendt",
    "board": "statustavle",
    "rollcall": "statusrunde",
    "logbook": "logbog",
}


def add_data_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    data = sub.add_parser(
        "data",
        parents=[common],
        help="personoplysninger: find, eksportér eller slet alt om én person (navn eller CPR-nummer)",
        formatter_class=DanishFormatter,
        epilog="eksempler:\n"
        '  beredt data search "Karen Vinterberg"\n'
        "  beredt data export 170345-1234 --format csv --out indsigt.csv\n"
        "  beredt data erase 170345-1234 --by hansen",
    )
    actions = data.add_subparsers(dest="action", required=True, metavar="HANDLING")
    search = actions.add_parser("search", parents=[common], help="vis hvad hubben har om personen")
    search.add_argument("term", help="et navn eller et CPR-nummer (mindst 3 tegn)")
    search.add_argument("--json", action="store_true", help="API'ets JSON i stedet for en tabel")
    export = actions.add_parser("export", parents=[common], help="skriv det fundne som JSON eller CSV")
    export.add_argument("term")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--out", type=Path, help="filen, der skrives (0600); standard: standard-output")
    erase = actions.add_parser("erase", parents=[common], help="slet alt fundet om personen")
    erase.add_argument("term")
    erase.add_argument("--by", default=os.environ.get("USER", "cli"), help="hvem der sletter (til logbogen)")
    erase.add_argument("--yes", action="store_true", help="spørg ikke først")
    data.set_defaults(func=cmd_data)


def cmd_data(args: argparse.Namespace) -> int:
    config = load_config(args)
    findings = [
        Finding(**item)
        for item in api_call(config, "POST", "/v1/data/search", {"term": args.term})["findings"]
    ]
    if args.action == "search":
        if args.json:
            print(export_json(findings))
        elif not findings:
            print("intet fundet")
        else:
            _table(findings)
        return EXIT_OK
    if args.action == "export":
        text = export_csv(findings) if args.format == "csv" else export_json(findings) + "\n"
        if args.out is None:
            sys.stdout.write(text)
        else:
            _write_private(args.out, text)
            print(f"{len(findings)} fund skrevet til {args.out}")
        return EXIT_OK
    if not findings:
        print("intet fundet: intet at slette")
        return EXIT_OK
    _table(findings)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("sletning skal bekræftes: kør i en terminal, eller giv --yes")
        if input(f"Slet disse {len(findings)} fund for altid? Skriv 'slet': ").strip() != "slet":
            print("intet slettet")
            return EXIT_OK
    done = api_call(config, "POST", "/v1/data/erase", {"term": args.term, "by": args.by})
    print(f"slettet: {done['messages']} beskeder, {done['sent']} sendte, {done['board']} statusser,"
          f" {done['rollcall']} svar på statusrunder, {done['notes']} logbogstekster")  # fmt: skip
    return EXIT_OK


def _table(findings: list[Finding]) -> None:
    rows = [
        (PLACES.get(f.place, f.place), f.id[:16], local_time(f.time) if f.time else "", f.kind, f.sender,
         f.recipient, f.content[:60])
        for f in findings
    ]  # fmt: skip
    print_table(("HVOR", "ID", "TID", "SLAGS", "FRA", "TIL", "INDHOLD"), rows)


def _write_private(path: Path, text: str) -> None:
    """Personal data: the file is the requester's, readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
