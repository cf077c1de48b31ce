"""``beredt``: the command line. ``init``, ``id`` and ``run`` work on a hub's files, as do ``roster`` and
``peer`` (``hub.cli.roster``); the commands that talk to a running hub's API live in ``hub.cli.remote``;
``user`` and ``log`` are the console's administration (``hub.cli.admin``); ``simulate`` is the drill
(``hub.cli.simulate``).

Exit codes: 0 done, 1 the hub refused or could not be reached, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from hub.cli.danish_argparse import DanishFormatter, DanishParser
from hub.cli.groups import add_group_commands
from hub.cli.remote import (
    EXIT_OK,
    cmd_board,
    cmd_inbox,
    cmd_links,
    cmd_message,
    cmd_peers,
    cmd_rollcall,
    cmd_routes,
    cmd_send,
    config_path,
    load_config,
)
from hub.core.errors import BeredtError, ConfigError, StoreMissing, UsageError
from hub.core.frame import Kind
from hub.core.kinds import SCHEMAS
from hub.core.kinds.fields import Choice, Flags, HexId, Schema, Text, Time, UInt
from hub.service import config as config_module
from hub.service.config import HubConfig
from hub.service.node_identity import load_identity

log = logging.getLogger("beredt")

EXIT_FAILED, EXIT_USAGE = 1, 2
EXIT_STORE_MISSING = 3  # the unit's RestartPreventExitStatus: restarting cannot bring the store back

CONFIG_HEADER = """\
# Opsætning af en Beredt-hub. Stier regnes fra denne fils mappe.
# [node]  role: staff | care-home | relay | region; data_dir rummer identity.key, roster.toml og store.db.
# [api]   konsollen og token-API'et; 0.0.0.0 lukker tablets ind (se README). CLI'en bruger api.sock.
# [links.internet]  hvor andre hubber når denne.

