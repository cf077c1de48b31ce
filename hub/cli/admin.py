"""Console administration from the shell: users of the web console and the log book's integrity.

``beredt user add hansen --role coordinator -c beredt.toml`` and friends work
on the same ``console.db`` the running hub uses (SQLite in WAL mode lets both open it), so a user added
here can log in at once. Passwords are read from standard input (``--password-stdin``, for scripts) or
asked for twice without echo. ``log verify`` recomputes the hash chain, holds it against the heads its
witnesses hold (``hub.cli.logbook_verify``) and exits non-zero if it is broken; ``log export`` prints
the CSV or the printable HTML report for an FOI request or evaluation.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from hub.cli import logbook_verify
from hub.cli.danish_argparse import DanishFormatter
from hub.cli.remote import load_config, print_table
from hub.console.logbook import LogBook
from hub.console.logbook_export import export_csv, export_html
from hub.console.service import CONSOLE_DB
from hub.console.users import Role, Users
from hub.core.clock import SystemClock
from hub.core.errors import BeredtError
from hub.relay.roster import Role as NodeRole
from hub.service.config import HubConfig
from hub.service.node_identity import load_identity


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise ValueError("adgangskode: standard input var tom; send adgangskoden ind på én linje")
        return password
    if not sys.stdin.isatty():
        raise ValueError(
            "adgangskode: ingen terminal at spørge på; brug --password-stdin og send adgangskoden ind"
        )
    first = getpass.getpass("Adgangskode / password: ")
    if getpass.getpass("Gentag / repeat: ") != first:
        raise ValueError("adgangskode: de to indtastninger er forskellige")
    return first


def _own_institution(config: HubConfig) -> str | None:
    """On a care home's own hub an institution user reports for that hub: no id to copy by hand."""
    if config.role is not NodeRole.CARE_HOME or not config.identity_path.exists():
        return None
    return load_identity(config, create=False).node_id.hex()


async def _users(args: argparse.Namespace, db: Path, config: HubConfig) -> int:
    users = await Users.open(db, SystemClock())
    try:
        match args.action:
            case "add":
                role = Role(args.role)
                institution = args.institution
                if role is Role.INSTITUTION and institution is None:
                    institution = _own_institution(config)
                    if institution is None:
                        raise ValueError(
                            "--institution: angiv node-id for det plejehjem brugeren melder for"
                            " (kun plejehjemmets egen hub kender det af sig selv)"
                        )
                password = _password(args)
                user = await users.add(
                    args.username, password, role, display_name=args.name or "", institution=institution
                )
                print(f"tilføjede {user.username} ({user.role})")
            case "passwd":
                await users.set_password(args.username, _password(args))
                print(f"adgangskoden er skiftet for {args.username}")
            case "remove":
                await users.remove(args.username)
                print(f"fjernede {args.username}")
            case "list":
                rows = [
                    (u.username, str(u.role), u.display_name, u.institution or "") for u in await users.all()
                ]
                if args.json:
                    keys = ("username", "role", "display_name", "institution")
                    print(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
                else:
                    print_table(("BRUGER", "ROLLE", "NAVN", "INSTITUTION"), rows)
    finally:
        await users.aclose()
    return 0


async def _logbook(args: argparse.Namespace, db: Path, config: HubConfig) -> int:
    book = await LogBook.open(db, SystemClock(), config.name)
    try:
        if args.action == "export":
            sys.stdout.write(await export_csv(book) if args.format == "csv" else await export_html(book))
            return 0
        node = ""
        if args.witness:
            node = load_identity(config, create=False).node_id.hex()
        return await logbook_verify.verify(args, book, node)
    finally:
        await book.aclose()


def add_admin_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``user`` and ``log`` on the ``beredt`` command's subparsers (``common`` carries
    ``--config``, so ``-c`` works before the command and after the action alike)."""
    user = subparsers.add_parser(
        "user",
        parents=[common],
        help="webkonsollens brugere: add, passwd, remove, list",
        formatter_class=DanishFormatter,
        epilog="eksempler:\n"
        "  beredt user add hansen --role coordinator --name 'Vagtleder Hansen' -c beredt.toml\n"
        "  echo 'korrekt-hest-batteri' | beredt user passwd hansen --password-stdin -c beredt.toml",
    )
    actions = user.add_subparsers(dest="action", required=True, metavar="HANDLING")
    add = actions.add_parser(
        "add", parents=[common], help="tilføj en bruger (spørger om adgangskoden to gange)"
    )
    add.add_argument("username")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.add_argument("--name", "--display-name", dest="name", help="visningsnavn, fx 'Vagtleder Hansen'")
    add.add_argument(
        "--institution",
        help="node-id (16 hex), en institutionsbruger melder for (standard på et plejehjems hub: den hub)",
    )
    add.add_argument("--password-stdin", action="store_true", help="læs adgangskoden fra standard-input")
    passwd = actions.add_parser(
        "passwd", parents=[common], help="sæt en ny adgangskode (afslutter brugerens sessioner)"
    )
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true", help="læs adgangskoden fra standard-input")
    actions.add_parser("remove", parents=[common], help="fjern en bruger").add_argument("username")
    listing = actions.add_parser("list", parents=[common], help="vis brugerne")
    listing.add_argument("--json", action="store_true", help="JSON til scripts i stedet for en tabel")
    user.set_defaults(func=cmd_user)

    book = subparsers.add_parser(
        "log",
        parents=[common],
        help="den manipulationssikre logbog: verify, export",
        formatter_class=DanishFormatter,
        epilog="eksempler:\n  beredt log verify --anchor 118:9f2c... -c beredt.toml\n"
        "  beredt log verify --witness http://krisestab:8470 --token-file vidne.token -c beredt.toml\n"
        "  beredt log export --format html -c beredt.toml > logbog.html",
    )
    book_actions = book.add_subparsers(dest="action", required=True, metavar="HANDLING")
    verify = book_actions.add_parser(
        "verify",
        parents=[common],
        help="genberegn hashkæden og hold den op mod vidnernes hoveder; afslutningskode 3, hvis den er brudt",
    )
    logbook_verify.add_verify_arguments(verify)
    export = book_actions.add_parser("export", parents=[common], help="skriv logbogen ud")
    export.add_argument("--format", choices=["csv", "html"], default="csv")
    book.set_defaults(func=cmd_log)


def cmd_user(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda db, config: _users(args, db, config))


def cmd_log(args: argparse.Namespace) -> int:
    return _run_admin(args, lambda db, config: _logbook(args, db, config))


def _run_admin(args: argparse.Namespace, work: Callable[[Path, HubConfig], Coroutine[Any, Any, int]]) -> int:
    """Both work on ``console.db`` in the hub's data folder; a refused entry (short password, unknown
    user, a bad anchor) is bad usage: exit 2 with the reason."""
    config = load_config(args)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(work(config.data_dir / CONSOLE_DB, config))
    except (BeredtError, ValueError) as exc:
        print(f"beredt: {exc}", file=sys.stderr)
        return 2
