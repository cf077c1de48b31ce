"""``beredt key rotate`` on a node and ``beredt key approve`` on the staff hub: a node replaces its key pair.

Approval is by the coordinator, not automatic: the root key may live on a USB stick mounted only while
approving, and a thief holding a node's key must not be able to move that node's place in the roster to a
key of their own without a person checking with the node's owner. The statement the node prints is signed
with its current key (``hub.core.rotation``); ``approve`` checks it against the key the signed roster
lists, signs the new card into the next version in the old one's place and keeps the old key trusted for a
grace period only (``RosterVersion.with_rotated``). The node switches at its next start once it holds that
version (``hub.service.key_rotation``).
"""

from __future__ import annotations

import argparse
import shlex
import time

from hub.cli.municipality import issue_version
from hub.cli.remote import load_config, local_time
from hub.core.errors import ConfigError, ProtocolError
from hub.core.identity import Identity, PublicCard
from hub.core.kinds.roster import RosterVersion
from hub.core.rotation import decode, sign_rotation
from hub.service.key_rotation import next_key_path
from hub.service.node_identity import load_identity

EXIT_OK = 0
DEFAULT_GRACE_MINUTES = 24 * 60


def add_key_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    key = subparsers.add_parser(
        "key", help="udskift nodens nøglepar (rotate, derefter approve på stabens hub)"
    )
    actions = key.add_subparsers(dest="key_command", required=True, metavar="HANDLING")
    rotate = actions.add_parser(
        "rotate",
        parents=[common],
        help="på noden: lav et nyt nøglepar, og skriv erklæringen, koordinatoren godkender",
        description="På noden: lav et nyt nøglepar og skriv en erklæring signeret med den nuværende nøgle."
        " Koordinatoren kører 'beredt key approve ERKLÆRING' på stabens hub; genstart noden, når"
        " 'beredt roster list' viser det nye id.",
    )
    rotate.set_defaults(func=cmd_key_rotate)
    approve = actions.add_parser(
        "approve",
        parents=[common],
        help="på stabens hub: signér nodens nye nøgle ind i næste rosterversion",
        description="På stabens hub: signér nodens nye nøgle ind i næste rosterversion i den gamles sted"
        " (institution, grupper og rolle beholdes).",
    )
    approve.add_argument("statement", help="linjen, 'beredt key rotate' skrev (beredt-rotation1:...)")
    approve.add_argument(
        "--grace-minutes",
        type=float,
        default=DEFAULT_GRACE_MINUTES,
        help="hvor længe beskeder signeret med den gamle nøgle stadig godtages (standard: et døgn)",
    )
    approve.set_defaults(func=cmd_key_approve)


def cmd_key_rotate(args: argparse.Namespace) -> int:
    config = load_config(args)
    old = load_identity(config, create=False)
    waiting = next_key_path(config)
    if waiting.exists():  # asked again: the same new key, not a second one
        new = Identity.load(waiting)
    else:
        new = Identity.generate(old.name, old.role)
        new.save(waiting)
    statement = sign_rotation(old, new.card).encode()
    print(f"ny nøgle {new.node_id.hex()} venter i {waiting}; noden signerer stadig som {old.node_id.hex()}")
    print(f"rotationserklæring: {statement}")
    print("Koordinatoren kører på krisestabens hub:")
    print(f"  beredt key approve {shlex.quote(statement)}")
    print(
        f"Genstart denne hub, når 'beredt roster list' viser {new.node_id.hex()}:"
        " så signerer den med den nye nøgle."
    )
    return EXIT_OK


def cmd_key_approve(args: argparse.Namespace) -> int:
    try:
        rotation = decode(args.statement)
    except ValueError as exc:
        raise ConfigError(f"{exc} (noden skriver den med 'beredt key rotate')", key="STATEMENT") from None
    if not 0 <= args.grace_minutes <= 30 * 24 * 60:
        raise ConfigError("forventede 0 til 43200 minutter (30 dage)", key="--grace-minutes")
    grace_until = int(time.time() + args.grace_minutes * 60)
    moved: list[PublicCard] = []

    def rotate(current: RosterVersion) -> RosterVersion:
        old = current.node(rotation.old_id)
        if old is None:
            raise ConfigError(
                f"noden {rotation.old_id.hex()} er ikke i den signerede roster"
                " (tilbagekaldt eller aldrig tilmeldt)"
            )
        if rotation.card.node_id in current.revoked:
            raise ConfigError(
                "den nye nøgle er allerede tilbagekaldt; kør 'beredt key rotate' i en ny datamappe"
            )
        try:
            rotation.verify(old.card.signing_key)
        except ProtocolError as exc:
            raise ConfigError(str(exc), key="STATEMENT") from None
        # name and role stay what the root approved; only the keys change
        card = PublicCard(old.card.name, old.card.role, rotation.card.signing_key, rotation.card.sealing_key)
        moved.append(card)
        return current.with_rotated(rotation.old_id, card, grace_until, now=time.time())

    issued = issue_version(load_config(args), rotate)
    print(
        f"{moved[0].name} signerer nu som {moved[0].node_id.hex()} i roster-version {issued.version};"
        f" den gamle nøgle {rotation.old_id.hex()} afvises fra {local_time(grace_until)}"
    )
    return EXIT_OK
