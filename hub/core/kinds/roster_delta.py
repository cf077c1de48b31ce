"""A ROSTER delta: the change from one root-signed roster version to the next, signed by the root (sans-IO).

A whole version of an 80-node roster is about 10 KB: some 50 LoRa fragments, or 45 satellite messages,
for every enrolment. A delta carries only what changed (nodes added or changed, nodes removed, ids
revoked and un-revoked) and the digest of the *whole* version it produces, so a hub holding exactly
the base version rebuilds the next one, checks its digest against the root's and only then adopts it:
nothing a delta says changes state unless the result is, bit for bit in content, the version the root
signed. A hub holding any other version cannot use it and waits for (or asks for) the whole version,
which is still how a hub catches up after being offline.

The root signs ``DELTA_CONTEXT || body`` rather than the body alone, so a delta can never pass as a
version page (nor a page as a delta), and a hub that predates deltas refuses one as not the root's
instead of misreading it. Each payload is

    root signature (64 bytes) || CBOR map, canonical
      16 base version (uint)        17 version (uint, > base)     18 issued (Unix seconds)
      19 nodes added or changed: list of node maps as in a version (``hub.core.kinds.roster``)
      20 node ids removed   21 node ids newly revoked   22 node ids no longer revoked (absent: none)
      23 digest of the resulting version (``DIGEST_SIZE`` bytes of SHA-256, ``version_digest``)

Cross-certificates do not travel in deltas: a version that changes them goes whole (``make_delta``
returns None). One added care home (institution, a group) is 229 bytes, one revocation 115.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hub.core.errors import ProtocolError
from hub.core.frame import NODE_ID_SIZE
from hub.core.kinds.roster import (
    MAX_NODES,
    SIGNATURE_SIZE,
    RosterNode,
    RosterVersion,
    node_from_map,
    node_to_map,
)

DELTA_CONTEXT = b"beredt roster delta\x00"
DIGEST_SIZE = 16
"""128 bits: the root signs the digest, so only a second preimage of a root-made version would fool it."""
_BASE, _VERSION, _ISSUED, _NODES, _REMOVED, _REVOKED, _UNREVOKED, _DIGEST = range(16, 24)


def version_digest(version: RosterVersion) -> bytes:
    """What a version says, independent of how it was paged: number, time, nodes by id, revocations,
    cross-certificates."""
    nodes = sorted((node_to_map(n) for n in version.nodes), key=lambda item: bytes(item[1]))
    document: dict[int, Any] = {
        1: version.version,
        2: version.issued,
        3: nodes,
        4: sorted(version.revoked),
        7: sorted((c.to_map() for c in version.cross), key=lambda c: cbor2.dumps(c, canonical=True)),
    }
    return hashlib.sha256(cbor2.dumps(document, canonical=True)).digest()[:DIGEST_SIZE]


@dataclass(frozen=True, slots=True)
class RosterDelta:
    """The root's word that ``base`` becomes ``version`` by these changes, with that version's digest."""

    base: int
    version: int
    issued: int
    nodes: tuple[RosterNode, ...] = ()
    removed: frozenset[bytes] = frozenset()
    revoked: frozenset[bytes] = frozenset()
    unrevoked: frozenset[bytes] = frozenset()
    digest: bytes = b""

    def sign(self, root: Ed25519PrivateKey) -> bytes:
        document: dict[int, Any] = {
            _BASE: self.base,
            _VERSION: self.version,
            _ISSUED: self.issued,
            _DIGEST: self.digest,
        }
        for key, ids in ((_REMOVED, self.removed), (_REVOKED, self.revoked), (_UNREVOKED, self.unrevoked)):
            if ids:
                document[key] = sorted(ids)
        if self.nodes:
            document[_NODES] = [node_to_map(n) for n in self.nodes]
        body = bytes(cbor2.dumps(document, canonical=True))
        return root.sign(DELTA_CONTEXT + body) + body

    def apply_to(self, held: RosterVersion) -> RosterVersion:
        """The version this delta makes of ``held``; ``ValueError`` if ``held`` is not its base or the
        result is not the version the root signed (its digest differs)."""
        if held.version != self.base:
            raise ValueError(
                f"roster delta {self.base}->{self.version} does not apply to version {held.version}"
            )
        changed = {n.node_id for n in self.nodes}
        kept = tuple(n for n in held.nodes if n.node_id not in changed and n.node_id not in self.removed)
        result = replace(
            held,
            version=self.version,
            issued=self.issued,
            nodes=(*kept, *self.nodes),
            revoked=(held.revoked - self.unrevoked) | self.revoked,
        )
        if version_digest(result) != self.digest:
            raise ValueError(
                f"roster delta {self.base}->{self.version}: the result is not the root's version"
            )
        return result


def make_delta(base: RosterVersion, new: RosterVersion) -> RosterDelta | None:
    """The delta from ``base`` to ``new`` (a later version), or None when ``new`` must go whole: it
    changes cross-certificates, or is not later."""
    if new.version <= base.version or new.cross != base.cross:
        return None
    before = {n.node_id: n for n in base.nodes}
    after = {n.node_id for n in new.nodes}
    return RosterDelta(
        base=base.version,
        version=new.version,
        issued=new.issued,
        nodes=tuple(n for n in new.nodes if before.get(n.node_id) != n),
        removed=frozenset(before) - after,
        revoked=new.revoked - base.revoked,
        unrevoked=base.revoked - new.revoked,
        digest=version_digest(new),
    )


def is_delta(payload: bytes) -> bool:
    """True if ``payload`` is shaped as a delta (not yet checked: ``verify_delta`` does that)."""
    try:
        document = cbor2.loads(payload[SIGNATURE_SIZE:])
    except (cbor2.CBORError, ValueError, TypeError):
        return False
    return isinstance(document, dict) and _BASE in document


def verify_delta(payload: bytes, root: Ed25519PublicKey) -> RosterDelta:
    """Check the root's signature and decode; ``ProtocolError`` for anything but a genuine delta."""
    if len(payload) <= SIGNATURE_SIZE:
        raise ProtocolError("roster delta too short to carry the root's signature")
    signature, body = payload[:SIGNATURE_SIZE], payload[SIGNATURE_SIZE:]
    try:
        root.verify(signature, DELTA_CONTEXT + body)
    except InvalidSignature:
        raise ProtocolError("roster delta not signed by this municipality's root key") from None
    try:
        document = cbor2.loads(body)
        base, version, issued, digest = (
            document[_BASE],
            document[_VERSION],
            document[_ISSUED],
            document[_DIGEST],
        )
        nodes = tuple(node_from_map(item) for item in document.get(_NODES, [])[:MAX_NODES])
        removed, revoked, unrevoked = (
            frozenset(bytes(i) for i in document.get(key, [])) for key in (_REMOVED, _REVOKED, _UNREVOKED)
        )
    except (cbor2.CBORError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"roster delta does not decode: {exc}") from None
    if not all(isinstance(n, int) for n in (base, version, issued)) or not 0 <= base < version:
        raise ProtocolError("roster delta must lead from a version to a later one")
    if any(len(i) != NODE_ID_SIZE for i in removed | revoked | unrevoked):
        raise ProtocolError("roster delta lists something that is not a node id")
    if not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE:
        raise ProtocolError("roster delta carries no digest of the version it makes")
    return RosterDelta(base, version, issued, nodes, removed, revoked, unrevoked, digest)
