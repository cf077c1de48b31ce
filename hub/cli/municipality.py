"""``beredt root init``, ``beredt enrol``, ``beredt enrol approve`` and ``beredt revoke``: the municipality's
root of trust and the signed roster it issues (``hub.core.kinds.roster``, ``hub.relay.roster_updates``).

The root key signs roster versions and nothing else; it lives on the staff hub (``[trust] root_key``) or
on a USB stick mounted only while approving. ``approve`` and ``revoke`` write the next version into the
staff hub's data folder and tell the running hub, which applies it and broadcasts it to every hub.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import re
import shlex
import stat
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import segno
import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from hub.cli.remote import Unreachable, api_call, load_config, local_time, print_table
from hub.core.errors import ConfigError
from hub.core.files import write_atomically
from hub.core.identity import PublicCard
from hub.core.kinds.roster import (
    MAX_CONTACT_MINUTES,
    RosterNode,
    RosterVersion,
    enrolment_code,
    parse_root_public,
    root_public_text,
)
from hub.relay import roster_issue
from hub.relay.enrolment_requests import ENROL_PATH, request_statement
from hub.relay.roster import Role, valid_group_name
from hub.service import config as config_module
from hub.service.config import HubConfig
from hub.service.node_identity import load_identity
from transports.internet_settings import base_url

EXIT_OK, EXIT_FAILED = 0, 1

BACKUP_ADVICE = """\
Tag en sikkerhedskopi af rodnøglen nu, før noget tilmeldes: kopiér {path} til to USB-nøgler, mærk dem
'Beredt rodnøgle', og opbevar dem to aflåste steder (fx krisestabens pengeskab og IT-afdelingens).
Den, der har filen, kan tilmelde enhver node; uden den (og uden en kopi) kan ingen node tilmeldes eller
tilbagekaldes, før alle hubber har fået en ny rod."""


def add_municipality_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Register ``root``, ``enrol`` and ``revoke`` (``common`` carries ``--config``); returns ``root``'s
    actions, so ``hub.cli.federation`` adds ``cross-certify`` to them."""
    root = subparsers.add_parser("root", help="kommunens rodnøgle, der signerer rosteren")
    actions = root.add_subparsers(dest="root_command", required=True, metavar="HANDLING")
    init = actions.add_parser(
        "init",
        help="lav rodnøglen (én gang pr. kommune), og skriv linjen, alle hubbers opsætning skal have",
    )
    init.add_argument(
        "--out", required=True, type=Path, help="nøglefilen, der skal skrives, fx /media/usb/root.key"
    )
    init.set_defaults(func=cmd_root_init)

    enrol = subparsers.add_parser(
        "enrol",
        parents=[common],
        help="på en ny node: skriv dens tilmeldingskode og kort; 'enrol approve' på stabens hub",
        description="Kør på den nye node: skriver en kort kode og nodens kort. Koordinatoren kører så "
        "'beredt enrol approve KODE --card KORT --role ROLLE --institution NAVN' på stabens hub.",
    )
    enrol.add_argument(
        "--root",
        help="kommunens rodnøgle (skrevet af 'beredt root init'): skrives ind i nodens opsætning"
        " som [trust] root, hvis den ingen har",
    )
    enrol.add_argument(
        "--request",
        metavar="URL",
        help="send også kortet til stabshubbens konsol (dens [api]-adresse, fx http://10.0.0.2:8080):"
        " koordinatoren godkender det dér",
    )
    enrol.add_argument(
        "--entry",
        action="append",
        default=[],
        metavar="URL",
        help="et relæs internetadresse, hvor noden kommer ind i kommunens net, fx"
        " http://relae-nord.kommune.dk:8471 (gentag for flere): skrives i opsætningen som [trust] entry,"
        " så den ikke behøver en [[peers]]-post for sit relæ",
    )
    enrol.set_defaults(func=cmd_enrol)
    enrol_actions = enrol.add_subparsers(dest="enrol_command", metavar="HANDLING")
    approve = enrol_actions.add_parser(
        "approve",
        parents=[common],
        help="på stabens hub: signér noden ind i næste rosterversion",
        description="På stabens hub (med [trust] root_key): signér den nye node ind i næste rosterversion"
        " med koden og kortet, den skrev. Kører hubben, rundsender den versionen straks til alle hubber.",
    )
    approve.add_argument("code", help="koden, den nye node skrev, fx ABCD-EFGH")
    approve.add_argument("--card", required=True, help="kortet, den nye node skrev")
    approve.add_argument(
        "--role", required=True, choices=[r.value for r in Role], help="nodens rolle, fx care-home"
    )
    approve.add_argument("--institution", default="", help='fx "Plejecenter Solbakken"')
    approve.add_argument(
        "--name",
        help="nodens navn i rosteren, som alle hubber ser det (standard: navnet i dens kort); en Pi fra"
        " et fælles image får sit navn her, uden at dens opsætning rettes",
    )
    approve.add_argument(
        "--contact-minutes",
        type=int,
        default=0,
        help="hvor tit den skal høres fra, før stabens tavle siger TAVS (0: konsollens standard)",
    )
    approve.add_argument(
        "--group", action="append", default=[], help="en gruppe, den hører til, fx distrikt-nord (gentag)"
    )
    approve.add_argument(
        "--valid-days", type=int, help="betroet i så mange dage (standard: til den tilbagekaldes)"
    )
    approve.set_defaults(func=cmd_enrol_approve)

    revoke = subparsers.add_parser(
        "revoke",
        parents=[common],
        help="luk en node ude overalt: en ny rosterversion tilbagekalder den (fx en stjålet Pi)",
    )
    revoke.add_argument("node", help="dens node-id (16 hex-cifre; se 'beredt roster list')")
    revoke.set_defaults(func=cmd_revoke)
    return actions


