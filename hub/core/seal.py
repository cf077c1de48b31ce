"""Sealing personal data to its recipients (a named citizen who needs oxygen), sans-IO.

A sealed payload takes one of two forms, told apart by its first byte:

    DIRECT, to one node:           0x01 || ChaCha20-Poly1305(k, plaintext)            17 bytes added
    WRAPPED, to several (a broadcast): 0x02 || varint N || N x (hint 2 || wrapped key 16)
                                   || ChaCha20-Poly1305(content key, plaintext)      18 + 18 N bytes added

Keys. Every node has a static X25519 key on its card. The pair secret X25519(sender, recipient) is
computed once per peer key and kept, extracted with HKDF-SHA256 (``SealingKey``; at most ``PAIR_CACHE``
peers, in memory only, for as long as the hub runs). DIRECT expands it into
the message key with the frame's sender, recipient, kind, created time and nonce as HKDF info: a fresh
key per message without a fresh ephemeral key on air. WRAPPED seals once under a random 128-bit content
key and wraps it per recipient: expanding the pair key with the same context plus the recipient's id
gives 18 bytes, a 2-byte hint (so a recipient finds its slot without trying all of them, and an
observer cannot tell who the recipients are) and a 16-byte mask XORed onto the content key.

Why no ephemeral key: the frame's Ed25519 signature already authenticates the sender, so the
static-static exchange adds no forgery risk, and it saves 32 bytes a frame on LoRa and SBD. What it
gives up: no forward secrecy per message (whoever later steals a node's X25519 key reads every message
that node sent or received, recorded or stored), and a repeated (sender, recipient, kind, created, nonce)
would reuse a key (the 32-bit nonce is random per message, so two messages between the same pair in the
same second collide with probability 2^-32). The wrapped key has no tag of its own: a wrong or altered
slot yields a wrong content key, which the AEAD tag refuses, and any change to the slots breaks the frame
signature that every hub checks first. The AEAD's associated data is the same context, so a sealed
payload cannot be moved under another frame's header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from hub.core.errors import ProtocolError, SealError
from hub.core.frame import Frame, decode_varint, encode_varint

DIRECT = 0x01
WRAPPED = 0x02
TAG_SIZE = 16
HINT_SIZE = 2
WRAPPED_KEY_SIZE = 16
SLOT_SIZE = HINT_SIZE + WRAPPED_KEY_SIZE
DIRECT_OVERHEAD = 1 + TAG_SIZE

_SALT = b"beredt seal v2"
_NONCE = b"\x00" * 12  # every key below seals exactly one message
_DIRECT_INFO = b"beredt seal v2 direct"
_WRAP_INFO = b"beredt seal v2 wrap"
_CONTENT_INFO = b"beredt seal v2 content\x01"
_CONTEXT = struct.Struct(">8s8sBII")
_BLOCK = 64  # SHA-256's block: HMAC pads its key to it
_IPAD = int.from_bytes(b"\x36" * _BLOCK)
_OPAD = int.from_bytes(b"\x5c" * _BLOCK)
PAIR_CACHE = 4096
"""Pair keys a ``SealingKey`` keeps at most (one per peer key it sealed to or opened from)."""


@dataclass(frozen=True, slots=True)
class Context:
    """The frame fields a sealed payload is bound to (all of them signed)."""

    sender: bytes
    recipient: bytes
    kind: int
    created: int
    nonce: int

    @classmethod
    def of(cls, frame: Frame) -> Context:
        return cls(frame.sender, frame.recipient, frame.kind, frame.created, frame.nonce)

    def encode(self) -> bytes:
        return _CONTEXT.pack(self.sender, self.recipient, self.kind, self.created, self.nonce)


def wrapped_overhead(recipients: int) -> int:
    """Bytes a WRAPPED seal adds to a payload for ``recipients`` recipients."""
    return 1 + len(encode_varint(recipients)) + recipients * SLOT_SIZE + TAG_SIZE


class SealingKey:
    """This node's X25519 key and the pair keys it has derived (one exchange per peer key, kept)."""

    def __init__(self, private: X25519PrivateKey, node_id: bytes, *, keep: int = PAIR_CACHE) -> None:
        self._private = private
        self.node_id = node_id
        self._keep = keep
        self._pairs: dict[bytes, tuple[Any, Any]] = {}

    @property
    def kept_pairs(self) -> int:
        """How many pair keys are kept now (at most ``keep``)."""
        return len(self._pairs)

    def _pair(self, peer_key: bytes) -> tuple[Any, Any]:
        """HKDF-Extract of the pair secret with a fixed salt, kept per peer key (one X25519 per peer key), as
        the two SHA-256 states HMAC under it starts from (inner and outer pad already hashed): each
        message's HMAC then costs two short hashes instead of a keyed HMAC set up from scratch, and a
        broadcast to N readers no X25519 at all once their keys are kept. At most ``keep`` keys are
        kept, the oldest dropped first (a roster is far smaller; the bound holds whatever it holds)."""
        pads = self._pairs.get(peer_key)
        if pads is None:
            try:
                shared = self._private.exchange(X25519PublicKey.from_public_bytes(peer_key))
            except ValueError as exc:
                raise SealError(f"sealing key on the card is invalid: {exc}") from exc
            if len(self._pairs) >= self._keep:
                del self._pairs[next(iter(self._pairs))]
            inner, outer = _hmac_pads(hmac.digest(_SALT, shared, "sha256"))
            pads = self._pairs[peer_key] = (hashlib.sha256(inner), hashlib.sha256(outer))
        return pads

    def _derive(self, peer_key: bytes, info: bytes, size: int) -> bytes:
        """HKDF-Expand (RFC 5869, one block) of the pair's key: everything it is bound to is in ``info``.
        HMAC-SHA256 written out (RFC 2104) from the pair's cached pad states; the same bytes as
        ``hmac.digest(prk, info || 0x01, "sha256")``."""
        inner_pad, outer_pad = self._pair(peer_key)
        inner = inner_pad.copy()
        inner.update(info + b"\x01")
        outer = outer_pad.copy()
        outer.update(inner.digest())
        derived: bytes = outer.digest()
        return derived[:size]

    # ---- sealing ------------------------------------------------------------------------------------

    def seal_direct(self, plaintext: bytes, recipient_key: bytes, context: Context) -> bytes:
        """Seal to the one recipient named in ``context`` (its card's sealing key)."""
        encoded = context.encode()
        key = self._derive(recipient_key, _DIRECT_INFO + encoded, 32)
        return bytes([DIRECT]) + ChaCha20Poly1305(key).encrypt(_NONCE, plaintext, encoded)

    def seal_wrapped(
        self, plaintext: bytes, recipients: Sequence[tuple[bytes, bytes]], context: Context
    ) -> bytes:
        """Seal once and wrap the content key for each (node id, sealing key) in ``recipients``."""
        if not recipients:
            raise SealError("a sealed message needs at least one recipient who can open it")
        encoded = context.encode()
        content_key = secrets.token_bytes(WRAPPED_KEY_SIZE)
        # _derive written out: this loop is the one cost that grows with the readers. Each slot is the
        # first 18 bytes of the reader's derivation, hint in clear and the rest XORed with the content
        # key: all slots XORed at once with the content key repeated behind 2 zero bytes (the hints)
        prefix, pairs, derived = _WRAP_INFO + encoded, self._pairs, []
        for node_id, key in recipients:
            inner_pad, outer_pad = pairs.get(key) or self._pair(key)
            inner = inner_pad.copy()
            inner.update(prefix + node_id + b"\x01")
            outer = outer_pad.copy()
            outer.update(inner.digest())
            derived.append(outer.digest()[:SLOT_SIZE])
        slots = b"".join(derived)
        masked = int.from_bytes(slots) ^ int.from_bytes((bytes(HINT_SIZE) + content_key) * len(recipients))
        ciphertext = ChaCha20Poly1305(_expand(content_key)).encrypt(_NONCE, plaintext, encoded)
        return bytes([WRAPPED]) + encode_varint(len(recipients)) + masked.to_bytes(len(slots)) + ciphertext

    # ---- opening ------------------------------------------------------------------------------------

    def open(self, sealed: bytes, context: Context, keys: Mapping[bytes, bytes]) -> bytes:
        """The plaintext of a payload sealed by or to this node; ``keys`` maps node ids to sealing keys
        (the roster). ``SealError`` if this node is neither sender nor recipient, or the bytes were altered.
        """
        if not sealed:
            raise SealError("sealed payload is empty")
        if sealed[0] == DIRECT:
            return self._open_direct(sealed, context, keys)
        if sealed[0] == WRAPPED:
            return self._open_wrapped(sealed, context, keys)
        raise SealError(f"unknown sealed form {sealed[0]:#04x}")

    def _open_direct(self, sealed: bytes, context: Context, keys: Mapping[bytes, bytes]) -> bytes:
        if self.node_id == context.recipient:
            peer = context.sender
        elif self.node_id == context.sender:
            peer = context.recipient
        else:
            raise SealError("sealed to another node")
        peer_key = _key_of(keys, peer)
        encoded = context.encode()
        key = self._derive(peer_key, _DIRECT_INFO + encoded, 32)
        return _decrypt(key, sealed[1:], encoded)

    def _open_wrapped(self, sealed: bytes, context: Context, keys: Mapping[bytes, bytes]) -> bytes:
        try:
            decoded = decode_varint(sealed, 1)
        except ProtocolError as exc:
            raise SealError(f"sealed payload is malformed: {exc}") from exc
        if decoded is None:
            raise SealError("sealed payload is truncated")
        count, at = decoded
        body_at = at + count * SLOT_SIZE
        if len(sealed) < body_at + TAG_SIZE:
            raise SealError("sealed payload is truncated")
        encoded = context.encode()
        if self.node_id == context.sender:  # our own broadcast: any recipient's slot opens it
            candidates = [(node, key) for node, key in keys.items() if node != self.node_id]
        else:
            candidates = [(self.node_id, _key_of(keys, context.sender))]
        for node_id, peer_key in candidates:
            mask = self._derive(peer_key, _WRAP_INFO + encoded + node_id, SLOT_SIZE)
            hint = mask[:HINT_SIZE]  # on the wire anyway: no need to compare it in constant time
            for slot_at in range(at, body_at, SLOT_SIZE):
                if sealed[slot_at : slot_at + HINT_SIZE] == hint:
                    content_key = _xor(sealed[slot_at + HINT_SIZE : slot_at + SLOT_SIZE], mask[HINT_SIZE:])
                    try:
                        return _decrypt(_expand(content_key), sealed[body_at:], encoded)
                    except SealError:
                        continue  # a hint that matched by chance (1 in 65,536)
        raise SealError("sealed to other nodes")


