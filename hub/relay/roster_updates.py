"""Root-signed roster versions on this hub: check one, apply it, keep it across restarts.

A hub with ``[trust] root`` holds at most one signed version, the newest it has seen, in
``roster.signed`` in its data folder (the payload as received, base64: it verifies again at every
start, so a file edited by hand is refused, not trusted). ``check`` decides what an arriving ROSTER
payload is worth before it is stored or forwarded: forged (not the root's) and stale (older than ours)
versions are refused, so neither travels further; the same version again is harmless and is passed on
(a neighbour may still lack it). ``apply`` moves the roster forward and persists it.

Distribution rides on the relay engine: a version travels as a ROSTER broadcast, which every hub stores,
hop-acks and floods to its peers; a hub that is offline gets it from its neighbours' queues when it
returns (until the frame expires), and the hub holding the root key re-broadcasts the current version
every ``announce_interval`` so a hub offline for longer, or new, catches up within one interval.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.core.errors import ConfigError, ProtocolError, RefusalReason, TrustError
from hub.core.files import write_atomically
from hub.core.kinds.roster import RosterVersion, verify
from hub.relay.roster import Roster

log = logging.getLogger("beredt.roster")

FILE_NAME = "roster.signed"


class RosterUpdates:
    """The signed part of ``roster``: the root that signs it, the payload held, the file it lives in."""

    def __init__(self, roster: Roster, root: Ed25519PublicKey | None, data_dir: Path) -> None:
        self.roster = roster
        self.root = root
        self.path = data_dir / FILE_NAME
        self.payload: bytes | None = None
        self.on_revoked: Callable[[bytes], None] | None = None
        """Told each node a newly applied version revokes (the hub reports what is queued to it)."""

    @property
    def version(self) -> int:
        return self.roster.version.version if self.roster.version else 0

    def load(self) -> bool:
        """Apply the version saved in the data folder if it is newer than the one held; True if it was."""
        if self.root is None or not self.path.exists():
            return False
        try:
            payload = base64.b64decode(self.path.read_text().strip(), validate=True)
            version = verify(payload, self.root)
        except (binascii.Error, ValueError, ProtocolError) as exc:
            raise ConfigError(
                f"signed roster does not verify against [trust] root ({exc}); delete it and the hub"
                " fetches the current version from its neighbours",
                file=str(self.path),
            ) from None
        if version.version <= self.version:
            return False
        self._adopt(version, payload)
        return True

    def check(self, payload: bytes) -> RosterVersion:
        """The version in ``payload`` if it is the root's and not older than ours, else ``TrustError``."""
        if self.root is None:
            raise TrustError(RefusalReason.NOT_ALLOWED, "this hub has no [trust] root to check rosters with")
        try:
            version = verify(payload, self.root)
        except ProtocolError as exc:
            raise TrustError(RefusalReason.ROSTER_FORGED, str(exc)) from None
        if version.version < self.version:
            raise TrustError(
                RefusalReason.ROSTER_STALE, f"version {version.version} is older than ours ({self.version})"
            )
        return version

    def apply(self, version: RosterVersion, payload: bytes) -> bool:
        """Trust ``version`` and save it, if it is newer than the one held; True if it was applied."""
        if version.version <= self.version:
            return False
        write_atomically(self.path, base64.b64encode(payload).decode() + "\n")
        self._adopt(version, payload)
        return True

    def _adopt(self, version: RosterVersion, payload: bytes) -> None:
        before = self.roster.version.revoked if self.roster.version else frozenset()
        self.roster.apply(version)
        self.payload = payload
        if self.on_revoked is not None:
            for node_id in version.revoked - before:
                self.on_revoked(node_id)
        log.info(
            "roster version %d: %d nodes, %d revoked",
            version.version,
            len(version.nodes),
            len(version.revoked),
        )