def new_root_key() -> Ed25519PrivateKey:
    """A new root key whose public text does not begin with "-": one in 64 would, and written after a
    command (``beredt root cross-certify ROOT``) it would be read as an option."""
    key = Ed25519PrivateKey.generate()
    while root_public_text(key.public_key()).startswith("-"):
        key = Ed25519PrivateKey.generate()
    return key


def cmd_root_init(args: argparse.Namespace) -> int:
    path: Path = args.out
    if path.exists():
        raise ConfigError("der ligger allerede en rodnøgle dér; overskriv den aldrig", file=str(path))
    key = new_root_key()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    write_atomically(path, tomli_w.dumps({"ed25519": base64.urlsafe_b64encode(raw).decode()}), mode=0o600)
    print(f"skrev rodnøglen {path} (tilstand 0600)")
    print("Skriv dette i alle hubbers opsætning:")
    print(f'[trust]\nroot = "{root_public_text(key.public_key())}"')
    print(f'og på stabshubben, der godkender tilmeldinger, også: root_key = "{path}"')
    print(BACKUP_ADVICE.format(path=path))
    return EXIT_OK


def cmd_enrol(args: argparse.Namespace) -> int:
    config = load_config(args)
    root = args.root if args.root and config.trust.root is None else None
    entry = tuple(dict.fromkeys(args.entry))
    if entry and config.trust.entry and config.trust.entry != entry:
        raise ConfigError(
            f"opsætningen nævner andre indgange ({', '.join(config.trust.entry)}): ret [trust] entry",
            file=str(config.path),
            key="trust.entry",
        )
    if root or (entry and not config.trust.entry):
        config = _write_trust(config, root, entry if not config.trust.entry else ())
    identity = load_identity(config, create=True)
    card = identity.card
    print(f"tilmeldingskode: {enrolment_code(card)}")
    print(f"kort:            {card.encode()}")
    print("Kode og kort som QR-kode (scan den i stedet for at læse op):")
    enrolment_qr(card).terminal(out=sys.stdout, compact=True)
    if args.request:
        send_request(args.request, card.encode(), identity.sign_statement(request_statement(card)))
    print("Læs begge op for koordinatoren, som kører på stabens hub:")
    code, text = enrolment_code(card), shlex.quote(card.encode())
    print(f'  beredt enrol approve {code} --card {text} --role {card.role} --institution "..."')
    if config.trust.root is None:
        print(
            "Hubben har ingen [trust] root endnu: kør igen med --root NØGLE ('beredt root init').",
            file=sys.stderr,
        )
    elif config.trust.root != args.root and args.root:
        raise ConfigError(
            "opsætningen nævner en anden rodnøgle end --root", file=str(config.path), key="trust.root"
        )
    return EXIT_OK


