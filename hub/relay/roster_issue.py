"""Signing the next roster version with the municipality's root key, on the hub that holds it.

Used by the CLI (``beredt enrol approve``, ``beredt revoke``, ``beredt key approve``, ``beredt root
cross-certify``) and by the console's enrolment page: both read the current version from the data folder,
apply one change, sign it and write it back; the running hub then applies and broadcasts it.
"""

from __future__ import annotations

import base64
import dataclasses
import stat
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.errors import ConfigError
from hub.core.identity import PublicCard
from hub.core.kinds.roster import RosterNode, RosterVersion, parse_root_public, root_public_text
from hub.core.kinds.roster_delta import make_delta
from hub.relay.roster_updates import DELTA_FILE_NAME, FILE_NAME, read_signed, write_signed
from hub.relay.settings import TrustSettings


def current_version(trust: TrustSettings, data_dir: Path) -> RosterVersion:
    """The signed version in the data folder (version 0 if there is none yet)."""
    if trust.root is None:
        raise ConfigError(
            "ingen [trust] root i konfigurationen: tilføj linjen, som 'beredt root init' skrev", key="trust"
        )
    path = data_dir / FILE_NAME
    if not path.exists():
        return RosterVersion(0, 0)
    return read_signed(path, parse_root_public(trust.root))[0]


def issue(
    trust: TrustSettings, data_dir: Path, own: PublicCard, change: Callable[[RosterVersion], RosterVersion]
) -> RosterVersion:
    """Sign ``change(current)`` with the root key and save it in ``data_dir``; ``ConfigError`` if the key
    is missing, readable by others or not ``[trust] root``'s, or the version does not fit."""
    root = load_root_key(trust)
    current = saved = current_version(trust, data_dir)
    if current.node(own.node_id) is None:  # hubs trust a ROSTER frame by its sender's card in it
        current = dataclasses.replace(current, nodes=(*current.nodes, RosterNode(own)))
    issued = change(current).with_expired_revoked(time.time())  # refused even by a hub with no clock yet
    try:
        payloads = issued.sign(root)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    # the change alone, for hubs holding the saved version: a few hundred bytes where the pages take KB
    delta = make_delta(saved, issued) if saved.version else None
    (data_dir / DELTA_FILE_NAME).unlink(missing_ok=True)  # never announced beside a version not its own
    write_signed(data_dir / FILE_NAME, payloads)
    if delta is not None:
        write_signed(data_dir / DELTA_FILE_NAME, [delta.sign(root)])
    return issued


def load_root_key(trust: TrustSettings) -> Ed25519PrivateKey:
    path = trust.root_key
    if path is None:
        raise ConfigError(
            "ingen root_key i [trust]: det er ikke denne hub, der godkender tilmeldinger", key="trust"
        )
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigError("rodnøglen findes ikke: er USB-nøglen sat i og monteret?", file=str(path)) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"rodnøglen kan læses af andre; kør 'chmod 600 {path}'", file=str(path))
    try:
        raw = base64.urlsafe_b64decode(tomllib.loads(path.read_text())["ed25519"])
        key = Ed25519PrivateKey.from_private_bytes(raw)
    except (tomllib.TOMLDecodeError, KeyError, ValueError):
        raise ConfigError("rodnøglens fil er beskadiget; brug sikkerhedskopien", file=str(path)) from None
    if trust.root and root_public_text(key.public_key()) != trust.root:
        raise ConfigError("denne rodnøgle er ikke den, [trust] root angiver", file=str(path))
    return key
