"""The node's side of a key rotation: the new key pair waits next to the old one until the root approves it.

``beredt key rotate`` writes the new pair to ``identity.next.key`` in the data folder and keeps signing with
``identity.key``. Each start of ``beredt run`` looks whether the root-signed roster this hub holds lists the
new card yet; once it does, the new pair becomes ``identity.key`` and the old one is kept, unused, as
``identity.retired.key`` (payloads sealed to the old key can still be opened by hand). Until then the hub
starts with the old key, so a rotation the coordinator has not approved never cuts a node off.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hub.core.errors import ConfigError
from hub.core.identity import Identity
from hub.core.kinds.roster import parse_root_public
from hub.relay.roster_updates import FILE_NAME, read_signed
from hub.service.config import HubConfig

log = logging.getLogger("beredt.keys")

NEXT_FILE = "identity.next.key"
RETIRED_FILE = "identity.retired.key"


def next_key_path(config: HubConfig) -> Path:
    return config.data_dir / NEXT_FILE


def take_approved_key(config: HubConfig) -> bool:
    """Make the waiting new key pair this node's key if the held signed roster lists it; True if so."""
    waiting = next_key_path(config)
    if not waiting.exists():
        return False
    new = Identity.load(waiting)
    signed = config.data_dir / FILE_NAME
    approved = False
    if config.trust.root is not None and signed.exists():
        version = read_signed(signed, parse_root_public(config.trust.root))[0]
        approved = version.node(new.node_id) is not None and new.node_id not in version.revoked
    if not approved:
        log.info("new key %s waits for the root's approval ('beredt key approve')", new.node_id.hex())
        return False
    current = config.identity_path
    if not current.exists():
        raise ConfigError(
            "en ny nøgle venter, men den nuværende mangler; hent den fra sikkerhedskopien", file=str(current)
        )
    os.replace(current, config.data_dir / RETIRED_FILE)
    os.replace(waiting, current)
    log.warning(
        "key rotated: this node is now %s (the old key is kept as %s)", new.node_id.hex(), RETIRED_FILE
    )
    return True
