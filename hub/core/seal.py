"""Sealing a payload to one recipient, for personal data (a named citizen who needs oxygen).

Sealed payload = ephemeral X25519 public key (32) || ChaCha20-Poly1305 ciphertext with tag. The key is
HKDF-SHA256 over the X25519 shared secret, bound to both public keys; the AEAD's associated data is
sender id || recipient id, so a sealed payload cannot be replayed under another sender's frame. A fresh
ephemeral key per message makes a fixed nonce safe. The frame signature covers the ciphertext, so
relays can verify and forward without reading it.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hub.core.errors import SealError

OVERHEAD = 32 + 16
_NONCE = b"\x00" * 12
_INFO = b"beredt seal v1"


def _key(shared: bytes, ephemeral: bytes, recipient_key: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=ephemeral + recipient_key, info=_INFO).derive(shared)


def seal(plaintext: bytes, recipient_key: bytes, *, sender: bytes, recipient: bytes) -> bytes:
    try:
        peer = X25519PublicKey.from_public_bytes(recipient_key)
    except ValueError as exc:
        raise SealError(f"recipient sealing key is invalid: {exc}") from exc
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = _key(ephemeral.exchange(peer), ephemeral_public, recipient_key)
    return ephemeral_public + ChaCha20Poly1305(key).encrypt(_NONCE, plaintext, sender + recipient)


def open_sealed(sealed: bytes, private: X25519PrivateKey, *, sender: bytes, recipient: bytes) -> bytes:
    if len(sealed) < OVERHEAD:
        raise SealError("sealed payload too short")
    own_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ephemeral_public = sealed[:32]
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        key = _key(shared, ephemeral_public, own_public)
        return ChaCha20Poly1305(key).decrypt(_NONCE, sealed[32:], sender + recipient)
    except (InvalidTag, ValueError) as exc:
        raise SealError("sealed payload cannot be opened with our key (not for us, or tampered)") from exc
