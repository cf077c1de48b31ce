"""``beredt token add|list|revoke``: bearer tokens for apps that use the ``/v1`` API over HTTP.

Works on the token file in the hub's data folder (``hub.api.tokens``); a running hub picks up the change at
its next request, so no restart is needed. The CLI itself needs no token: it uses the hub's Unix socket.
"""

from __future__ import annotations

import argparse
import datetime
import sys

from hub.api.tokens import TokenStore, parse_scopes
from hub.cli.remote import load_config

EXIT_OK, EXIT_FAILED = 0, 1


def add_token_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Register ``token`` on the ``beredt`` command's subparsers (``common`` carries ``--config``)."""
    token = subparsers.add_parser(
        "token",
        help="bearer-tokens til apps, der bruger /v1-API'et over HTTP: add, list, revoke",
        description="En app på en anden maskine (eller et script uden browser) når /v1 på [api] listen med "
        "'Authorization: Bearer TOKEN'. Rettigheder: send (sende beskeder, starte statusrunder, "
        "radiostatus), "
        "read (indbakke med forseglede personoplysninger åbnet, beskedtilstand, forbindelser, tavle), "
        "admin (det hele).",
    )
    actions = token.add_subparsers(dest="token_command", required=True, metavar="HANDLING")
    add = actions.add_parser(
        "add", parents=[common], help="lav et token; det vises én gang, så gem det sikkert"
    )
    add.add_argument("name", help="hvem der har det, fx 'alarmcentral' eller 'tablet-koekken'")
    add.add_argument(
        "--scope",
        action="append",
        required=True,
        metavar="SCOPE",
        help="send, read eller admin; gentag eller adskil med komma for flere",
    )
    add.set_defaults(func=cmd_token_add)
    listing = actions.add_parser(
        "list", parents=[common], help="vis tokens (navne og rettigheder, aldrig hemmeligheder)"
    )
    listing.set_defaults(func=cmd_token_list)
    revoke = actions.add_parser("revoke", parents=[common], help="tilbagekald et token med det samme")
    revoke.add_argument("name")
    revoke.set_defaults(func=cmd_token_revoke)


def _store(args: argparse.Namespace) -> TokenStore:
    return TokenStore(load_config(args).data_dir)


def cmd_token_add(args: argparse.Namespace) -> int:
    scopes = parse_scopes(args.scope)
    secret = _store(args).add(args.name, scopes)
    print(secret)
    print(
        f"token {args.name!r} ({', '.join(sorted(scopes))}): vises kun nu. Appen sender det som "
        "'Authorization: Bearer <token>'.",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    tokens = _store(args).all()
    if not tokens:
        print("(ingen)")
    for t in tokens:
        created = datetime.datetime.fromtimestamp(t.created).strftime("%Y-%m-%d %H:%M")
        print(f"{t.name}\t{','.join(sorted(t.scopes))}\t{created}")
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    if not _store(args).revoke(args.name):
        print(f"intet token ved navn {args.name!r}", file=sys.stderr)
        return EXIT_FAILED
    print(f"tilbagekaldte {args.name}")
    return EXIT_OK
