"""``beredt roster`` and ``beredt peer``: the nodes a hub trusts, kept in its roster file, and the
neighbours it reaches, added to its config from their cards. A running hub is told to reload its roster."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

import tomli_w

from hub.cli.danish_argparse import DanishFormatter
from hub.cli.remote import EXIT_OK, Unreachable, api_call, config_path, load_config, print_table
from hub.core.errors import ConfigError, UsageError
from hub.core.identity import PublicCard
from hub.core.kinds.roster import MAX_CONTACT_MINUTES, parse_root_public
from hub.relay.roster import Roster, parse_kinds, valid_group_name
from hub.relay.roster_updates import RosterUpdates
from hub.service import config as config_module
from hub.service.config import HubConfig
from hub.service.node_identity import load_identity

EXIT_FAILED = 1


def _roster(config: HubConfig) -> Roster:
    roster = Roster.load(load_identity(config, create=False).card, config.roster_path)
    if config.trust.root:  # the root-signed nodes too, minus the revoked (only the local part is saved)
        RosterUpdates(roster, parse_root_public(config.trust.root), config.data_dir).load()
    return roster


def cmd_roster_add(args: argparse.Namespace) -> int:
    config = load_config(args)
    roster = _roster(config)
    try:
        card = PublicCard.decode(args.card)
    except ValueError as exc:
        raise UsageError(f"KORT: {exc} (hent det med 'beredt id' på den node)") from exc
    kinds = None
    if args.kinds:
        try:
            kinds = parse_kinds(args.kinds.split(","))
        except ValueError as exc:
            raise UsageError(f"--kinds: {exc}") from None
    bad = [g for g in args.group if not valid_group_name(g)]
    if bad:
        raise UsageError(f"--group: {bad[0]!r} er ikke et gruppenavn (1-80 tegn, intet kolon)")
    known = roster.get(card.node_id)
    groups = tuple(g.strip() for g in args.group) or (known.groups if known else ())
    if args.contact_minutes is not None and not 0 <= args.contact_minutes <= MAX_CONTACT_MINUTES:
        raise UsageError(f"--contact-minutes: forventede 1 til {MAX_CONTACT_MINUTES} minutter (0: standard)")
    contact = (
        args.contact_minutes if args.contact_minutes is not None else (known.contact_minutes if known else 0)
    )
    entry = roster.add(card, kinds, groups, contact)
    roster.save()
    in_groups = f" i {', '.join(entry.groups)}" if entry.groups else ""
    print(f"betror {entry.name} ({entry.role.value}) som {entry.node_id.hex()}{in_groups}")
    _notify_reload(config)
    return EXIT_OK


def cmd_roster_remove(args: argparse.Namespace) -> int:
    config = load_config(args)
    roster = _roster(config)
    if not roster.remove(bytes.fromhex(args.node)):
        print(f"{args.node} er ikke i rosteren", file=sys.stderr)
        return EXIT_FAILED
    roster.save()
    _notify_reload(config)
    return EXIT_OK


def cmd_roster_list(args: argparse.Namespace) -> int:
    roster = _roster(load_config(args))
    rows = [
        (e.node_id.hex(), e.role.value, f"{e.name} ({e.municipality})" if e.municipality else e.name,
         ",".join(e.groups), ",".join(sorted(k.name.lower() for k in e.kinds)))
        for e in (*roster, *roster.foreign())
    ]  # fmt: skip
    if args.json:
        keys = ("node", "role", "name", "groups", "kinds")
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2, ensure_ascii=False))
    else:
        print_table(("NODE", "ROLLE", "NAVN", "GRUPPER", "MÅ SENDE"), rows)
    return EXIT_OK


def cmd_roster_export(args: argparse.Namespace) -> int:
    roster = _roster(load_config(args))
    for entry in roster:
        print(entry.card.encode())
    return EXIT_OK


def cmd_peer_add(args: argparse.Namespace) -> int:
    """Trust a neighbour and tell this hub how to reach it, from its card alone: no ids copied by hand."""
    path = config_path(args)
    if path is None or not path.exists():
        raise UsageError("peer add skriver i opsætningsfilen: angiv den med -c FIL (eller $BEREDT_CONFIG)")
    config = config_module.load(path)
    try:
        card = PublicCard.decode(args.card)
    except ValueError as exc:
        raise UsageError(f"KORT: {exc} (hent det med 'beredt id --card-only' på den node)") from exc
    node = card.node_id.hex()
    links: dict[str, str] = {}
    for item in args.via:
        link, sep, address = item.partition("=")
        if not sep or not address:
            raise UsageError(f"--via: forventede FORBINDELSE=ADRESSE, fik {item!r}")
        if link not in {c.name for c in config.links}:
            known = ", ".join(c.name for c in config.links) or "ingen"
            raise UsageError(
                f"--via: hubben har ingen forbindelse ved navn {link!r} (dens forbindelser: {known})"
            )
        links[link] = address
    if args.default_route and not links:
        raise UsageError("--default-route: sig med --via FORBINDELSE=ADRESSE, hvordan naboen nås")
    if any(peer.node_id == card.node_id for peer in config.peers):
        raise UsageError(f"{card.name} ({node}) er allerede nabo i {path}: ret dens adresser der")
    roster = _roster(config)
    entry = roster.add(card, None)
    roster.save()
    print(f"betror {entry.name} ({entry.role.value}) som {node}")
    text = path.read_text()
    addition = ""
    # table headers, never bare keys: appended keys would land in whatever table ends the file
    if links:
        scalars = tomli_w.dumps({"node": node, "name": card.name})
        addition += f"\n[[peers]]\n{scalars}\n[peers.links]\n{tomli_w.dumps(links)}"
    if args.default_route:
        if config.default_route or re.search(r"^\s*\[routes\]", text, re.MULTILINE):
            print(f"{path} har allerede [routes]: tilføj {node} der i hånden", file=sys.stderr)
        else:
            addition += f"\n[routes]\n{tomli_w.dumps({'default': [node]})}"
    if addition:
        # the new file must load before it replaces the old one: a hub never finds a broken config
        draft = path.with_name(f".{path.name}.new")
        draft.write_text(text.rstrip("\n") + "\n" + addition)
        try:
            config_module.load(draft)
        except ConfigError:
            draft.unlink()
            raise
        draft.replace(path)
        print(f"tilføjede {card.name} til {path}" + (f" via {', '.join(links)}" if links else ""))
        print("genstart hubben for at bruge den nye nabo (rosteren genindlæses med det samme)")
    _notify_reload(config)
    return EXIT_OK


def _notify_reload(config: HubConfig) -> None:
    try:
        api_call(config, "POST", "/v1/roster/reload", {})
        print("den kørende hub har genindlæst sin roster")
    except Unreachable:
        pass


def add_roster_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """``beredt roster add|remove|list|export`` and ``beredt peer add``."""
    roster = sub.add_parser("roster", parents=[common], help="de noder, hubben stoler på")
    roster_sub = roster.add_subparsers(dest="roster_command", required=True, metavar="HANDLING")
    add = roster_sub.add_parser(
        "add", parents=[common], help="stol på en node ud fra dens kort ('beredt id' på den)"
    )
    add.add_argument("card")
    add.add_argument(
        "--kinds",
        help="kommaseparerede slags, den må sende ud over protokollens egne (kvitteringer, ruter,"
        " logbogshoveder); standard: efter dens rolle",
    )
    add.add_argument(
        "--group",
        action="append",
        default=[],
        help="en gruppe, den kan nås gennem, fx distrikt-syd (gentag; standard: de grupper, den har)",
    )
    add.add_argument(
        "--contact-minutes",
        type=int,
        help="hvor tit den skal høres fra, før tavlen siger TAVS (0: konsollens standard)",
    )
    add.set_defaults(func=cmd_roster_add)
    remove = roster_sub.add_parser("remove", parents=[common], help="hold op med at stole på en node")
    remove.add_argument("node", help="node-id")
    remove.set_defaults(func=cmd_roster_remove)
    listing = roster_sub.add_parser("list", parents=[common], help="vis de noder, hubben stoler på")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_roster_list)
    export = roster_sub.add_parser(
        "export", parents=[common], help="skriv alle kort, hubben stoler på (til at dele)"
    )
    export.set_defaults(func=cmd_roster_export)
    peer = sub.add_parser("peer", parents=[common], help="nabohubber: stol på en og sig, hvordan den nås")
    peer_sub = peer.add_subparsers(dest="peer_command", required=True, metavar="HANDLING")
    peer_add = peer_sub.add_parser(
        "add",
        parents=[common],
        help="stol på en node ud fra dens kort, og tilføj den til [[peers]] med dens adresser",
        formatter_class=DanishFormatter,
        epilog="eksempel:\n  beredt peer add -c kommune.toml beredt1:Relay... --via internet=http://10.0.0.2:8471"
        " --default-route",
    )
    peer_add.add_argument("card", help="nodens kort ('beredt id --card-only' på den)")
    peer_add.add_argument(
        "--via",
        action="append",
        default=[],
        metavar="LINK=ADDRESS",
        help="hvordan den nås på en forbindelse (gentag)",
    )
    peer_add.add_argument("--default-route", action="store_true", help="send alt uden egen rute gennem den")
    peer_add.set_defaults(func=cmd_peer_add)
