"""The ROSTER payload: one version of the municipality's roster, signed by its root key (sans-IO).

Theory of operation. The municipality holds one Ed25519 *root* key; hubs are configured with its public
half and trust exactly the nodes the newest root-signed version lists, minus those it revokes. A
version is a complete snapshot, so any one version received over any link is enough for a hub that was
offline to catch up, and applying one is idempotent (the change alone also travels, root-signed, as a
delta: ``hub.core.kinds.roster_delta``). Versions only move forward: a hub keeps
the highest it has seen and refuses any lower number, so a replayed old version (one that still trusts a
stolen Pi) changes nothing.

A version larger than one frame is cut into *pages* (at most ``MAX_PAGES``), each signed on its own and
carrying the version number, its index, the page count and the whole revocation list; a hub applies the
version once it holds every page. Each payload is

    root signature (64 bytes) || CBOR map, canonical
      1 version (uint, > 0)     2 issued (Unix seconds)
      3 nodes: list of maps     1 ed25519 (32 bytes)  2 x25519 (32 bytes)  3 name  4 role
                                5 institution  6 groups (list of text)  7 valid_until (Unix s, 0 = open)
                                8 contact_minutes (how often it should be heard from; 0 = the default)
                                9 replaces (the node id this key pair took over from, see ``with_rotated``)
      4 revoked: list of node ids (8 bytes each)
      5 page index (absent: 0)  6 page count (absent: 1)
      7 cross-certificates: list of maps (other municipalities' roots this root vouches for within a
        scope, ``hub.core.kinds.cross_cert``; absent: none)

A node costs about 110 bytes, so a page holds about 35 nodes (``MAX_PAYLOAD``) and a version up to about
500; the fragment layer carries each page over LoRa and SBD. Unknown map keys are skipped, so fields may
be added.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field, replace
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.core.errors import ProtocolError
from hub.core.frame import MAX_PAYLOAD, NODE_ID_SIZE
from hub.core.identity import PublicCard
from hub.core.kinds.cross_cert import MAX_CROSS, CrossCertificate, cross_from_map

SIGNATURE_SIZE = 64
MAX_NODES = 1000
MAX_PAGES = 16
MAX_TEXT = 80
MAX_CONTACT_MINUTES = 7 * 24 * 60


@dataclass(frozen=True, slots=True)
class RosterNode:
    """One node the root vouches for: its card (keys, name, role), where it belongs and until when."""

    card: PublicCard
    institution: str = ""
    groups: tuple[str, ...] = ()
    valid_until: int = 0  # Unix seconds; 0: until revoked
    contact_minutes: int = 0  # how often it should be heard from (the board's silence alarm); 0: default
    replaces: bytes = b""  # the node id whose key this node's key replaced (hubs move its links over)

    @property
    def node_id(self) -> bytes:
        return self.card.node_id


@dataclass(frozen=True, slots=True)
class RosterVersion:
    """A complete roster as the root signs it. ``nodes`` are trusted unless their id is in ``revoked``."""

    version: int
    issued: int
    nodes: tuple[RosterNode, ...] = ()
    revoked: frozenset[bytes] = field(default_factory=frozenset)
    cross: tuple[CrossCertificate, ...] = ()

    def node(self, node_id: bytes) -> RosterNode | None:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        return None

    def with_node(self, node: RosterNode, *, now: float | None = None) -> RosterVersion:
        """The next version with ``node`` added (or replaced), un-revoked if it was revoked."""
        others = tuple(n for n in self.nodes if n.node_id != node.node_id)
        return replace(
            self, version=self.version + 1, issued=int(now or time.time()), nodes=(*others, node),
            revoked=self.revoked - {node.node_id},
        )  # fmt: skip

    def with_cross(self, cert: CrossCertificate, *, now: float | None = None) -> RosterVersion:
        """The next version vouching for ``cert.root`` within ``cert``'s scope (replacing an earlier one)."""
        others = tuple(c for c in self.cross if c.root != cert.root)
        return replace(self, version=self.version + 1, issued=int(now or time.time()), cross=(*others, cert))

    def without_cross(self, root: bytes, *, now: float | None = None) -> RosterVersion:
        """The next version that no longer vouches for ``root``: every hub drops its nodes on applying it."""
        if all(c.root != root for c in self.cross):
            raise ValueError("rosteren har intet krydscertifikat for den rodnøgle")
        others = tuple(c for c in self.cross if c.root != root)
        return replace(self, version=self.version + 1, issued=int(now or time.time()), cross=others)

    def with_revoked(self, node_id: bytes, *, now: float | None = None) -> RosterVersion:
        """The next version with ``node_id`` dropped from the nodes and listed as revoked."""
        others = tuple(n for n in self.nodes if n.node_id != node_id)
        return replace(
            self, version=self.version + 1, issued=int(now or time.time()), nodes=others,
            revoked=self.revoked | {node_id},
        )  # fmt: skip

    def with_rotated(self, old_id: bytes, card: PublicCard, grace_until: int, *, now: float) -> RosterVersion:
        """The next version in which ``card`` takes over ``old_id``'s place (institution, groups, role,
        validity) and the old key stays trusted only until ``grace_until``, so frames it signed and that are
        still on their way arrive; ``ValueError`` if ``old_id`` is not a node of this version."""
        old = self.node(old_id)
        if old is None:
            raise ValueError(f"noden {old_id.hex()} er ikke i rosterversion {self.version}")
        retiring = replace(old, valid_until=min(old.valid_until or grace_until, grace_until))
        successor = replace(old, card=card, replaces=old_id)
        others = tuple(n for n in self.nodes if n.node_id not in {old_id, card.node_id})
        return replace(
            self, version=self.version + 1, issued=int(now), nodes=(*others, retiring, successor),
        )  # fmt: skip

    def with_expired_revoked(self, now: float) -> RosterVersion:
        """This version with every node whose time ran out (``valid_until``) moved to the revoked list,
        so it stays refused by hubs whose clock is not trusted yet. The same object if none has."""
        expired = {n.node_id for n in self.nodes if n.valid_until and n.valid_until <= now}
        cross = tuple(c for c in self.cross if c.valid_until > now)
        if not expired and cross == self.cross:
            return self
        nodes = tuple(n for n in self.nodes if n.node_id not in expired)
        return replace(self, nodes=nodes, revoked=self.revoked | expired, cross=cross)

    def sign(self, root: Ed25519PrivateKey) -> list[bytes]:
        """The ROSTER payloads, one per page, each within ``MAX_PAYLOAD``; ``ValueError`` if the version
        needs more than ``MAX_PAGES`` pages."""
        chunks: list[list[dict[int, Any]]] = [[]]
        for node in self.nodes:
            item = node_to_map(node)
            if (
                chunks[-1]
                and len(self._body(chunks[-1] + [item], MAX_PAGES - 1, MAX_PAGES)) + SIGNATURE_SIZE
                > MAX_PAYLOAD
            ):
                chunks.append([])
            chunks[-1].append(item)
        if len(chunks) > MAX_PAGES:
            raise ValueError(  # shown to the coordinator by the CLI and the console
                f"rosterversion {self.version} fylder {len(chunks)} sider, men højst {MAX_PAGES} kan"
                f" rundsendes: {len(self.nodes)} noder og {len(self.revoked)} tilbagekaldte er for mange;"
                " tilbagekald noder, der ikke bruges mere"
            )
        bodies = [self._body(chunk, index, len(chunks)) for index, chunk in enumerate(chunks)]
        return [root.sign(body) + body for body in bodies]

    def _body(self, nodes: list[dict[int, Any]], index: int, count: int) -> bytes:
        document: dict[int, Any] = {1: self.version, 2: self.issued, 3: nodes, 4: sorted(self.revoked)}
        if self.cross:
            document[7] = [c.to_map() for c in self.cross]
        if count > 1:  # a single page carries neither key: the common case stays as small as it can
            document |= {5: index, 6: count}
        return bytes(cbor2.dumps(document, canonical=True))


