"""The hub's own identity file: loaded, or created on first use.

Apart from the engine: ``beredt init`` and the commands that only read the node's card import this without
the relay engine and its transports.
"""

from __future__ import annotations

import logging

from hub.core.errors import ConfigError
from hub.core.identity import Identity
from hub.service.config import HubConfig

log = logging.getLogger("beredt.hub")


def load_identity(config: HubConfig, *, create: bool) -> Identity:
    path = config.identity_path
    if not path.exists():
        if not create:
            raise ConfigError("noden har ingen nøgler endnu; kør 'beredt init' først", file=str(path))
        identity = Identity.generate(config.name, config.role.value)
        identity.save(path)
        log.info("created identity %s for %s", identity.node_id.hex(), config.name)
        return identity
    return Identity.load(path)
