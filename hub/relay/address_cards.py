"""Which address a peer's signed address card lets us learn (``hub.core.address_card``).

A card counts only if it came with a frame that was just stored as new, fresh and with zero hops (the
caller checks that), is signed by that frame's own sender for this link's kind, has not expired by a
clock we trust, and is not older than the newest card already taken from that node on that link: a
recorded card from before a move cannot take the address back. A card whose address names no host (a
hub listening on all interfaces without ``public_url``) is a hint only; nothing is learned from it.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

from cryptography.exceptions import InvalidSignature

from hub.core.address_card import LIFETIME, AddressCard, signed_message
from hub.core.clock import Clock
from hub.core.errors import ProtocolError, RefusalReason, TrustError
from hub.relay.roster import RosterEntry

MAX_SKEW = 300  # seconds a card may be issued ahead of our clock


class AddressCards:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._newest: dict[tuple[bytes, str], int] = {}
        """(node, link) -> issued time of the newest card taken; bounded by roster size x links."""

    def address(self, text: str, signer: RosterEntry, link: str, link_kind: str) -> str | None:
        """The address ``signer``'s card ``text`` proves on ``link``, or None if it names no host.
        Raises ``TrustError`` (``ADDRESS_CARD``) for a card that proves nothing."""
        try:
            card = AddressCard.decode(text)
        except ProtocolError as exc:
            raise TrustError(RefusalReason.ADDRESS_CARD, str(exc)) from None
        if card.node != signer.node_id:
            raise TrustError(
                RefusalReason.ADDRESS_CARD,
                f"card of {card.node.hex()} came with a frame from {signer.node_id.hex()}",
            )
        try:
            signer.verify_key.verify(card.signature, signed_message(card))
        except InvalidSignature:
            raise TrustError(
                RefusalReason.ADDRESS_CARD, f"card signature of {signer.name} does not verify"
            ) from None
        self._check_time(card, signer)
        if card.link_kind != link_kind:
            raise TrustError(
                RefusalReason.ADDRESS_CARD, f"card is for a {card.link_kind} link, not {link_kind}"
            )
        key = (card.node, link)
        newest = self._newest.get(key, 0)
        if card.issued < newest:
            raise TrustError(
                RefusalReason.ADDRESS_CARD,
                f"card of {signer.name} issued {newest - card.issued} s before the one already taken",
            )
        self._newest[key] = card.issued
        return None if _names_no_host(card.address) else card.address

    def _check_time(self, card: AddressCard, signer: RosterEntry) -> None:
        if not self.clock.trusted:
            raise TrustError(RefusalReason.ADDRESS_CARD, "our clock is not trusted: expiry cannot be checked")
        now = self.clock.time()
        if card.expires <= now:
            raise TrustError(
                RefusalReason.ADDRESS_CARD, f"card of {signer.name} expired {int(now - card.expires)} s ago"
            )
        if card.issued > now + MAX_SKEW or card.expires - card.issued > LIFETIME:
            raise TrustError(RefusalReason.ADDRESS_CARD, f"card of {signer.name} has implausible times")


def _names_no_host(address: str) -> bool:
    """True for an address without a host, or with an "every interface" one (``0.0.0.0``, ``::``)."""
    try:
        host = urllib.parse.urlsplit(address).hostname
    except ValueError:
        return True
    if not host:
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False  # a name
