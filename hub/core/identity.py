"""A node's keys: Ed25519 to sign frames, X25519 to receive sealed payloads.

The node id is the first 8 bytes of SHA-256 over the Ed25519 public key, shown as 16 hex digits.
The key file holds both raw private keys, base64, in a small TOML document readable by its owner only
(mode 0600); a file anyone else can read is refused so a leaked key is noticed, not used.
A node's public *card* (``beredt1:<name>:<role>:<ed25519>:<x25519>``) is how it is added to rosters.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from hub.core.errors import ConfigError
from hub.core.files import write_atomically
from hub.core.frame import NODE_ID_SIZE, Frame, Kind, Priority, Status, signed_part

CARD_PREFIX = "beredt1"


STATEMENT_TAG = b"beredt "  # the start of every signed statement's domain tag (frames start with 0x01)


def node_id_of(public_key: bytes) -> bytes:
    return hashlib.sha256(public_key).digest()[:NODE_ID_SIZE]


def _raw_public(key: Ed25519PublicKey | X25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _raw_private(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class PublicCard:
    """What other nodes need to trust us: name, role and both public keys."""

    name: str
    role: str
    signing_key: bytes
    sealing_key: bytes

    @property
    def node_id(self) -> bytes:
        return node_id_of(self.signing_key)

    def encode(self) -> str:
        for part in (self.name, self.role):
            if ":" in part:
                raise ValueError("navn og rolle må ikke indeholde ':'")
        return ":".join((CARD_PREFIX, self.name, self.role, _b64(self.signing_key), _b64(self.sealing_key)))

    @classmethod
    def decode(cls, text: str) -> PublicCard:
        parts = text.strip().split(":")
        if len(parts) != 5 or parts[0] != CARD_PREFIX:
            raise ValueError(f"et nodekort ser sådan ud: '{CARD_PREFIX}:<navn>:<rolle>:<nøgle>:<nøgle>'")
        try:
            signing, sealing = _unb64(parts[3]), _unb64(parts[4])
        except ValueError as exc:
            raise ValueError("nodekortets nøgler er ikke base64: kopiér hele kortet igen") from exc
        if len(signing) != 32 or len(sealing) != 32:
            raise ValueError("nodekortets nøgler skal være 32 bytes hver: kopiér hele kortet igen")
        return cls(parts[1], parts[2], signing, sealing)


class Identity:
    """The private keys of this node. Signs frames; opens payloads sealed to us (see hub.core.seal)."""

    def __init__(self, signing: Ed25519PrivateKey, sealing: X25519PrivateKey, name: str, role: str) -> None:
        self._signing = signing
        self.sealing_private = sealing
        self.name = name
        self.role = role
        self.signing_public = _raw_public(signing.public_key())
        self.sealing_public = _raw_public(sealing.public_key())
        self.node_id = node_id_of(self.signing_public)

    @classmethod
    def generate(cls, name: str, role: str) -> Identity:
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate(), name, role)

    @property
    def card(self) -> PublicCard:
        return PublicCard(self.name, self.role, self.signing_public, self.sealing_public)

    def sign(
        self,
        kind: Kind,
        recipient: bytes,
        payload: bytes,
        *,
        created: int,
        ttl_minutes: int,
        priority: Priority = Priority.NORMAL,
        status: Status = Status.ACTUAL,
        sealed: bool = False,
        nonce: int | None = None,
    ) -> Frame:
        """Sign a new frame; ``nonce`` is random unless given (a sealed payload is bound to it)."""
        if nonce is None:
            nonce = secrets.randbits(32)
        fields = dict(
            kind=kind,
            sender=self.node_id,
            recipient=recipient,
            created=created,
            ttl_minutes=ttl_minutes,
            nonce=nonce,
            payload=payload,
            priority=priority,
            status=status,
            sealed=sealed,
        )
        signed = signed_part(**fields)  # type: ignore[arg-type]
        frame = Frame(signature=self._signing.sign(signed), **fields)  # type: ignore[arg-type]
        object.__setattr__(frame, "_signed", signed)  # Frame keeps its signed bytes once known
        return frame

    def sign_statement(self, message: bytes) -> bytes:
        """Sign a statement that is not a frame (an address card, a time answer). It must start with a
        ``b"beredt "`` domain tag, which no frame's signed bytes start with, so a signed statement can
        never pass for a frame nor one kind of statement for another."""
        if not message.startswith(STATEMENT_TAG):
            raise ValueError("a signed statement starts with its domain tag")
        return self._signing.sign(message)

    def save(self, path: Path) -> None:
        """Write the key file with mode 0600, atomically and durably (never a half-written key)."""
        text = tomli_w.dumps(
            {
                "name": self.name,
                "role": self.role,
                "ed25519": _b64(_raw_private(self._signing)),
                "x25519": _b64(_raw_private(self.sealing_private)),
            }
        )
        write_atomically(path, text, mode=0o600)

    @classmethod
    def load(cls, path: Path) -> Identity:
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise ConfigError(
                "nodens nøglefil findes ikke; lav den med 'beredt init'", file=str(path)
            ) from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"nodens nøglefil kan læses af andre (rettigheder {stat.S_IMODE(mode):o});"
                f" kør 'chmod 600 {path}'",
                file=str(path),
            )
        try:
            data = tomllib.loads(path.read_text())
            signing = Ed25519PrivateKey.from_private_bytes(_unb64(data["ed25519"]))
            sealing = X25519PrivateKey.from_private_bytes(_unb64(data["x25519"]))
            return cls(signing, sealing, str(data["name"]), str(data["role"]))
        except (tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
            raise ConfigError(
                "nodens nøglefil er beskadiget; hent den fra sikkerhedskopien", file=str(path)
            ) from exc
