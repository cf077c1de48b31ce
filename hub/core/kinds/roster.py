"""The ROSTER payload: one version of the municipality's roster, signed by its root key (sans-IO).

Theory of operation. The municipality holds one Ed25519 *root* key; hubs are configured with its public
half and trust exactly the nodes the newest root-signed version lists, minus those it revokes. A
version is a complete snapshot (not a delta), so any one version received over any link is enough for a
hub that was offline to catch up, and applying one is idempotent. Versions only move forward: a hub keeps
the highest it has seen and refuses any lower or equal number, so a replayed old version (one that still
trusts a stolen Pi) changes nothing.

    payload = root signature (64 bytes) || CBOR map, canonical
      1 version (uint, > 0)     2 issued (Unix seconds)
      3 nodes: list of maps     1 ed25519 (32 bytes)  2 x25519 (32 bytes)  3 name  4 role
                                5 institution  6 groups (list of text)  7 valid_until (Unix s, 0 = open)
      4 revoked: list of node ids (8 bytes each)

A node costs about 110 bytes, so one version of about 35 nodes fits a frame (``MAX_PAYLOAD``); the
fragment layer carries it over LoRa and SBD. Unknown map keys are skipped, so fields may be added.
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

SIGNATURE_SIZE = 64
MAX_NODES = 1000
MAX_TEXT = 80


@dataclass(frozen=True, slots=True)
class RosterNode:
    """One node the root vouches for: its card (keys, name, role), where it belongs and until when."""

    card: PublicCard
    institution: str = ""
    groups: tuple[str, ...] = ()
    valid_until: int = 0  # Unix seconds; 0: until revoked

    @property
    def node_id(self) -> bytes:
        return self.card.node_id

    def valid_at(self, now: float) -> bool:
        return self.valid_until == 0 or now < self.valid_until


@dataclass(frozen=True, slots=True)
class RosterVersion:
    """A complete roster as the root signs it. ``nodes`` are trusted unless their id is in ``revoked``."""

    version: int
    issued: int
    nodes: tuple[RosterNode, ...] = ()
    revoked: frozenset[bytes] = field(default_factory=frozenset)

    def node(self, node_id: bytes) -> RosterNode | None:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        return None

    def with_node(self, node: RosterNode, *, now: float | None = None) -> RosterVersion:
        """The next version with ``node`` added (or replaced), un-revoked if it was revoked."""
        others = tuple(n for n in self.nodes if n.node_id != node.node_id)
        return RosterVersion(
            self.version + 1, int(now or time.time()), (*others, node), self.revoked - {node.node_id}
        )

    def with_revoked(self, node_id: bytes, *, now: float | None = None) -> RosterVersion:
        """The next version with ``node_id`` dropped from the nodes and listed as revoked."""
        others = tuple(n for n in self.nodes if n.node_id != node_id)
        return replace(
            self, version=self.version + 1, issued=int(now or time.time()), nodes=others,
            revoked=self.revoked | {node_id},
        )  # fmt: skip

    def body(self) -> bytes:
        nodes = []
        for node in self.nodes:
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
            nodes.append(item)
        document = {1: self.version, 2: self.issued, 3: nodes, 4: sorted(self.revoked)}
        return bytes(cbor2.dumps(document, canonical=True))

    def sign(self, root: Ed25519PrivateKey) -> bytes:
        """The ROSTER payload; ``ValueError`` if it is larger than one frame can carry."""
        body = self.body()
        payload = root.sign(body) + body
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(
                f"roster version {self.version} is {len(payload)} bytes, more than one frame's"
                f" {MAX_PAYLOAD}; {len(self.nodes)} nodes is too many for one signed version"
            )
        return payload


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
        raise ValueError("a root key is 43 characters of base64 (printed by 'beredt root init')")
    return Ed25519PublicKey.from_public_bytes(raw)


def enrolment_code(card: PublicCard) -> str:
    """A short code the coordinator reads back to check the card: 8 base32 letters of its hash."""
    digest = hashlib.sha256(card.encode().encode()).digest()
    code = base64.b32encode(digest).decode()[:8]
    return f"{code[:4]}-{code[4:]}"


def verify(payload: bytes, root: Ed25519PublicKey) -> RosterVersion:
    """Check the root's signature and decode; ``ProtocolError`` for anything else than a genuine version."""
    if len(payload) <= SIGNATURE_SIZE:
        raise ProtocolError("roster payload too short to carry the root's signature")
    signature, body = payload[:SIGNATURE_SIZE], payload[SIGNATURE_SIZE:]
    try:
        root.verify(signature, body)
    except InvalidSignature:
        raise ProtocolError("roster not signed by this municipality's root key") from None
    return _decode(body)


def _decode(body: bytes) -> RosterVersion:
    try:
        document = cbor2.loads(body)
        version, issued = document[1], document[2]
        nodes = tuple(_node(item) for item in document.get(3, [])[:MAX_NODES])
        revoked = frozenset(bytes(r) for r in document.get(4, []))
    except (cbor2.CBORError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"roster version does not decode: {exc}") from None
    if not isinstance(version, int) or version <= 0 or not isinstance(issued, int):
        raise ProtocolError("roster version number must be a positive integer")
    if any(len(r) != NODE_ID_SIZE for r in revoked):
        raise ProtocolError("roster revocation list holds something that is not a node id")
    return RosterVersion(version, issued, nodes, revoked)


def _node(item: dict[int, Any]) -> RosterNode:
    card = PublicCard(_text(item[3]), _text(item[4]), bytes(item[1]), bytes(item[2]))
    if len(card.signing_key) != 32 or len(card.sealing_key) != 32:
        raise ValueError("node keys must be 32 bytes each")
    groups = tuple(_text(g) for g in item.get(6, []))
    valid_until = item.get(7, 0)
    if not isinstance(valid_until, int):
        raise ValueError("valid_until must be Unix seconds")
    return RosterNode(card, _text(item.get(5, "")), groups, valid_until)


def _text(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValueError(f"expected text of at most {MAX_TEXT} characters")
    return value