"""

CONFIG_FOOTER = """
# Én [[peers]]-tabel pr. nabohub, med dens adresse på hver forbindelse:
# [[peers]]
# node = "0123456789abcdef"
# name = "Relæ Nord"
# links = { internet = "http://192.0.2.10:8471" }
#
# [routes]
# default = ["0123456789abcdef"]   # modtagerens node-id (eller default) -> næste hop, i rækkefølge
"""


def new_config(args: argparse.Namespace, path: Path) -> str:
    """The text of a new config file for ``beredt init`` (written by tomli_w: any name is safe)."""
    document = {
        "node": {
            "name": args.name or "Beredt hub",
            "role": args.role,
            "data_dir": args.data_dir or f"{path.stem}-data",
        },
        "api": {"listen": f"127.0.0.1:{args.api_port}"},
        "links": {"internet": {"kind": "internet", "listen": f"{args.link_host}:{args.link_port}"}},
    }
    return CONFIG_HEADER + tomli_w.dumps(document) + CONFIG_FOOTER


# ---- init / id / run ---------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    path = config_path(args)
    if path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_config(args, path), encoding="utf-8")
        print(f"skrev {path}")
    config = config_module.load(path)
    existed = config.identity_path.exists()
    identity = load_identity(config, create=True)
    print(f"{'identiteten findes' if existed else 'oprettede identiteten'}: {config.identity_path}")
    print(f"node-id: {identity.node_id.hex()}")
    print(f"kort:    {identity.card.encode()}")
    print("Giv kortet til de hubber, der skal stole på denne ('beredt roster add KORT').")
    return EXIT_OK


def cmd_id(args: argparse.Namespace) -> int:
    identity = load_identity(load_config(args), create=False)
    print(identity.card.encode() if args.card_only else f"{identity.node_id.hex()} {identity.card.encode()}")
    return EXIT_OK


def lock_data_dir(config: HubConfig) -> int:
    """Hold ``<data_dir>/.lock`` for the life of this process: two hubs on one data folder would share one
    identity and one store. The folder and what is in it are made private to this user."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.data_dir.chmod(0o700)
    for child in config.data_dir.iterdir():
        if child.is_file() and not child.is_symlink():
            child.chmod(0o600)
    fd = os.open(config.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(
            f"en anden beredt run bruger allerede datamappen {config.data_dir}; stop den først, eller giv"
            " denne opsætning sin egen [node] data_dir"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def cmd_run(args: argparse.Namespace) -> int:
    from hub.service.server import serve

    config = load_config(args)
    logging.getLogger().setLevel(args.log_level or config.log_level)
    lock_data_dir(config)  # released by the kernel when the process ends, however it ends
    try:
        asyncio.run(serve(config, new_store=args.new_store))
    except KeyboardInterrupt:
        pass
    except StoreMissing as exc:
        print(f"beredt: ikke startet: {exc}", file=sys.stderr)
        return EXIT_STORE_MISSING
    return EXIT_OK


# ---- argument parsing ------------------------------------------------------------------------------------


def _describe(field: object) -> str:
    """What a field accepts, in the words of ``beredt send KIND --help``."""
    match field:
        case Choice(names=names):
            return "en af " + ", ".join(names)
        case Flags(names=names):
            return "en JSON-liste af " + ", ".join(names)
        case Text(max_bytes=n):
            return f"tekst, højst {n} bytes"
        case UInt(high=high):
            return f"et helt tal 0..{high}"
        case Time():
            return "et Unix-tidspunkt eller ISO 8601 med forskydning (2026-12-06T14:00+01:00)"
        case HexId(size=size):
            return f"{2 * size} hex-cifre"
        case Schema(entries=entries):
            return "en gruppe: " + ", ".join(f"{field.title}.{e.name}" for e in entries)
    return "en JSON-værdi"


def _kind_help(kind: Kind) -> str:
    schema = SCHEMAS[kind]
    lines = [f"felter i {kind.name.lower().replace('_', '-')} (felt=værdi; * = skal gives):"]
    for entry in schema.entries:
        mark = "*" if entry.required else " "
        lines.append(f"  {mark} {entry.name:<14} {_describe(entry.type)}")
    return "\n".join(lines)


SEND_EXAMPLES = {
    "text": "beredt send text 0123456789abcdef 'Generator kører, alt vel'",
    "sitrep": "beredt send sitrep '*' number=1 phase=Initial summary='Strømsvigt i hele kommunen'",
    "status": "beredt send status 0123456789abcdef facility=Normal power=generator fuel_hours=30",
    "alert": "beredt send alert 0123456789abcdef event=Strømsvigt urgency=Immediate severity=Severe"
    " certainty=Observed instruction='Start generatoren'",
}


def add_send_command(sub: Any, common: argparse.ArgumentParser) -> None:
    """``beredt send KIND TO FIELD...``: one sub-command per kind, each with its own fields in --help;
    names take a dash or an underscore (resource-request = resource_request)."""
    options = DanishParser(add_help=False)
    options.add_argument(
        "to",
        help="modtager: node-id (16 hex-cifre, eller en entydig begyndelse eller et navn i rosteren), '*',"
        " eller en gruppe som group:NAVN eller ved sit navn (én besked pr. medlem; se 'beredt groups')",
    )
    options.add_argument("fields", nargs="*", metavar="FIELD", help="teksten, eller par af felt=værdi")
    options.add_argument("--body", help="indholdet som JSON ('-' læser standard-input) i stedet for FELTer")
    options.add_argument("--json", action="store_true", help="skriv hubbens svar som JSON")
    options.add_argument(
        "--priority", default="normal", choices=["routine", "normal", "urgent", "life-safety"]
    )
    status = options.add_mutually_exclusive_group()
    status.add_argument(
        "--status",
        choices=["actual", "exercise", "test"],
        help="CAP-status (standard: exercise, mens hubben er med i en øvelse, ellers actual)",
    )
    status.add_argument(
        "--actual",
        dest="status",
        action="store_const",
        const="actual",
        help="en reel besked, også under en øvelse (REEL HÆNDELSE – IKKE ØVELSE)",
    )
    options.add_argument("--ttl", type=int, help="minutter til beskeden udløber (standard fra opsætningen)")
    options.add_argument(
        "--public",
        action="store_true",
        help="send i klartekst, som alle hubber og forbindelser på vejen kan læse (for indhold uden"
        " personoplysninger, fx et offentligt varsel); ellers forsegles en besked til modtagerne",
    )
    send = sub.add_parser(
        "send",
        parents=[common],
        help="send en besked gennem den kørende hub",
        description="Send en besked; 'beredt send SLAGS --help' viser den slags beskeds felter.",
    )
    kinds = send.add_subparsers(dest="kind", required=True, metavar="SLAGS")
    for kind in (Kind.TEXT, *SCHEMAS):
        name = kind.name.lower().replace("_", "-")
        aliases = [kind.name.lower()] if "_" in kind.name else []
        epilog = "teksten er resten af linjen" if kind is Kind.TEXT else _kind_help(kind)
        if name in SEND_EXAMPLES:
            epilog += f"\n\neksempel:\n  {SEND_EXAMPLES[name]}"
        command = kinds.add_parser(
            name,
            aliases=aliases,
            parents=[common, options],
            epilog=epilog,
            formatter_class=DanishFormatter,
            help="fri tekst" if kind is Kind.TEXT else f"felterne i {SCHEMAS[kind].title}",
        )
        command.set_defaults(func=cmd_send, kind=name, trailing="fields")


CONFIG_HELP = "hubbens opsætningsfil (TOML); standard: $BEREDT_CONFIG eller den indbyggede"


# ---- command groups, imported only when used --------------------------------------------------------------
# Every hub start and every 'beredt init' or 'roster add' is a new process: importing all commands' modules
# (the console, the exercise report, the demo) would cost each of them more than the command itself needs.

Register = Callable[[Any, argparse.ArgumentParser], None]


def _admin(sub: Any, common: argparse.ArgumentParser) -> None:
    from hub.cli.admin import add_admin_commands

    add_admin_commands(sub, common)


def _citizens(sub: Any, common: argparse.ArgumentParser) -> None:
    from hub.cli.citizens import add_citizens_commands

    add_citizens_commands(sub, common)


def _data(sub: Any, common: argparse.ArgumentParser) -> None:
    from hub.cli.data import add_data_commands

    add_data_commands(sub, common)


def _roster(sub: Any, common: argparse.ArgumentParser) -> None:
    from hub.cli.roster import add_roster_commands

    add_roster_commands(sub, common)


def _token(sub: Any, common: argparse.ArgumentParser) -> None:
    from hub.cli.tokens import add_token_command

    add_token_command(sub, common)


def _exercise(sub: Any, common: argparse.ArgumentParser) -> None:
    from hub.cli.exercise import DESCRIPTION, EPILOG, add_exercise_commands
    from hub.cli.exercise_report import add_report_command

    exercise = sub.add_parser(
        "exercise",
        help="øvelser: start et scenarie, sæt på pause, genoptag, afslut, følg med, noter, rapport",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=DanishFormatter,
    )
    actions = exercise.add_subparsers(dest="exercise_command", required=True, metavar="HANDLING")
    add_exercise_commands(actions, common)
    add_report_command(actions, common)


def _municipality(sub: Any, common: argparse.ArgumentParser) -> None:
    from hub.cli.federation import add_cross_certify
    from hub.cli.municipality import add_municipality_commands

    add_cross_certify(add_municipality_commands(sub, common), common)


def _keys(sub: Any, common: argparse.ArgumentParser) -> None:
    from hub.cli.keys import add_key_commands

    add_key_commands(sub, common)


def _simulate(sub: Any, common: argparse.ArgumentParser) -> None:
    from hub.cli.simulate import add_simulate_command

    add_simulate_command(sub)


def _demo(sub: Any, common: argparse.ArgumentParser) -> None:
    from hub.cli.demo import add_demo_command

    add_demo_command(sub)


# The top-level commands each group adds, in the order 'beredt --help' lists them (tests/cli checks the
# names against what each group really registers).
COMMAND_GROUPS: tuple[tuple[tuple[str, ...], Register], ...] = (
    (("user", "log"), _admin),
    (("citizens",), _citizens),
    (("data",), _data),
    (("roster", "peer"), _roster),
    (("token",), _token),
    (("exercise",), _exercise),
    (("root", "enrol", "revoke"), _municipality),
    (("key",), _keys),
    (("simulate",), _simulate),
    (("demo",), _demo),
)


def command_word(argv: Sequence[str]) -> str | None:
    """The command in ``argv`` (its first word that is neither an option nor -c's value), if any."""
    words = iter(argv)
    for word in words:
        if word in ("-c", "--config"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command, or with ``command`` the built-in ones and only the group that holds ``command``."""
    parser: argparse.ArgumentParser = DanishParser(
        prog="beredt",
        description="Beredt: robuste, signerede beskeder, der gemmes og sendes videre, for kriseledelser.",
        epilog="Uden --config (eller $BEREDT_CONFIG) bruges en indbygget standard: data i "
        f"{config_module.DEFAULT_DATA_DIR} (kommandoerne når hubben gennem api.sock dér), konsol og "
        "token-API på 127.0.0.1:8470, internetforbindelse på 127.0.0.1:8471.",
    )
    parser.add_argument("--version", action=ShowVersion, help="vis versionen og afslut")
    # -c works before the command and after it ('beredt -c x.toml inbox' = 'beredt inbox -c x.toml'); the
    # sub-commands' copy must not overwrite the top-level value with its default, hence SUPPRESS
    parser.add_argument(
        "-c", "--config", help="hubbens opsætningsfil (TOML); standard: $BEREDT_CONFIG eller den indbyggede"
    )
    common = DanishParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS,
        help=CONFIG_HELP,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="KOMMANDO")

    init = sub.add_parser(
        "init", parents=[common], help="lav nodens nøgler (og en opsætningsfil, hvis der ingen er)"
    )
    init.add_argument("--name", help="nodens navn, som andre ser det (kun ny opsætning)")
    init.add_argument("--role", default="staff", choices=["staff", "care-home", "relay", "region"])
    init.add_argument(
        "--data-dir",
        help="datamappe i forhold til opsætningsfilen (kun ny opsætning; standard: <opsætningens navn>-data)",
    )
    init.add_argument("--api-port", type=int, default=8470)
    init.add_argument("--link-host", default="127.0.0.1", help="adressen, internetforbindelsen lytter på")
    init.add_argument("--link-port", type=int, default=8471)
    init.set_defaults(func=cmd_init)

    ident = sub.add_parser("id", parents=[common], help="skriv nodens id og offentlige kort")
    ident.add_argument("--card-only", action="store_true", help="skriv kun kortet")
    ident.set_defaults(func=cmd_id)

    run = sub.add_parser(
        "run", parents=[common], help="kør hubben (laver identitet og datamappe, hvis de mangler)"
    )
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument(
        "--new-store",
        action="store_true",
        help="start, selv om hubbens beskedlager mangler eller er tomt (beskederne i kø er tabt);"
        " uden dette afvises sådan en start med afslutningskode 3",
    )
    run.set_defaults(func=cmd_run)

    add_send_command(sub, common)
    add_group_commands(sub, common)

    inbox = sub.add_parser("inbox", parents=[common], help="beskeder modtaget af hubben, nyeste først")
    inbox.add_argument("--limit", type=int, default=20)
    inbox.add_argument("--json", action="store_true")
    inbox.set_defaults(func=cmd_inbox)

    message = sub.add_parser("message", parents=[common], help="én besked med dens leveringstilstand pr. hop")
    message.add_argument(
        "id", help="besked-id: 32 hex-cifre, eller de første (mindst 4), når kun én besked begynder med dem"
    )
    message.add_argument("--json", action="store_true", help="API'ets JSON i stedet for oversigten")
    message.set_defaults(func=cmd_message)

    for name, func, text in (
        ("links", cmd_links, "forbindelsernes tilstand pr. forbindelse og nabo"),
        ("peers", cmd_peers, "de opsatte naboer og deres forbindelser"),
        ("routes", cmd_routes, "de lærte ruter: hvem hver modtager nås igennem, og over hvilken forbindelse"),
    ):
        listing = sub.add_parser(name, parents=[common], help=text)
        listing.add_argument("--json", action="store_true")
        listing.set_defaults(func=func)

    board = sub.add_parser(
        "board", parents=[common], help="statustavlen over institutioner, mest presserende først"
    )
    board.add_argument("--json", action="store_true")
    board.set_defaults(func=cmd_board)

    rollcall = sub.add_parser(
        "rollcall", parents=[common], help="bed institutioner melde status inden en frist"
    )
    rollcall.add_argument("action", choices=["start", "list"])
    rollcall.add_argument(
        "institutions", nargs="*", metavar="NODE", help="node-id'er (standard: alle plejehjem)"
    )
    rollcall.add_argument("--question", default="Meld status")
    rollcall.add_argument("--minutes", type=int, default=30, help="frist i minutter (standard 30)")
    rollcall.add_argument("--json", action="store_true", help="list: JSON til scripts i stedet for en tabel")
    rollcall.set_defaults(func=cmd_rollcall, trailing="institutions")

    groups = [register for names, register in COMMAND_GROUPS if command in names]
    if command is None or not (groups or command in sub.choices):
        groups = [register for _, register in COMMAND_GROUPS]  # --help, or a typo: list every command
    for register in groups:
        register(sub, common)
    return parser


class ShowVersion(argparse.Action):
    """``--version``, looked up only when asked: the look-up reads the metadata of every installed package,
    which every other command would pay for."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option: str | None = None,
    ) -> None:
        import importlib.metadata

        try:
            version = importlib.metadata.version("beredt")
        except importlib.metadata.PackageNotFoundError:
            version = "(not installed)"
        print(f"beredt {version}")
        parser.exit()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(command_word(words))
    args, extra = parser.parse_known_args(words)
    if extra:
        # 'send text X -c FILE more words': argparse stops a list at an option; the words after it still
        # belong to the command's trailing list (an unknown option is still an error)
        trailing: str | None = getattr(args, "trailing", None)
        unknown = [word for word in extra if trailing is None or word.startswith("-")]
        if trailing is None or unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        getattr(args, trailing).extend(extra)
    os.umask(0o077)  # keys, stores, console users and the log book: readable by this user only
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at interpreter exit
        return code
    except BrokenPipeError:
        # 'beredt inbox | head': the reader has what it wanted; say nothing more and send nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except UsageError as exc:
        print(f"beredt: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"beredt: fejl i opsætningen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except json.JSONDecodeError as exc:
        print(f"beredt: --body er ikke gyldig JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BeredtError as exc:
        print(f"beredt: {exc}", file=sys.stderr)
        return EXIT_FAILED
