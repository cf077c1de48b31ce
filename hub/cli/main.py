"""``beredt``: the command line. ``init``, ``id``, ``run`` and ``roster`` work on a hub's files; the
commands that talk to a running hub's API live in ``hub.cli.remote``; ``user`` and ``log`` are the
console's administration (``hub.cli.admin``); ``simulate`` is the drill (``hub.cli.simulate``).

Exit codes: 0 done, 1 the hub refused or could not be reached, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import tomli_w

from hub.cli.remote import (
    EXIT_OK,
    Unreachable,
    api_call,
    cmd_board,
    cmd_inbox,
    cmd_links,
    cmd_message,
    cmd_peers,
    cmd_rollcall,
    cmd_send,
    config_path,
    load_config,
    print_table,
)
from hub.cli.simulate import add_simulate_command
from hub.cli.tokens import add_token_command
from hub.core.errors import BeredtError, ConfigError, StoreMissing
from hub.core.frame import Kind
from hub.core.identity import PublicCard
from hub.core.kinds import SCHEMAS
from hub.relay.roster import Roster
from hub.service import config as config_module
from hub.service.config import HubConfig

log = logging.getLogger("beredt")

EXIT_FAILED, EXIT_USAGE = 1, 2
EXIT_STORE_MISSING = 3  # the unit's RestartPreventExitStatus: restarting cannot bring the store back

CONFIG_HEADER = """\
# Beredt hub configuration. Paths are relative to this file's folder.
# [node]  role: staff | care-home | relay | region; data_dir holds identity.key, roster.toml and store.db.
# [api]   the web console and token API; 0.0.0.0 lets tablets in (see README). The CLI uses api.sock.
# [links.internet]  where peer hubs reach this one.

"""

CONFIG_FOOTER = """
# One [[peers]] table per neighbouring hub, with its address on each link:
# [[peers]]
# node = "0123456789abcdef"
# name = "Relay Nord"
# links = { internet = "http://192.0.2.10:8471" }
#
# [routes]
# default = ["0123456789abcdef"]   # destination node id (or default) -> next hops, in order
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
    from hub.service.assembly import load_identity

    path = config_path(args)
    if path is not None and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(new_config(args, path))
        print(f"wrote {path}")
    config = config_module.load(path)
    existed = config.identity_path.exists()
    identity = load_identity(config, create=True)
    print(f"{'identity exists' if existed else 'created identity'}: {config.identity_path}")
    print(f"node id: {identity.node_id.hex()}")
    print(f"card:    {identity.card.encode()}")
    print("Give the card to the hubs that should trust this one ('beredt roster add CARD').")
    return EXIT_OK


