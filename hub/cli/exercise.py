"""``beredt exercise``: plan, run and follow an exercise from the command line (docs/exercises.md).

It talks to the running hub over its API socket, so the console and the CLI drive the same exercise."""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import Any

from hub.cli.danish_argparse import DanishParser
from hub.cli.remote import EXIT_OK, api_call, load_config, local_time
from hub.exercise.scenario import load

STATES = {"running": "kører", "paused": "på pause", "ended": "slut"}
TIMELINE_TYPES = {"phase": "forløb", "inject": "indspil", "note": "note", "answer": "svar"}
"""The timeline's item types (the API's names) as the CLI shows them to people."""

DESCRIPTION = "Kør en øvelse på de rigtige hubs ud fra en scenariefil (TOML), følg den og evaluér den."
EPILOG = """\
eksempler:
  beredt exercise check config/exercises/power-outage.toml    # læs scenariet og vis dets plan
  beredt exercise start config/exercises/power-outage.toml    # start øvelsen nu
  beredt exercise status                                     # tidslinje og kommende indspil
  beredt exercise note "Solbakken svarede først over LoRa"   # observatørens notat
  beredt exercise pause | resume | end
  beredt exercise collect                                    # hver hubs egne forbindelsestal nu
  beredt exercise report ID --out evaluering/                 # evalueringsrapporten bagefter

Alt hvad øvelsen sender, er mærket ØVELSE (CAP-status Exercise) og går efter al rigtig trafik.
Scenariets format: docs/exercises.md."""


def cmd_exercise(args: argparse.Namespace) -> int:
    action = args.exercise_command
    if action == "check":
        return _check(args.file)
    config = load_config(args)
    by = getattr(args, "by", None) or getpass.getuser()
    if action == "start":
        path = Path(args.file)
        load(str(path))  # a broken file is reported here, with the key and the fix, before the hub sees it
        body: dict[str, Any] = {"scenario": path.read_text(encoding="utf-8"), "file": path.name, "by": by}
        view = api_call(config, "POST", "/v1/exercise/start", body)
    elif action == "note":
        note = {"text": " ".join(args.text), "by": by, **({"exercise": args.id} if args.id else {})}
        view = api_call(config, "POST", "/v1/exercise/note", note)
    elif action == "status":
        view = api_call(config, "GET", f"/v1/exercise?id={args.id}" if args.id else "/v1/exercise")
    elif action == "collect":
        view = api_call(
            config, "POST", "/v1/exercise/collect", {"by": by, **({"exercise": args.id} if args.id else {})}
        )
        print(
            "bedt alle hubs i øvelsen om deres egne forbindelsestal; de kommer i rapporten, når de er fremme"
        )
    else:
        view = api_call(config, "POST", f"/v1/exercise/{action}", {"by": by})
    if args.json:
        print(json.dumps(view, indent=2, ensure_ascii=False))
        return EXIT_OK
    _print(view, limit=args.limit)
    return EXIT_OK


def _check(file: str) -> int:
    scenario, _ = load(file)
    print(f"{scenario.name}: {len(scenario.injects)} indspil over {scenario.duration // 60} minutter")
    for inject in scenario.injects:
        print(f"  {inject.at!s:>12}  {inject.describe()}")
    return EXIT_OK


def _print(view: dict[str, Any], *, limit: int) -> None:
    banner = view.get("banner")
    shown = view.get("shown")
    if banner:
        paused = " (på pause)" if banner["paused"] else ""
        print(f"ØVELSE: {banner['name']}{paused} til {local_time(banner['until'])}")
    if not shown:
        print("ingen øvelse kører" if not banner else "øvelsen styres fra en anden hub")
        return
    print(f"øvelse {shown['id']}: {shown['name']}, {STATES.get(shown['state'], shown['state'])}, "
          f"startet {local_time(shown['started'])} af {shown['coordinator']}")  # fmt: skip
    print("deltagere: " + (", ".join(p["name"] for p in shown["participants"]) or "-"))
    for item in view.get("upcoming", [])[:5]:
        print(f"  kommer {local_time(item['due'])}  {item['text']}")
    for item in view.get("timeline", [])[:limit]:
        kind = TIMELINE_TYPES.get(item["type"], item["type"])
        print(f"  {local_time(item['time'])}  {kind:<6} {item['text']}  ({item['author']})")


def add_exercise_commands(
    actions: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register check, start, pause, resume, end, status and note on the ``beredt exercise`` command."""
    output = DanishParser(add_help=False)
    output.add_argument("--json", action="store_true", help="API'ets JSON i stedet for oversigten")
    output.add_argument("--limit", type=int, default=30, help="antal poster på tidslinjen (standard 30)")
    person = DanishParser(add_help=False)
    person.add_argument("--by", help="hvem gør det, til journalen og logbogen (standard: din bruger)")

    check = actions.add_parser("check", help="læs en scenariefil og vis dens plan (ingen hub nødvendig)")
    check.add_argument("file", help="scenariefilen (TOML)")
    start = actions.add_parser(
        "start", parents=[common, output, person], help="start øvelsen i en scenariefil nu"
    )
    start.add_argument("file", help="scenariefilen (TOML); formatet: docs/exercises.md")
    for name, text in (
        ("pause", "hold indspillene tilbage (resten af scenariet rykker med pausens længde)"),
        ("resume", "fortsæt efter en pause"),
        ("end", "afslut øvelsen nu: alle hubber ophæver deres simulerede udfald og fjerner banneret"),
    ):
        actions.add_parser(name, parents=[common, output, person], help=text)
    status = actions.add_parser(
        "status", parents=[common, output], help="øvelsen nu: banner, tidslinje, kommende indspil"
    )
    status.add_argument("--id", help="id på en tidligere øvelse i stedet for den igangværende")
    note = actions.add_parser("note", parents=[common, output, person], help="tilføj en observatørs note")
    note.add_argument("text", nargs="+", help="noten")
    note.set_defaults(trailing="text")  # words after -c FILE belong to the note too
    note.add_argument("--id", help="id på en tidligere øvelse i stedet for den igangværende")
    collect = actions.add_parser(
        "collect", parents=[common, output, person],
        help="bed hver hub i øvelsen om dens egne forbindelsesskift og -forbrug nu (de sender dem også"
        " ved slut)",
    )  # fmt: skip
    collect.add_argument("--id", help="id på en netop afsluttet øvelse i stedet for den igangværende")
    for action in actions.choices.values():
        if action.get_default("func") is None:
            action.set_defaults(func=cmd_exercise)
