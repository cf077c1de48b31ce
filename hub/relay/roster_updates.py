"""Root-signed roster versions on this hub: check a page, apply a complete version, keep it across restarts.

A hub with ``[trust] root`` holds at most one signed version, the newest it has seen, in
``roster.signed`` in its data folder (the pages as received, base64, one a line: they verify again at
every start, so a file edited by hand is refused, not trusted). ``check`` decides what an arriving ROSTER
payload is worth before it is stored or forwarded: forged (not the root's) and stale (older than ours)
pages are refused, so neither travels further; the same version again is harmless and is passed on (a
neighbour may still lack it). ``apply`` collects the pages of a newer version (those of one version only,
at most ``MAX_PAGES``), and once it has them all moves the roster forward and persists it. Every page
carries the version's whole revocation list, so the first page of a newer version already revokes
(``Roster.revoke_ahead``): a stolen Pi is refused as soon as any page of the version that revokes it is
here, not once the last is. A page is verified and decoded once (``_checked``), however often it comes.
A root-signed delta (``hub.core.kinds.roster_delta``) moves the roster forward only from the version it
was made from, and only to the version whose digest the root signed; any other hub takes its revocations
and waits for the whole version (logged once per delta, not refused: it is the root's). The deltas
applied follow the pages in ``roster.signed``, until the root's pages of the version held come by (the
root's hub repeats them every interval): they replace the chain, so what a hub holds, saves and hands
on stays one version's pages plus at most the deltas since.

Distribution rides on the relay engine: each page travels as a ROSTER broadcast, which every hub stores,
hop-acks and floods to its peers; a hub that is offline gets it from its neighbours' queues when it
returns (until the frame expires), and the hub holding the root key re-broadcasts the current version
every ``announce_interval`` so a hub offline for longer, or new, catches up within one interval.

Another municipality's roster is collected the same way, by a child ``RosterUpdates`` per root our own
version cross-certifies (its pages checked against that root, kept in ``roster.<root>.signed``): ``check_any``
tells which collector a page belongs to. A child goes, file and all, when our root stops vouching for it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.core.errors import ConfigError, ProtocolError, RefusalReason, TrustError
from hub.core.files import write_atomically
from hub.core.kinds.cross_cert import CrossCertificate
from hub.core.kinds.roster import MAX_PAGES, RosterPage, RosterVersion, assemble, verify
from hub.core.kinds.roster_delta import RosterDelta, is_delta, verify_delta
from hub.relay.roster import Roster, RosterEntry, scoped_entry

log = logging.getLogger("beredt.roster")

_Checked = TypeVar("_Checked", RosterPage, RosterDelta)

FILE_NAME = "roster.signed"
DELTA_FILE_NAME = "roster.delta"
"""On the root's hub: the delta that made the version in ``FILE_NAME``, announced in place of its pages."""


def read_signed(path: Path, root: Ed25519PublicKey) -> tuple[RosterVersion, list[bytes]]:
    """The version saved at ``path`` and its payloads: the pages of a version, then the deltas that led
    from it to the one held, in order; ``ConfigError`` if they do not verify."""
    try:
        payloads = [base64.b64decode(line, validate=True) for line in path.read_text().split()]
        version = assemble([verify(payload, root) for payload in payloads if not is_delta(payload)])
        for payload in payloads:
            if is_delta(payload):
                version = verify_delta(payload, root).apply_to(version)
    except (binascii.Error, ValueError, IndexError, ProtocolError) as exc:
        log.error("signed roster %s does not verify: %s", path, exc or "empty")
        raise ConfigError(
            "den signerede roster kan ikke verificeres med [trust] root (filen er beskadiget, tom eller fra"
            " en anden kommune); slet den, så henter hubben den gældende version hos sine naboer",
            file=str(path),
        ) from None
    return version, payloads


def write_signed(path: Path, payloads: list[bytes]) -> None:
    write_atomically(path, "".join(base64.b64encode(p).decode() + "\n" for p in payloads))


