"""``beredt root cross-certify``: let another municipality's hubs talk with ours in a joint incident.

Our root signs, in the next roster version, a cross-certificate naming the other municipality's root key,
the roles (and optionally groups) of its nodes we trust and until when (``hub.core.kinds.cross_cert``).
The other municipality does the same for ours. ``--revoke`` signs a version without it, which ends it on
every hub that applies it.
"""

from __future__ import annotations

import argparse
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.cli.municipality import issue_version
from hub.cli.remote import load_config, local_time
from hub.core.errors import ConfigError
from hub.core.kinds.cross_cert import CrossCertificate
from hub.core.kinds.roster import MAX_TEXT, parse_root_public
from hub.relay.roster import Role, valid_group_name


def add_cross_certify(
    root_actions: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    cross = root_actions.add_parser(
        "cross-certify",
        parents=[common],
        help="stol på en anden kommunes noder inden for en ramme (på stabshubben med vores rodnøgle)",
        description="Signerer i næste rosterversion, at noder i den anden kommunes roster med "
        "en af de givne roller (og grupper, hvis givet) er betroede hos vores hubber, "
        "til gyldigheden udløber. "
        "Den anden kommune kører det samme med vores rodnøgle. --revoke afslutter det.",
    )
    cross.add_argument("other_root", metavar="ROOT", help="den anden kommunes rodnøgle ([trust] root)")
    cross.add_argument("--name", help='den anden kommune, fx "Randers Kommune"')
    cross.add_argument(
        "--role",
        action="append",
        default=[],
        choices=[r.value for r in Role],
        help="en af deres roller, vi stoler på (gentag); fx staff for kun deres krisestabes hubber",
    )
    cross.add_argument("--group", action="append", default=[], help="kun deres noder i denne gruppe (gentag)")
    cross.add_argument(
        "--valid-days", type=float, default=30.0, help="hvor længe det gælder (standard 30 dage)"
    )
    cross.add_argument("--revoke", action="store_true", help="afslut krydscertifikatet for ROOT")
    cross.set_defaults(func=cmd_cross_certify)


def cmd_cross_certify(args: argparse.Namespace) -> int:
    try:
        other = _raw(parse_root_public(args.other_root))
    except ValueError as exc:
        raise ConfigError(str(exc), key="ROOT") from None
    config = load_config(args)
    if config.trust.root and _raw(parse_root_public(config.trust.root)) == other:
        raise ConfigError("ROOT er vores egen rodnøgle: angiv den anden kommunes", key="ROOT")
    if args.revoke:
        try:
            issued = issue_version(config, lambda current: current.without_cross(other))
        except ValueError as exc:
            raise ConfigError(str(exc), key="ROOT") from None
        print(f"krydscertifikatet er trukket tilbage i roster-version {issued.version}: dets noder afvises")
        return 0
    if not args.name or not args.name.strip() or len(args.name) > MAX_TEXT:
        raise ConfigError(f"angiv den anden kommunes navn (1-{MAX_TEXT} tegn)", key="--name")
    if not args.role:
        raise ConfigError("angiv mindst én af deres roller at stole på, fx --role staff", key="--role")
    bad = [g for g in args.group if not valid_group_name(g)]
    if bad:
        raise ConfigError(f"{bad[0]!r} er intet gruppenavn (1-80 tegn, intet kolon)", key="--group")
    if not 0 < args.valid_days <= 3660:
        raise ConfigError("forventede mere end 0 og højst 3660 dage", key="--valid-days")
    until = int(time.time() + args.valid_days * 86400)
    cert = CrossCertificate(
        other, args.name.strip(), tuple(dict.fromkeys(args.role)), tuple(g.strip() for g in args.group), until
    )
    issued = issue_version(config, lambda current: current.with_cross(cert))
    scope = ", ".join(cert.roles) + (f" i grupperne {', '.join(cert.groups)}" if cert.groups else "")
    print(
        f"{cert.name} er krydscertificeret i roster-version {issued.version}: deres noder med rollen {scope}"
        f" er betroet indtil {local_time(until)}"
    )
    print("Den anden kommune skal gøre det samme med vores rodnøgle, før deres hubber stoler på vores.")
    return 0


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)