@dataclass(frozen=True, slots=True)
class RosterPage:
    """One signed page of a version: its part of the nodes, the whole revocation list."""

    version: RosterVersion
    index: int = 0
    count: int = 1


def assemble(pages: list[RosterPage]) -> RosterVersion:
    """The version whose pages these are, all of them (``ValueError`` otherwise)."""
    first = pages[0].version
    indexes = sorted(p.index for p in pages)
    if indexes != list(range(pages[0].count)) or any(
        p.version.version != first.version or p.count != pages[0].count for p in pages
    ):
        raise ValueError(f"roster version {first.version}: pages missing or from different versions")
    nodes = tuple(n for p in sorted(pages, key=lambda p: p.index) for n in p.version.nodes)
    return RosterVersion(first.version, first.issued, nodes, first.revoked, first.cross)


def node_to_map(node: RosterNode) -> dict[int, Any]:
    item: dict[int, Any] = {
        1: node.card.signing_key,
        2: node.card.sealing_key,
        3: node.card.name,
        4: node.card.role,
    }
    if node.institution:
        item[5] = node.institution
    if node.groups:
        item[6] = list(node.groups)
    if node.valid_until:
        item[7] = node.valid_until
    if node.contact_minutes:
        item[8] = node.contact_minutes
    if node.replaces:
        item[9] = node.replaces
    return item