def send_request(url: str, card: str, signature: bytes) -> None:
    """POST the card, signed with its own key, to the staff hub's ``/enrol``."""
    body = json.dumps({"card": card, "signature": base64.b64encode(signature).decode()}).encode()
    target = url.rstrip("/") + ENROL_PATH
    request = urllib.request.Request(target, body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise ConfigError(
            f"stabshubben afviste anmodningen ({exc.code}): {detail}", key="--request"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigError(f"kunne ikke nå {target}: {exc}", key="--request") from None
    print(f"Anmodningen er sendt til {url}: koordinatoren godkender den i konsollen under 'Tilmelding'.")
    print("Sammenlign koden i konsollen med koden herover, før den godkendes.")


def enrolment_qr(card: PublicCard) -> segno.QRCode:
    """The code and the card in one QR code, as ``CODE CARD``: scanned, it is what ``approve`` needs."""
    return segno.make(f"{enrolment_code(card)} {card.encode()}", error="m")


def _write_trust(config: HubConfig, root: str | None, entry: tuple[str, ...]) -> HubConfig:
    """Write ``[trust] root`` and ``entry`` into the config file (comments and layout kept) and read it
    back: a new [trust] table at the end, or the entry points at the top of the existing one."""
    option = "--root" if root else "--entry"
    if root is not None:
        try:
            parse_root_public(root)
        except ValueError as exc:
            raise ConfigError(str(exc), key="--root") from None
    bad = [e for e in entry if base_url(e) is None]
    if bad:
        raise ConfigError(f"{bad[0]!r} er ingen http(s)-adresse som http://relae-nord:8471", key="--entry")
    if config.path is None:
        raise ConfigError(f"{option} kræver en opsætningsfil (-c FIL) at skrive [trust] i", key=option)
    text = config.path.read_text()
    lines = ([f'root = "{root}"'] if root else []) + ([f"entry = {json.dumps(list(entry))}"] if entry else [])
    header = re.search(r"^\[trust\][ \t]*(#.*)?$", text, re.MULTILINE)
    if header is None:
        text = text.rstrip("\n") + "\n\n[trust]\n" + "".join(line + "\n" for line in lines)
    elif root:
        raise ConfigError("har en [trust]-tabel uden root: tilføj root dér", file=str(config.path))
    else:
        text = text[: header.end()] + "".join("\n" + line for line in lines) + text[header.end() :]
    _rewrite_keeping_owner(config.path, text)
    print(f"skrev [trust] {' og '.join(line.split(' =')[0] for line in lines)} i {config.path}")
    return config_module.load(config.path)


def _rewrite_keeping_owner(path: Path, text: str) -> None:
    """Replace the config file with ``text``, keeping its mode and owner: on a Pi it is root:beredt 0640
    (it may hold the MQTT password) and ``enrol`` runs as root, so a plain rewrite would leave it
    world-readable and root's."""
    before = path.stat()
    write_atomically(path, text, mode=stat.S_IMODE(before.st_mode))
    os.chmod(path, stat.S_IMODE(before.st_mode))  # the umask may have narrowed the new file's mode
    if os.geteuid() == 0:  # only root can give a file away; anyone else wrote it as its owner
        os.chown(path, before.st_uid, before.st_gid)


def cmd_enrol_approve(args: argparse.Namespace) -> int:
    try:
        claimed = PublicCard.decode(args.card)
    except ValueError as exc:
        raise ConfigError(f"{exc} (den nye node skriver det med 'beredt enrol')", key="--card") from None
    if args.code.strip().upper() != enrolment_code(claimed):
        raise ConfigError("koden passer ikke til kortet: læs begge igen fra den nye nodes skærm", key="CODE")
    name = claimed.name if args.name is None else args.name.strip()
    if not name or ":" in name:
        raise ConfigError("navnet må ikke være tomt eller indeholde ':'", key="--name")
    # The roster, not the node's own config, names it to every other hub: the coordinator may rename it.
    card = PublicCard(name, args.role, claimed.signing_key, claimed.sealing_key)
    valid_until = 0
    if args.valid_days:
        valid_until = int(
            (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=args.valid_days)).timestamp()
        )
    bad = [g for g in args.group if not valid_group_name(g)]
    if bad:
        raise ConfigError(f"{bad[0]!r} er intet gruppenavn (1-80 tegn, intet kolon)", key="--group")
    if not 0 <= args.contact_minutes <= MAX_CONTACT_MINUTES:
        raise ConfigError(
            f"forventede 1 til {MAX_CONTACT_MINUTES} minutter (0: standarden)", key="--contact-minutes"
        )
    groups = tuple(g.strip() for g in args.group)
    node = RosterNode(card, args.institution, groups, valid_until, args.contact_minutes)
    config = load_config(args)
    issued = issue_version(config, lambda current: current.with_node(node))
    print(f"tilmeldte {card.name} ({args.role}) som {node.node_id.hex()} i rosterversion {issued.version}")
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace) -> int:
    try:
        node_id = bytes.fromhex(args.node)
    except ValueError:
        node_id = b""
    if len(node_id) != 8:
        raise ConfigError(f"forventede et node-id på 16 hex-cifre, fik {args.node!r}", key="NODE")
    config = load_config(args)
    issued = issue_version(config, lambda current: current.with_revoked(node_id))
    print(
        f"tilbagekaldte {args.node} i rosterversion {issued.version}; alle hubber afviser den, når de har den"
    )
    return EXIT_OK


def issue_version(config: HubConfig, change: Callable[[RosterVersion], RosterVersion]) -> RosterVersion:
    """Sign ``change(current)`` with the root key, save it in this hub's data folder, tell the hub."""
    own = load_identity(config, create=False).card
    issued = roster_issue.issue(config.trust, config.data_dir, own, change)
    try:
        api_call(config, "POST", "/v1/roster/reload", {})
        print("den kørende hub har taget den i brug og rundsender den til alle hubber")
    except Unreachable:
        print("hubben kører ikke: den rundsender den nye version, når den starter")
    rows = [
        (n.node_id.hex(), n.card.role, n.card.name, n.institution, ",".join(n.groups)) for n in issued.nodes
    ]
    print_table(("NODE", "ROLLE", "NAVN", "INSTITUTION", "GRUPPER"), rows)
    for cert in issued.cross:
        scope = ", ".join(cert.roles) + (f" i grupperne {', '.join(cert.groups)}" if cert.groups else "")
        print(f"krydscertificeret: {cert.name} ({scope}) indtil {local_time(cert.valid_until)}")
    return issued
