"""``beredt groups`` and ``beredt group-message``: the groups a hub can address, and what became of a
message sent to one (one message per member; see "Groups as addresses" in docs/message-kinds.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from hub.cli.remote import EXIT_OK, api_call, load_config, local_time, print_table
from hub.core.errors import UsageError

STATES = {"received": "modtaget", "pending": "ikke bekræftet", "failed": "udløbet", "revoked": "tilbagekaldt"}


def cmd_groups(args: argparse.Namespace) -> int:
    groups = api_call(load_config(args), "GET", "/v1/groups")["groups"]
    if args.json:
        print(json.dumps(groups, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not groups:
        print("ingen grupper: giv noderne grupper med 'beredt enrol approve ... --group NAVN',"
              " groups = [...] i roster.toml eller i [[peers]]")  # fmt: skip
        return EXIT_OK
    rows = [
        (g["name"], str(g["count"]), ", ".join(m["name"] or m["node"] for m in g["members"])) for g in groups
    ]
    print_table(("GRUPPE", "MEDLEMMER", "HVEM"), rows)
    return EXIT_OK


def cmd_group_message(args: argparse.Namespace) -> int:
    config = load_config(args)
    wanted = args.id.lower()
    if len(wanted) != 16:
        newest = api_call(config, "GET", "/v1/group-messages?limit=500")["group_messages"]
        found = [g["id"] for g in newest if g["id"].startswith(wanted)]
        if len(found) != 1:
            if not found:
                raise UsageError(f"ingen gruppebesked passer til {wanted!r}")
            raise UsageError(f"{wanted!r} passer til {len(found)} gruppebeskeder: giv flere cifre")
        wanted = found[0]
    sent: dict[str, Any] = api_call(config, "GET", f"/v1/group-messages/{wanted}")
    if args.json:
        print(json.dumps(sent, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(
        f"gruppebesked {sent['id']} ({sent['kind']}) til {sent['group']}, sendt {local_time(sent['created'])}"
    )
    print(f"{sent['received']} af {sent['total']} har modtaget")
    print()
    print_table(
        ("MEDLEM", "TILSTAND", "MODTAGET", "BESKED"),
        [(m["name"], STATES.get(m["state"], m["state"]), local_time(m["received_at"]), m["message"])
         for m in sent["members"]],
    )  # fmt: skip
    return EXIT_OK


def add_group_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    groups = sub.add_parser(
        "groups", parents=[common], help="de grupper, hubben kan sende til, med medlemmer"
    )
    groups.add_argument("--json", action="store_true")
    groups.set_defaults(func=cmd_groups)
    message = sub.add_parser(
        "group-message", parents=[common], help="én gruppebesked: hvilke medlemmer der har modtaget den"
    )
    message.add_argument("id", help="gruppebeskedens id (16 hex-cifre, eller en entydig begyndelse)")
    message.add_argument("--json", action="store_true", help="API'ets JSON i stedet for oversigten")
    message.set_defaults(func=cmd_group_message)
