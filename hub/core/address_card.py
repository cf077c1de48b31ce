"""A node's signed statement of where it answers on one kind of link: its address card.

A hub learns a peer's address only from the peer's own word, signed. The card names the node, the link
kind (``internet``), the address (a base URL) and when it was issued and expires, and carries an Ed25519
signature by the node's key over a domain tag and those fields, so it can be neither forged nor moved to
another node, link kind or address. A recorded card can be replayed, but only until it expires, and a
receiver never takes a card issued before the newest one it took from that node (``hub.relay.address_cards``).

Wire form (then base64url without padding, as one HTTP header value)::

    version 1 | node id (8) | issued (u32) | expires (u32) | kind length (1) | kind | address length (2)
      | address | signature (64)

``CardIssuer`` signs this node's cards and re-signs them as time passes, so a card in use is never older
than ``REFRESH`` seconds.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from hub.core.clock import Clock
from hub.core.errors import ProtocolError
from hub.core.frame import NODE_ID_SIZE, SIGNATURE_SIZE
from hub.core.identity import Identity

CARD_VERSION = 1
CARD_DOMAIN = b"beredt address card v1\x00"  # never the start of a frame's signed bytes (version 1)
LIFETIME = 3600  # seconds a card is valid: how long a recorded card can be replayed at all
REFRESH = 600  # seconds after which this node signs a new card
MAX_ADDRESS = 512  # bytes
MAX_CARD_TEXT = 1024  # characters of encoded card; a longer header is ignored unread
_FIXED = struct.Struct(f">B{NODE_ID_SIZE}sII")


@dataclass(frozen=True, slots=True)
class AddressCard:
    node: bytes
    link_kind: str
    address: str
    issued: int
    expires: int
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        kind, address = self.link_kind.encode(), self.address.encode()
        if not 0 < len(kind) < 256 or len(address) > MAX_ADDRESS:
            raise ValueError("link kind or address too long for an address card")
        return b"".join(
            (
                _FIXED.pack(CARD_VERSION, self.node, self.issued, self.expires),
                bytes([len(kind)]),
                kind,
                len(address).to_bytes(2, "big"),
                address,
            )
        )

    def encode(self) -> str:
        return base64.urlsafe_b64encode(self.signed_bytes() + self.signature).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> AddressCard:
        """Parse an encoded card (its signature is not checked here); ``ProtocolError`` if malformed."""
        if len(text) > MAX_CARD_TEXT:
            raise ProtocolError(f"address card of {len(text)} characters > {MAX_CARD_TEXT}")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError(f"address card is not base64url: {exc}") from None
        try:
            version, node, issued, expires = _FIXED.unpack_from(raw)
            at = _FIXED.size
            kind = raw[at + 1 : at + 1 + raw[at]]
            at += 1 + raw[at]
            length = int.from_bytes(raw[at : at + 2], "big")
            address = raw[at + 2 : at + 2 + length]
            at += 2 + length
            if version != CARD_VERSION or len(raw) != at + SIGNATURE_SIZE or len(address) != length:
                raise ProtocolError(f"address card of version {version} and {len(raw)} bytes is malformed")
            card = cls(node, kind.decode(), address.decode(), issued, expires, raw[at:])
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"address card is malformed: {exc}") from None
        return card


def signed_message(card: AddressCard) -> bytes:
    """What the node's key signs: the domain tag, then the card's fields."""
    return CARD_DOMAIN + card.signed_bytes()


class CardIssuer:
    """Signs this node's address cards with its key, one per (link kind, address), renewed after
    ``REFRESH`` seconds or when the clock moved back (a corrected clock)."""

    def __init__(self, identity: Identity, clock: Clock) -> None:
        self._identity = identity
        self._clock = clock
        self._cards: dict[tuple[str, str], AddressCard] = {}

    def card(self, link_kind: str, address: str) -> str:
        now = int(self._clock.time())
        card = self._cards.get((link_kind, address))
        if card is None or not card.issued <= now < card.issued + REFRESH:
            unsigned = AddressCard(self._identity.node_id, link_kind, address, now, now + LIFETIME)
            signature = self._identity.sign_statement(signed_message(unsigned))
            card = self._cards[(link_kind, address)] = AddressCard(
                unsigned.node, link_kind, address, now, now + LIFETIME, signature
            )
        return card.encode()