def root_public_text(key: Ed25519PublicKey) -> str:
    """The root's public key as the ``[trust] root`` value: URL-safe base64 without padding."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_root_public(text: str) -> Ed25519PublicKey:
    """The inverse of ``root_public_text``; ``ValueError`` says what a root key looks like."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError("en rodnøgle er 43 tegn base64 (som 'beredt root init' skriver den)")
    return Ed25519PublicKey.from_public_bytes(raw)


def enrolment_code(card: PublicCard) -> str:
    """A short code the coordinator reads back to check the card: 8 base32 letters of its hash."""
    digest = hashlib.sha256(card.encode().encode()).digest()
    code = base64.b32encode(digest).decode()[:8]
    return f"{code[:4]}-{code[4:]}"


def verify(payload: bytes, root: Ed25519PublicKey) -> RosterPage:
    """Check the root's signature and decode; ``ProtocolError`` for anything but a genuine page."""
    if len(payload) <= SIGNATURE_SIZE:
        raise ProtocolError("roster payload too short to carry the root's signature")
    signature, body = payload[:SIGNATURE_SIZE], payload[SIGNATURE_SIZE:]
    try:
        root.verify(signature, body)
    except InvalidSignature:
        raise ProtocolError("roster not signed by this municipality's root key") from None
    return _decode(body)


def _decode(body: bytes) -> RosterPage:
    try:
        document = cbor2.loads(body)
        version, issued = document[1], document[2]
        nodes = tuple(node_from_map(item) for item in document.get(3, [])[:MAX_NODES])
        revoked = frozenset(bytes(r) for r in document.get(4, []))
        index, count = document.get(5, 0), document.get(6, 1)
        cross = tuple(cross_from_map(item, _text) for item in document.get(7, [])[:MAX_CROSS])
    except (cbor2.CBORError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"roster version does not decode: {exc}") from None
    if not isinstance(version, int) or version <= 0 or not isinstance(issued, int):
        raise ProtocolError("roster version number must be a positive integer")
    if any(len(r) != NODE_ID_SIZE for r in revoked):
        raise ProtocolError("roster revocation list holds something that is not a node id")
    if not (isinstance(index, int) and isinstance(count, int) and 0 <= index < count <= MAX_PAGES):
        raise ProtocolError(f"roster page {index!r} of {count!r} is not a page of at most {MAX_PAGES}")
    return RosterPage(RosterVersion(version, issued, nodes, revoked, cross), index, count)


def node_from_map(item: dict[int, Any]) -> RosterNode:
    card = PublicCard(_text(item[3]), _text(item[4]), bytes(item[1]), bytes(item[2]))
    if len(card.signing_key) != 32 or len(card.sealing_key) != 32:
        raise ValueError("node keys must be 32 bytes each")
    groups = tuple(_text(g) for g in item.get(6, []))
    valid_until = item.get(7, 0)
    if not isinstance(valid_until, int):
        raise ValueError("valid_until must be Unix seconds")
    contact = item.get(8, 0)
    if not isinstance(contact, int) or not 0 <= contact <= MAX_CONTACT_MINUTES:
        raise ValueError(f"contact_minutes must be 0..{MAX_CONTACT_MINUTES}")
    replaces = bytes(item.get(9, b""))
    if len(replaces) not in (0, NODE_ID_SIZE):
        raise ValueError("replaces must be a node id")
    return RosterNode(card, _text(item.get(5, "")), groups, valid_until, contact, replaces)


def _text(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValueError(f"expected text of at most {MAX_TEXT} characters")
    return value