def cmd_id(args: argparse.Namespace) -> int:
    from hub.service.assembly import load_identity

    identity = load_identity(load_config(args), create=False)
    print(identity.card.encode() if args.card_only else f"{identity.node_id.hex()} {identity.card.encode()}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from hub.service.server import serve

    config = load_config(args)
    logging.getLogger().setLevel(args.log_level or config.log_level)
    try:
        asyncio.run(serve(config, new_store=args.new_store))
    except KeyboardInterrupt:
        pass
    except StoreMissing as exc:
        print(f"beredt: not started: {exc}", file=sys.stderr)
        return EXIT_STORE_MISSING
    return EXIT_OK


# ---- roster ----------------------------------------------------------------------------------------------


def _roster(config: HubConfig) -> Roster:
    from hub.service.assembly import load_identity

    return Roster.load(load_identity(config, create=False).card, config.roster_path)


def cmd_roster_add(args: argparse.Namespace) -> int:
    config = load_config(args)
    roster = _roster(config)
    try:
        card = PublicCard.decode(args.card)
    except ValueError as exc:
        raise ConfigError(f"{exc} (get it with 'beredt id' on that node)", key="CARD") from exc
    kinds = None
    if args.kinds:
        try:
            kinds = frozenset(Kind[k.strip().upper().replace("-", "_")] for k in args.kinds.split(","))
        except KeyError as exc:
            raise ConfigError(
                f"unknown kind {exc}; known: {', '.join(k.name.lower() for k in Kind)}", key="--kinds"
            ) from None
    entry = roster.add(card, kinds)
    roster.save()
    print(f"trusted {entry.name} ({entry.role.value}) as {entry.node_id.hex()}")
    _notify_reload(config)
    return EXIT_OK


def cmd_roster_remove(args: argparse.Namespace) -> int:
    config = load_config(args)
    roster = _roster(config)
    if not roster.remove(bytes.fromhex(args.node)):
        print(f"{args.node} is not in the roster", file=sys.stderr)
        return EXIT_FAILED
    roster.save()
    _notify_reload(config)
    return EXIT_OK


def cmd_roster_list(args: argparse.Namespace) -> int:
    roster = _roster(load_config(args))
    rows = [
        (e.node_id.hex(), e.role.value, e.name, ",".join(sorted(k.name.lower() for k in e.kinds)))
        for e in roster
    ]
    if args.json:
        print(
            json.dumps([dict(zip(("node", "role", "name", "kinds"), r, strict=True)) for r in rows], indent=2)
        )
    else:
        print_table(("NODE", "ROLE", "NAME", "MAY SEND"), rows)
    return EXIT_OK


def cmd_roster_export(args: argparse.Namespace) -> int:
    roster = _roster(load_config(args))
    for entry in roster:
        print(entry.card.encode())
    return EXIT_OK


def _notify_reload(config: HubConfig) -> None:
    try:
        api_call(config, "POST", "/v1/roster/reload", {})
        print("running hub reloaded its roster")
    except Unreachable:
        pass


def cmd_admin(args: argparse.Namespace) -> int:
    from hub.cli.admin import main as admin

    path = config_path(args)
    area = "logbook" if args.command == "log" else args.command
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    return admin([*(["--config", str(path)] if path else []), area, *rest])


# ---- argument parsing ------------------------------------------------------------------------------------


def _fields_help() -> str:
    lines = ["fields per kind (nested with dots, values as JSON where they parse):"]
    for kind, schema in SCHEMAS.items():
        lines.append(f"  {kind.name.lower()}: " + ", ".join(e.name for e in schema.entries))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="beredt",
        description="Beredt: resilient signed store-and-forward messaging for crisis staffs.",
        epilog="Without --config (or $BEREDT_CONFIG) a built-in default is used: data in "
        f"{config_module.DEFAULT_DATA_DIR} (the CLI reaches the hub through api.sock there), console and "
        "token API on 127.0.0.1:8470, internet link on 127.0.0.1:8471.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", help="hub config file (TOML); default: $BEREDT_CONFIG or built-in")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = sub.add_parser(
        "init", parents=[common], help="create the node's keys (and a config file if missing)"
    )
    init.add_argument("--name", help="this node's name as others see it (new config only)")
    init.add_argument("--role", default="staff", choices=["staff", "care-home", "relay", "region"])
    init.add_argument(
        "--data-dir",
        help="data folder, relative to the config (new config only; default: <config name>-data)",
    )
    init.add_argument("--api-port", type=int, default=8470)
    init.add_argument("--link-host", default="127.0.0.1", help="address the internet link listens on")
    init.add_argument("--link-port", type=int, default=8471)
    init.set_defaults(func=cmd_init)

    ident = sub.add_parser("id", parents=[common], help="print this node's id and public card")
    ident.add_argument("--card-only", action="store_true", help="print only the card")
    ident.set_defaults(func=cmd_id)

    run = sub.add_parser(
        "run", parents=[common], help="run the hub (creates identity and data dir if absent)"
    )
    run.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument(
        "--new-store",
        action="store_true",
        help="start even though this hub's message store is missing or empty (its queued messages are"
        " lost); without it such a start is refused with exit code 3",
    )
    run.set_defaults(func=cmd_run)

    send = sub.add_parser(
        "send",
        parents=[common],
        help="send a message through the running hub",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_fields_help()
        + "\n\nexamples:\n  beredt send text 0123456789abcdef 'Generator kører, alt vel'\n"
        "  beredt send sitrep '*' number=1 phase=Initial summary='Strømsvigt i hele kommunen'\n"
        "  beredt send status 0123456789abcdef facility=Normal power=generator fuel_hours=30",
    )
    send.add_argument("kind", choices=["text", *(k.name.lower().replace("_", "-") for k in SCHEMAS)])
    send.add_argument("to", help="recipient node id (16 hex digits) or '*' for everyone")
    send.add_argument("fields", nargs="*", metavar="FIELD", help="the text, or field=value pairs")
    send.add_argument("--json", help="the body as JSON ('-' reads standard input) instead of FIELDs")
    send.add_argument("--priority", default="normal", choices=["routine", "normal", "urgent", "life-safety"])
    send.add_argument("--status", default="actual", choices=["actual", "exercise", "test"])
    send.add_argument("--ttl", type=int, help="minutes until the message expires (default from config)")
    send.add_argument("--sealed", action="store_true", help="encrypt to the recipient (personal data)")
    send.set_defaults(func=cmd_send)

    inbox = sub.add_parser("inbox", parents=[common], help="messages received by this hub, newest first")
    inbox.add_argument("--limit", type=int, default=20)
    inbox.add_argument("--json", action="store_true")
    inbox.set_defaults(func=cmd_inbox)

    message = sub.add_parser("message", parents=[common], help="one message with its delivery state per hop")
    message.add_argument("id", help="message id (32 hex digits)")
    message.set_defaults(func=cmd_message)

    for name, func, text in (
        ("links", cmd_links, "link health per link and peer"),
        ("peers", cmd_peers, "configured peers and their links"),
    ):
        command = sub.add_parser(name, parents=[common], help=text)
        command.add_argument("--json", action="store_true")
        command.set_defaults(func=func)

    board = sub.add_parser("board", parents=[common], help="status board of institutions, most urgent first")
    board.add_argument("--json", action="store_true")
    board.set_defaults(func=cmd_board)

    rollcall = sub.add_parser(
        "rollcall", parents=[common], help="ask institutions to report status by a deadline"
    )
    rollcall.add_argument("action", choices=["start", "list"])
    rollcall.add_argument(
        "institutions", nargs="*", metavar="NODE", help="node ids (default: every care home)"
    )
    rollcall.add_argument("--question", default="Meld status")
    rollcall.add_argument("--minutes", type=int, default=30, help="deadline in minutes (default 30)")
    rollcall.set_defaults(func=cmd_rollcall)

    for name, text in (
        ("user", "web console users: add, passwd, remove, list (see 'beredt user -- --help')"),
        ("log", "the tamper-evident log book: verify, export (see 'beredt log -- --help')"),
    ):
        admin = sub.add_parser(name, parents=[common], help=text)
        admin.add_argument(
            "rest", nargs=argparse.REMAINDER, metavar="ARGS", help="e.g. 'add hansen --role coordinator'"
        )
        admin.set_defaults(func=cmd_admin)

    roster = sub.add_parser("roster", help="the nodes this hub trusts")
    roster_sub = roster.add_subparsers(dest="roster_command", required=True, metavar="ACTION")
    add = roster_sub.add_parser("add", parents=[common], help="trust a node by its card ('beredt id' on it)")
    add.add_argument("card")
    add.add_argument("--kinds", help="comma-separated kinds it may send (default: by its role)")
    add.set_defaults(func=cmd_roster_add)
    remove = roster_sub.add_parser("remove", parents=[common], help="stop trusting a node")
    remove.add_argument("node", help="node id")
    remove.set_defaults(func=cmd_roster_remove)
    listing = roster_sub.add_parser("list", parents=[common], help="list trusted nodes")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_roster_list)
    export = roster_sub.add_parser("export", parents=[common], help="print every trusted card (to share)")
    export.set_defaults(func=cmd_roster_export)
    add_token_command(sub, common)
    add_simulate_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(f"beredt: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except json.JSONDecodeError as exc:
        print(f"beredt: --json is not valid JSON: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BeredtError as exc:
        print(f"beredt: {exc}", file=sys.stderr)
        return EXIT_FAILED
