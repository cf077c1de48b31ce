"""A node's request to replace its key pair, signed with the key it replaces (sans-IO).

``beredt key rotate`` makes a new key pair on the node and prints a *rotation statement*: the old node id
and the new card, signed by the old signing key. The staff hub checks that signature against the old key
as the root-signed roster lists it before the root signs the new card into the next version (``beredt key
approve``), so only the holder of the old key can move a node's place in the roster to a new key, and only
with the coordinator's (the root's) consent as well. Its text form, one line to copy or read out, is

    beredt-rotation1:<old node id, 16 hex digits>:<signature, base64>:<new card>
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.core.errors import ProtocolError
from hub.core.frame import NODE_ID_SIZE
from hub.core.identity import STATEMENT_TAG, Identity, PublicCard

PREFIX = "beredt-rotation1"
DOMAIN = STATEMENT_TAG + b"key-rotation v1\n"


@dataclass(frozen=True, slots=True)
class Rotation:
    """``old_id`` hands its place over to ``card``; ``signature`` is the old key's over both."""

    old_id: bytes
    card: PublicCard
    signature: bytes

    def encode(self) -> str:
        signature = base64.urlsafe_b64encode(self.signature).decode().rstrip("=")
        return f"{PREFIX}:{self.old_id.hex()}:{signature}:{self.card.encode()}"

    def verify(self, old_key: bytes) -> None:
        """``ProtocolError`` unless the old signing key ``old_key`` signed this statement."""
        try:
            Ed25519PublicKey.from_public_bytes(old_key).verify(
                self.signature, _message(self.old_id, self.card)
            )
        except InvalidSignature:
            raise ProtocolError(  # shown to the coordinator by 'beredt key approve'
                "rotationserklæringen er ikke signeret med nodens nuværende nøgle"
            ) from None


def sign_rotation(old: Identity, card: PublicCard) -> Rotation:
    return Rotation(old.node_id, card, old.sign_statement(_message(old.node_id, card)))


def decode(text: str) -> Rotation:
    """The statement in ``text``; ``ValueError`` says what one looks like."""
    parts = text.strip().split(":", 3)
    if len(parts) != 4 or parts[0] != PREFIX:
        raise ValueError(f"en rotationserklæring ser sådan ud: '{PREFIX}:<node-id>:<signatur>:<kort>'")
    try:
        old_id = bytes.fromhex(parts[1])
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except ValueError:
        old_id = signature = b""
    if len(old_id) != NODE_ID_SIZE or len(signature) != 64:
        raise ValueError("rotationserklæringens node-id eller signatur er beskadiget: kopiér den igen")
    return Rotation(old_id, PublicCard.decode(parts[3]), signature)


def _message(old_id: bytes, card: PublicCard) -> bytes:
    return DOMAIN + old_id + card.encode().encode()