def _key_of(keys: Mapping[bytes, bytes], node_id: bytes) -> bytes:
    key = keys.get(node_id)
    if key is None:
        raise SealError(f"node {node_id.hex()} is not in the roster, so its sealed payload cannot be opened")
    return key


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a) ^ int.from_bytes(b)).to_bytes(len(a))


def _expand(content_key: bytes) -> bytes:
    """The 256-bit ChaCha20 key from a 128-bit content key (HKDF-Expand, one block): HMAC-SHA256 written
    out (RFC 2104), the same bytes as ``hmac.digest(content_key, _CONTENT_INFO, "sha256")`` at a fifth
    less of its cost (OpenSSL's HMAC set-up is the dearer part for a key used once)."""
    inner, outer = _hmac_pads(content_key)
    return hashlib.sha256(outer + hashlib.sha256(inner + _CONTENT_INFO).digest()).digest()


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's inner and outer padded keys (RFC 2104) for a key of at most one SHA-256 block."""
    padded = int.from_bytes(key.ljust(_BLOCK, b"\x00"))
    return (padded ^ _IPAD).to_bytes(_BLOCK), (padded ^ _OPAD).to_bytes(_BLOCK)


def _decrypt(key: bytes, ciphertext: bytes, associated: bytes) -> bytes:
    try:
        return ChaCha20Poly1305(key).decrypt(_NONCE, ciphertext, associated)
    except InvalidTag as exc:
        raise SealError("sealed payload cannot be opened (not for us, or altered)") from exc