class RosterUpdates:
    """The signed part of a ``Roster``: the root that signs it, the pages held, the file they live in."""

    def __init__(
        self,
        roster: Roster,
        root: Ed25519PublicKey | None,
        data_dir: Path,
        *,
        cross: CrossCertificate | None = None,
    ) -> None:
        self.roster = roster
        self.root = cross.verify_key() if cross else root
        self.cross = cross
        """Set for another municipality's roster: the cross-certificate our root signed for it."""
        self.data_dir = data_dir
        self.path = data_dir / (f"roster.{cross.root.hex()[:16]}.signed" if cross else FILE_NAME)
        self.foreign: dict[bytes, RosterUpdates] = {}
        """Collectors of the rosters of the roots our version cross-certifies, by root key."""
        self.payloads: list[bytes] = []
        """The pages of a version, then the deltas that led from it to the one held, as signed by the
        root: what the hub announces and hands on."""
        self.delta: tuple[int, bytes] | None = None
        """The delta that made the version held, if one did, and the version it was made from:
        announced in place of the pages to neighbours that held that one."""
        self._deltas: dict[bytes, RosterDelta] = {}  # checked deltas, as ``_checked`` for pages
        self._unapplied: tuple[int, int] | None = None
        """The last delta (base, version) that could not be applied here: logged once, not per copy."""
        self._pending: dict[int, tuple[RosterPage, bytes]] = {}  # page index -> page of a newer version
        self._compacting: dict[int, tuple[RosterPage, bytes]] = {}  # page index -> page of the version held
        self._checked: dict[bytes, RosterPage] = {}
        """Payloads whose root signature held, decoded: a page is verified and decoded once here, not
        again when the same page comes by another link, as a repeat, or is looked at twice (admission)."""
        self._saving = asyncio.Lock()
        self.on_revoked: Callable[[bytes, int], None] | None = None
        """Told each node a newer version revokes, and that version's number, as soon as one page of it
        is here (the hub reports what is queued to it)."""
        self.on_adopted: Callable[[RosterVersion], None] | None = None
        """Told each version applied (the hub moves a rotated peer's links to its new key)."""

    @property
    def version(self) -> int:
        held = self.roster.foreign_version(self.cross.root) if self.cross else self.roster.version
        return held.version if held else 0

    def rebind(self, roster: Roster) -> None:
        """Move what is held onto ``roster`` (a reloaded local file): our version, then the others'."""
        old, self.roster = self.roster, roster
        if self.cross:
            held = old.foreign_version(self.cross.root)
            if held is not None:
                roster.apply_foreign(self.cross.root, held)
            return
        if old.version is not None:
            roster.apply(old.version)
        roster.revoke_ahead(*old.revoked_ahead)
        for child in self.foreign.values():
            child.rebind(roster)

    def check_any(self, payload: bytes) -> tuple[RosterUpdates, RosterPage]:
        """The collector ``payload`` belongs to (ours, or a cross-certified root's) and its page;
        ``TrustError`` as ``check`` when no root we follow signed it."""
        try:
            return self, self.check(payload)
        except TrustError as exc:
            if exc.reason is not RefusalReason.ROSTER_FORGED:
                raise
            for child in self.foreign.values():
                try:
                    return child, child.check(payload)
                except TrustError as foreign:
                    if foreign.reason is not RefusalReason.ROSTER_FORGED:
                        raise
            raise

    def load(self) -> bool:
        """Apply the version saved in the data folder if it is newer than the one held; True if it was."""
        if self.root is None or not self.path.exists():
            return False
        version, payloads = read_signed(self.path, self.root)
        if version.version <= self.version:
            return False
        self._adopt(version, payloads)
        self.delta = self._issued_delta(version) or self._last_delta(payloads)
        return True

    def _last_delta(self, payloads: list[bytes]) -> tuple[int, bytes] | None:
        """The delta that made the version held, when ``payloads`` end with one: a hub that got its
        version as a chain announces as it did before it restarted (``hub.relay.roster_follow``)."""
        if self.root is None or not payloads or not is_delta(payloads[-1]):
            return None
        return verify_delta(payloads[-1], self.root).base, payloads[-1]

    def _issued_delta(self, version: RosterVersion) -> tuple[int, bytes] | None:
        """The root hub's delta for ``version`` (``DELTA_FILE_NAME``), if it has one that verifies."""
        path = self.data_dir / DELTA_FILE_NAME
        if self.root is None or self.cross or not path.exists():
            return None
        try:
            payload = base64.b64decode(path.read_text().strip(), validate=True)
            delta = verify_delta(payload, self.root)
            if delta.version == version.version:
                return delta.base, payload
        except (binascii.Error, ProtocolError) as exc:
            log.warning("roster delta %s ignored: %s", path, exc)
        return None

    def check(self, payload: bytes) -> RosterPage:
        """The page in ``payload`` if it is the root's and not older than ours, else ``TrustError``."""
        if self.root is None:
            raise TrustError(RefusalReason.NOT_ALLOWED, "this hub has no [trust] root to check rosters with")
        if is_delta(payload):
            return self._check_delta(self._verified(payload, self._deltas, verify_delta))
        page = self._verified(payload, self._checked, verify)
        self._not_older(page.version.version)
        return page

    def _verified(
        self,
        payload: bytes,
        checked: dict[bytes, _Checked],
        check: Callable[[bytes, Ed25519PublicKey], _Checked],
    ) -> _Checked:
        """``payload`` as ``check`` decodes it once its root signature held, from ``checked`` when it was
        seen before (kept for two versions' worth: ours and the next); ``TrustError`` if forged."""
        assert self.root is not None
        found = checked.get(payload)
        if found is None:
            try:
                found = check(payload, self.root)
            except ProtocolError as exc:
                raise TrustError(RefusalReason.ROSTER_FORGED, str(exc)) from None
            if len(checked) >= 2 * MAX_PAGES:
                checked.clear()
            checked[payload] = found
        return found

    def _not_older(self, number: int) -> None:
        if number < self.version:
            raise TrustError(
                RefusalReason.ROSTER_STALE, f"version {number} is older than ours ({self.version})"
            )

    def _check_delta(self, delta: RosterDelta) -> RosterPage:
        """A delta as a page: the version it makes of the one held, if that is its base (refused as
        forged when the result is not the root's version); else a page with only its number and
        revocations, which revoke at once but adopt nothing (the hub waits for the whole version)."""
        self._not_older(delta.version)
        held = self.roster.foreign_version(self.cross.root) if self.cross else self.roster.version
        if held is None or held.version != delta.base:
            return RosterPage(RosterVersion(delta.version, delta.issued, revoked=delta.revoked))
        try:
            return RosterPage(delta.apply_to(held))
        except ValueError as exc:
            raise TrustError(RefusalReason.ROSTER_FORGED, str(exc)) from None

    def vouched(self, page: RosterPage, node_id: bytes) -> RosterEntry | None:
        """``node_id``'s entry in ``page`` or in a page already held of the same version, unless revoked
        (for another municipality's roster: only within the scope our root gave it)."""
        if self.cross and self.roster.is_ours(node_id):
            return None
        pages = [page, *(p for p, _ in self._pending.values() if p.version.version == page.version.version)]
        for candidate in pages:
            node = candidate.version.node(node_id)
            if node is not None and node_id not in page.version.revoked:
                return scoped_entry(self.cross, node) if self.cross else RosterEntry.from_node(node)
        return None

    def apply(self, page: RosterPage, payload: bytes) -> bool:
        """Hold ``page`` of a newer version; once every page is held, trust that version and save it.
        True if the roster moved forward, or its pages replaced the chain held (``_compact``). Saves on
        the caller's thread: the hub uses ``collect`` and ``save`` instead."""
        payloads = self.collect(page, payload)
        if payloads is None:
            return False
        write_signed(self.path, payloads)
        return True

    def collect(self, page: RosterPage, payload: bytes) -> list[bytes] | None:
        """Hold ``page`` of a newer version; once every page is held, trust that version at once and
        return its pages for ``save``; the pages of the version held replace a chain the same way
        (``_compact``). None if nothing held changed."""
        number = page.version.version
        if number == self.version and not is_delta(payload):
            return self._compact(page, payload)
        if number <= self.version:
            return None
        if not self.cross:  # another root's revocations count only within its version (``_Foreign``)
            for node_id in self.roster.revoke_ahead(number, page.version.revoked):
                self._revoked(node_id, number)
        delta = self._deltas.get(payload)
        if delta is not None:
            base = self.roster.foreign_version(self.cross.root) if self.cross else self.roster.version
            try:  # made again from what is held now: the held version may have moved since ``check``
                version = delta.apply_to(base) if base is not None else None
            except ValueError:
                version = None
            if version is None:
                self._not_applied(delta, base)
                return None
            payloads = [*self.payloads, payload]
            log.info("roster delta %d->%d (%d bytes) applied", delta.base, delta.version, len(payload))
            self._adopt(version, payloads)
            self.delta = delta.base, payload
            return payloads
        held = next(iter(self._pending.values()), None)
        if held is not None and (held[0].version.version, held[0].count) != (number, page.count):
            if held[0].version.version > number:
                return None  # a still newer version is being collected
            self._pending.clear()
        self._pending[page.index] = (page, payload)
        if len(self._pending) < page.count:
            return None
        pages = sorted(self._pending.values(), key=lambda held: held[0].index)
        self._pending.clear()
        version = assemble([p for p, _ in pages])
        payloads = [payload for _, payload in pages]
        self._adopt(version, payloads)
        return payloads

    def _not_applied(self, delta: RosterDelta, held: RosterVersion | None) -> None:
        """Say, once per delta, that a genuine delta was made from a version this hub does not hold:
        not forged, just of no use here until the whole version comes."""
        if self._unapplied == (delta.base, delta.version):
            return
        self._unapplied = delta.base, delta.version
        log.info(
            "roster delta%s %d->%d not applied: this hub holds %s, not version %d; waiting for the whole "
            "version %d%s",
            f" of {self.cross.name}" if self.cross else "",
            delta.base,
            delta.version,
            f"version {held.version}" if held is not None else "no version",
            delta.base,
            delta.version,
            "" if self.cross else " (its revocations count already)",
        )

    def _compact(self, page: RosterPage, payload: bytes) -> list[bytes] | None:
        """Hold ``page`` of the version held while that is held as a chain; once every page is here,
        they replace the chain (the version is the same: the root signed both) and are returned for
        ``save``. None while pages are missing, or when the pages held already are that version's."""
        if not any(is_delta(held) for held in self.payloads):
            self._compacting.clear()
            return None
        held = next(iter(self._compacting.values()), None)
        if held is not None and (held[0].version.version, held[0].count) != (
            page.version.version,
            page.count,
        ):
            self._compacting.clear()
        self._compacting[page.index] = (page, payload)
        if len(self._compacting) < page.count:
            return None
        pages = sorted(self._compacting.values(), key=lambda held: held[0].index)
        self._compacting.clear()
        try:
            assemble([p for p, _ in pages])
        except ValueError:  # pages that do not make a whole version: keep the chain
            return None
        self.payloads = [payload for _, payload in pages]
        log.info(
            "roster version %d: its %d pages replace the pages and deltas held",
            page.version.version, len(self.payloads),
        )  # fmt: skip
        return self.payloads

    async def save(self, payloads: list[bytes]) -> None:
        """Write a version ``collect`` adopted to the data folder, in a thread: its two fsyncs would
        otherwise stop the hub, and every frame it is passing on, while the disk works. A version
        superseded before its turn is not written; the newer one's own ``save`` writes that."""
        async with self._saving:
            if payloads is self.payloads:
                await asyncio.to_thread(write_signed, self.path, payloads)

    def _adopt(self, version: RosterVersion, payloads: list[bytes]) -> None:
        self.payloads, self.delta = payloads, None
        if self.cross:
            self.roster.apply_foreign(self.cross.root, version)
            log.info(
                "roster version %d of %s (cross-certified): %d nodes trusted here",
                version.version,
                self.cross.name,
                sum(1 for n in version.nodes if self.roster.get(n.node_id) is not None),
            )
            return
        already = frozenset(n for n in version.revoked if self.roster.is_revoked(n))
        self.roster.apply(version)
        self._follow_cross(version)
        log.info(
            "roster version %d: %d nodes, %d revoked",
            version.version,
            len(version.nodes),
            len(version.revoked),
        )
        for node_id in version.revoked - already:
            self._revoked(node_id, version.version)
        if self.on_adopted is not None:
            self.on_adopted(version)

    def _revoked(self, node_id: bytes, version: int) -> None:
        if self.on_revoked is not None:
            self.on_revoked(node_id, version)

    def _follow_cross(self, version: RosterVersion) -> None:
        """Collect the rosters of the roots ``version`` cross-certifies; forget those it no longer does."""
        certs = {c.root: c for c in version.cross}
        for root in [r for r in self.foreign if r not in certs]:
            gone = self.foreign.pop(root)
            gone.path.unlink(missing_ok=True)
            log.warning(
                "cross-certificate for %s ended: its nodes are no longer trusted",
                gone.cross and gone.cross.name,
            )
        for root, cert in certs.items():
            child = self.foreign.get(root)
            if child is None:
                child = self.foreign[root] = RosterUpdates(self.roster, None, self.data_dir, cross=cert)
                try:
                    child.load()
                except ConfigError as exc:
                    log.warning("%s; waiting for %s to announce its roster", exc, cert.name)
            else:
                child.cross = cert
