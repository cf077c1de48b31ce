"""Encryption at rest for the citizen register: a register key outside the database, a data key per person.

Theory of operation. The register key (32 random bytes) lives in ``citizens.key`` beside the hub's
identity key, mode 0600, never in ``citizens.db``. Each citizen gets a random data key; the person's
fields are encrypted with it (ChaCha20-Poly1305, the citizen id as associated data, so a row cannot be
moved to another id), and the data key is stored *wrapped* by the register key. Erasing a person
deletes their wrapped key: whatever copies of their ciphertext remain (free pages, the WAL, an old
backup without the key file) can no longer be opened by anyone. Incident rows (follow-up lists, visits,
alarms) are sealed with the register key directly. A CPR number is looked up by a keyed tag
(HMAC-SHA256 with a key derived from the register key), because CPR numbers are few enough to guess
through a plain hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from hub.core.errors import ConfigError, SealError
from hub.core.files import secret_key

KEY_FILE = "citizens.key"
KEY_SIZE = 32
NONCE_SIZE = 12


class Vault:
    """Seals and opens register data with keys derived from one register key."""

    def __init__(self, register_key: bytes) -> None:
        if len(register_key) != KEY_SIZE:
            raise ConfigError(f"en registernøgle fylder {KEY_SIZE} bytes, ikke {len(register_key)}")
        self._wrap = ChaCha20Poly1305(_derive(register_key, b"wrap"))
        self._incident = ChaCha20Poly1305(_derive(register_key, b"incident"))
        self._tag_key = _derive(register_key, b"cpr-tag")

    @classmethod
    def load(cls, path: Path, *, create: bool = False) -> Vault:
        """The vault for the key in ``path`` (0600); with ``create`` a missing key file is made."""

        def not_found() -> ConfigError:
            return ConfigError(
                "registrets nøgle findes ikke; den laves af den første 'beredt citizens import'",
                file=str(path),
            )

        key = secret_key(path, "registrets nøgle", size=KEY_SIZE, create=create, missing=not_found)
        return cls(key)

    def cpr_tag(self, cpr: str) -> bytes:
        """A lookup tag for a CPR number that cannot be reversed without the register key."""
        return hmac.new(self._tag_key, cpr.encode(), hashlib.sha256).digest()[:16]

    @staticmethod
    def new_data_key() -> bytes:
        return ChaCha20Poly1305.generate_key()

    def wrap(self, data_key: bytes, citizen: bytes) -> bytes:
        return _seal(self._wrap, data_key, b"key" + citizen)

    def unwrap(self, wrapped: bytes, citizen: bytes) -> bytes:
        return _open(self._wrap, wrapped, b"key" + citizen)

    @staticmethod
    def seal_person(data_key: bytes, plain: bytes, citizen: bytes) -> bytes:
        return _seal(ChaCha20Poly1305(data_key), plain, b"person" + citizen)

    @staticmethod
    def open_person(data_key: bytes, sealed: bytes, citizen: bytes) -> bytes:
        return _open(ChaCha20Poly1305(data_key), sealed, b"person" + citizen)

    def seal_incident(self, plain: bytes, context: bytes) -> bytes:
        return _seal(self._incident, plain, context)

    def open_incident(self, sealed: bytes, context: bytes) -> bytes:
        return _open(self._incident, sealed, context)


def _derive(key: bytes, purpose: bytes) -> bytes:
    return hmac.new(key, b"beredt-citizens-" + purpose, hashlib.sha256).digest()


def _seal(aead: ChaCha20Poly1305, plain: bytes, context: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_SIZE)
    return nonce + aead.encrypt(nonce, plain, context)


def _open(aead: ChaCha20Poly1305, sealed: bytes, context: bytes) -> bytes:
    try:
        return aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], context)
    except InvalidTag:
        raise SealError(
            "register data does not open with this register key (wrong key or damaged row)"
        ) from None
