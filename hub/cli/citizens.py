"""``beredt citizens``: the register of power-dependent citizens from the shell (docs/citizens.md).

The commands work on ``citizens.db`` in the hub's data folder, like ``beredt user`` on ``console.db``:
SQLite in WAL mode lets the running hub and the CLI open it together. An outage marked here is picked
up by the running hub at its next tick (``[citizens] tick_interval``, 2 s), which builds and sends the
lists. Whoever runs these commands can read the hub's data folder, so they act as a coordinator; the
register's access log names them by their user name on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.citizens.desk import Desk
from hub.citizens.followup import OUTCOME_DANISH, Entry
from hub.citizens.records import EQUIPMENT_DANISH, to_csv
from hub.citizens.register import Reader
from hub.citizens.sample import sample_csv
from hub.cli.danish_argparse import DanishFormatter
from hub.cli.remote import api_call, load_config, print_table, recipient
from hub.console.messages import local_zone
from hub.core.clock import SystemClock
from hub.core.errors import UsageError
from hub.core.handhelds import FILE_NAME as HANDHELDS_FILE
from hub.core.handhelds import load_handhelds
from hub.core.kinds.followup import OUTCOME
from hub.service.config import HubConfig

EXIT_OK, EXIT_REJECTED = 0, 1


def add_citizens_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    citizens = subparsers.add_parser(
        "citizens",
        parents=[common],
        help="registret over strømafhængige borgere: import, outage, list, visit, evacuate, erase, export,"
        " log, sample",
        formatter_class=DanishFormatter,
        epilog="eksempler:\n"
        "  beredt citizens sample --count 40 --district Nord --district Syd > borgere.csv\n"
        "  beredt citizens import borgere.csv\n"
        "  beredt citizens outage --district Nord --district Syd\n"
        "  beredt citizens list\n"
        "  beredt citizens evacuate 0a0b0c0d 1a2b3c4d   # transport fra distriktets evakueringscenter\n"
        "  beredt citizens export --district Nord > nord.csv   # til Nord-teamets hub",
    )
    actions = citizens.add_subparsers(dest="action", required=True, metavar="HANDLING")
    imported = actions.add_parser("import", parents=[common], help="importér omsorgssystemets CSV-udtræk")
    imported.add_argument("file", type=Path)
    outage = actions.add_parser(
        "outage", parents=[common], help="markér et strømsvigt (eller afslut et med --end)"
    )
    outage.add_argument("--district", action="append", default=[], help="et distrikt uden strøm")
    outage.add_argument("--address", action="append", default=[], help="en gade eller et hus uden strøm")
    outage.add_argument("--started", help="hvornår strømmen gik, ISO 8601 (standard: nu)")
    outage.add_argument("--end", metavar="SVIGT", help="strømmen er tilbage i dette svigt")
    listing = actions.add_parser("list", parents=[common], help="opfølgningslisten, mest presserende først")
    listing.add_argument("--district")
    listing.add_argument("--register", action="store_true", help="hele registret i stedet")
    listing.add_argument("--json", action="store_true", help="JSON til scripts i stedet for en tabel")
    visit = actions.add_parser(
        "visit",
        parents=[common],
        help="notér hvad et besøg fandt (sendes videre til hubben, der sendte listen)",
    )
    visit.add_argument("citizen")
    visit.add_argument(
        "outcome", choices=OUTCOME.names, help=", ".join(f"{k}: {v}" for k, v in OUTCOME_DANISH.items())
    )
    visit.add_argument("--at", help="hvornår, ISO 8601 (standard: nu)")
    visit.add_argument("--outage", help="strømsvigtet, når borgeren er på mere end én liste")
    evacuate = actions.add_parser(
        "evacuate", parents=[common], help="bed evakueringscentret om transport (kræver den kørende hub)"
    )
    evacuate.add_argument("citizen", nargs="+", help="register-id på borgere på en opfølgningsliste")
    evacuate.set_defaults(trailing="citizen")  # ids after -c FILE belong to the list too
    evacuate.add_argument(
        "--centre", help="centrets hub: node-id eller navn (standard: [citizens.centres] for distriktet)"
    )
    erase = actions.add_parser("erase", parents=[common], help="slet én person (personens register-id)")
    erase.add_argument("citizen")
    export = actions.add_parser("export", parents=[common], help="registret som CSV med id'er, til et team")
    export.add_argument("--district", action="append", default=[])
    access = actions.add_parser("log", parents=[common], help="registrets adgangslog (hvem læste hvad)")
    access.add_argument("--limit", type=int, default=200)
    sample = actions.add_parser("sample", parents=[common], help="et opdigtet register (CPR-dag 00)")
    sample.add_argument("--count", type=int, default=40)
    sample.add_argument("--district", action="append", default=[])
    sample.add_argument("--seed", type=int, default=16)
    citizens.set_defaults(func=cmd_citizens)


def cmd_citizens(args: argparse.Namespace) -> int:
    if args.action == "sample":
        if not 1 <= args.count <= 20_000:
            raise UsageError("--count: mellem 1 og 20000")
        sys.stdout.write(
            sample_csv(args.count, args.district or ["Nord", "Syd", "Øst", "Vest"], seed=args.seed)
        )
        return EXIT_OK
    work: dict[str, Callable[[argparse.Namespace, Desk], Coroutine[Any, Any, int]]] = {
        "import": _import,
        "outage": _outage,
        "list": _list,
        "erase": _erase,
        "export": _export,
        "log": _access_log,
        "visit": _visit,
        "evacuate": _evacuate,
    }
    config = load_config(args)
    if args.action == "import":
        args.text = _read_export(args.file)  # before the register is opened (and, the first time, made)
    return asyncio.run(
        _with_desk(config, lambda desk: work[args.action](args, desk), args.action == "import")
    )


async def _with_desk(
    config: HubConfig, work: Callable[[Desk], Coroutine[Any, Any, int]], create: bool
) -> int:
    config.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    desk = await Desk.open(config.data_dir, SystemClock(), config.citizens, create=create)
    try:
        return await work(desk)
    finally:
        await desk.aclose()


def _reader() -> Reader:
    return Reader(f"cli:{getpass.getuser()}", "coordinator")


def _read_export(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"kan ikke læse {path}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Danish spreadsheets often save CSV as Windows-1252; every byte decodes, so say so
        print(f"{path} er ikke UTF-8: læst som Windows-1252 (tjek æ, ø og å i rapporten)", file=sys.stderr)
        return raw.decode("cp1252", errors="replace")


async def _import(args: argparse.Namespace, desk: Desk) -> int:
    try:
        report = await desk.register.import_csv(args.text, _reader())
    except ValueError as exc:
        raise UsageError(f"{args.file}: {exc}") from None
    print("\n".join(report.lines()))
    return EXIT_REJECTED if report.rejected else EXIT_OK


async def _outage(args: argparse.Namespace, desk: Desk) -> int:
    if args.end:
        if not await desk.end_outage(_reader(), args.end):
            raise UsageError(f"intet igangværende strømsvigt med id {args.end}")
        print(
            f"Strømsvigt {args.end} afsluttet; data slettes {_number(desk.config.retention_days)} dage efter."
        )
        return EXIT_OK
    started = None if args.started is None else _moment(args.started, "--started")
    outage = await desk.mark_outage(
        _reader(), districts=args.district, addresses=args.address, started=started
    )
    entries = await desk.incidents.entries(outage=outage)
    within = _number(desk.config.tick_interval)
    print(f"Strømsvigt {outage} registreret: {_citizens(len(entries))} på opfølgningslisten. Hubben sender"
          f" holdene deres lister inden for {within} sekunder (hvis den kører).")  # fmt: skip
    _warn_unsent(args.district, entries)
    return EXIT_OK


def _warn_unsent(districts: list[str], entries: list[Entry]) -> None:
    """Say which citizens no team will be sent, and which marked districts hold nobody (a misspelling
    finds no one and would otherwise pass in silence)."""
    without_team = Counter(e.district for e in entries if e.team is None)
    for district, count in sorted(without_team.items()):
        print(f"Advarsel: intet hold for distrikt {district} i [citizens.teams]: {_citizens(count)} får ingen"
              " liste sendt. Tilføj holdets hub i konfigurationen, eller besøg dem på anden måde.",
              file=sys.stderr)  # fmt: skip
    hit = {e.district.casefold() for e in entries}
    for district in dict.fromkeys(districts):
        if district.casefold() not in hit:
            print(f"Advarsel: ingen borgere i registret i distrikt {district}: er navnet stavet som i"
                  " registret?", file=sys.stderr)  # fmt: skip


async def _list(args: argparse.Namespace, desk: Desk) -> int:
    if args.register:
        people = [p for p in await desk.register.citizens(_reader())
                  if args.district is None or p.district.casefold() == args.district.casefold()]  # fmt: skip
        if args.json:
            print(json.dumps([asdict(p) for p in people], ensure_ascii=False, indent=1))
            return EXIT_OK
        print_table(("id", "navn", "distrikt", "udstyr", "batteritimer"),
                    [(p.id, p.name, p.district, _equipment(p.equipment), _number(p.battery_hours))
                     for p in people])  # fmt: skip
        return EXIT_OK
    rows = await desk.followup_view(_reader(), district=args.district)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return EXIT_OK
    if not rows:
        print("Ingen borgere på opfølgningslister (intet igangværende strømsvigt).")
        return EXIT_OK
    print_table(
        ("id", "navn", "adresse", "distrikt", "udstyr", "timer tilbage", "løber tør", "besøg", "alarm"),
        [(r["id"], r["name"] or "?", r["address"] or "?", r["district"], _equipment(r["equipment"]),
          _number(round(r["hours_left"], 1)), _local(r["runs_out"]), r["outcome_text"],
          "ALARM" if r["alarm"] else "") for r in rows],
    )  # fmt: skip
    return EXIT_OK


async def _visit(args: argparse.Namespace, desk: Desk) -> int:
    at = None if args.at is None else int(_moment(args.at, "--at"))
    new = await desk.record_visit(args.citizen, args.outcome, by=_reader(), at=at, outage=args.outage)
    what = OUTCOME_DANISH[args.outcome]
    print(f"Besøg hos {args.citizen} registreret: {what}." if new else "Det besøg var allerede registreret.")
    return EXIT_OK


async def _evacuate(args: argparse.Namespace, desk: Desk) -> int:
    config = load_config(args)
    centre = None if args.centre is None else recipient(config, args.centre)
    centre, body = await desk.evacuation(_reader(), args.citizen, centre=centre)
    request = {"to": centre, "kind": "resource_request", "body": body, "priority": "life-safety",
               "ttl_minutes": desk.config.ttl_minutes}  # fmt: skip
    # the running hub signs, seals and sends it; without a hub this fails before anything is logged
    answer = await asyncio.to_thread(api_call, config, "POST", "/v1/messages", request)
    await desk.evacuation_sent(_reader(), body)
    print(f"Evakuering anmodet hos {centre}: {body['quantity']} borgere (anmodning {body['request']})."
          f" Følg leveringen med: beredt message {answer['id']}")  # fmt: skip
    return EXIT_OK


async def _erase(args: argparse.Namespace, desk: Desk) -> int:
    if not await desk.erase(_reader(), args.citizen):
        raise UsageError(f"ingen borger med id {args.citizen} i registret")
    print(f"Borger {args.citizen} er slettet fra registret og fra alle opfølgningslister.")
    config = load_config(args)
    for handheld in load_handhelds(config.data_dir / HANDHELDS_FILE).values():
        if handheld.citizen == args.citizen:  # the file is the operator's: say so rather than rewrite it
            print(f"Bemærk: håndsenderen {handheld.node_id} står stadig i {config.data_dir / HANDHELDS_FILE}"
                  " for denne borger. Fjern dens [[handheld]]-afsnit der og på den hub, der ejer radioen,"
                  " og genstart hubberne.", file=sys.stderr)  # fmt: skip
    return EXIT_OK


async def _export(args: argparse.Namespace, desk: Desk) -> int:
    wanted = {d.casefold() for d in args.district}
    people = [p for p in await desk.register.citizens(_reader(), why="eksporteret")
              if not wanted or p.district.casefold() in wanted]  # fmt: skip
    sys.stdout.write(to_csv(people))
    print(f"{len(people)} borgere eksporteret", file=sys.stderr)
    return EXIT_OK


async def _access_log(args: argparse.Namespace, desk: Desk) -> int:
    entries = await desk.register.access_log(limit=args.limit)
    print_table(("tid", "hvem", "handling", "hvad"),
                [(_local(float(str(e["at"]))), str(e["who"]), str(e["action"]), str(e["subject"]))
                 for e in entries])  # fmt: skip
    return EXIT_OK


def _moment(text: str, option: str) -> float:
    """An ISO 8601 time; without an offset it is Danish time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option}: {text!r} er ikke et ISO 8601-tidspunkt (2026-12-06T14:30)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=local_zone())).timestamp()


def _citizens(count: int) -> str:
    return f"{count} borger" if count == 1 else f"{count} borgere"


def _number(value: float) -> str:
    return f"{value + 0.0:g}".replace(".", ",")  # Danish decimal comma; + 0.0 turns -0.0 into 0


def _equipment(names: Any) -> str:
    return "+".join(EQUIPMENT_DANISH.get(n, n) for n in names)


def _local(moment: float) -> str:
    return datetime.fromtimestamp(moment, local_zone()).strftime("%d.%m.%Y %H:%M")
