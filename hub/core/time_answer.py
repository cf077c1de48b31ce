"""A node's signed answer to a time challenge: "when I saw your nonce, my clock read T".

A hub whose clock cannot be trusted sends each peer a fresh random nonce (on the internet link, in its
probe) and takes the peer's reading only from an answer that is signed by that peer's key, names that
very nonce, and arrives within ``MAX_ROUND_TRIP`` seconds. A recorded frame or a recorded answer cannot
do that: the nonce did not exist before the question. The signature covers a domain tag, the node, the
nonce and the time, so an answer is no frame and no address card.

Wire form (then base64url without padding, as one HTTP header value)::

    version 1 | node id (8) | nonce (16) | time in milliseconds (u64) | signature (64)

``TimeWitness`` answers for this node, at most ``ANSWERS_PER_SECOND`` a second (bursts of
``ANSWER_BURST``): anyone who reaches the probe may ask, so the signing work it can cause is bounded.
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

ANSWER_VERSION = 1
ANSWER_DOMAIN = b"beredt time answer v1\x00"
NONCE_SIZE = 16
MAX_ROUND_TRIP = 5.0  # seconds from question to answer; slower answers are not taken
ANSWERS_PER_SECOND = 20.0
ANSWER_BURST = 40
_BODY = struct.Struct(f">B{NODE_ID_SIZE}s{NONCE_SIZE}sQ")


@dataclass(frozen=True, slots=True)
class TimeAnswer:
    node: bytes
    nonce: bytes
    unix_ms: int
    signature: bytes = b""

    def signed_message(self) -> bytes:
        return ANSWER_DOMAIN + _BODY.pack(ANSWER_VERSION, self.node, self.nonce, self.unix_ms)

    def encode(self) -> str:
        raw = _BODY.pack(ANSWER_VERSION, self.node, self.nonce, self.unix_ms) + self.signature
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> TimeAnswer:
        """Parse an encoded answer (its signature is not checked here); ``ProtocolError`` if malformed."""
        if len(text) > 200:
            raise ProtocolError(f"time answer of {len(text)} characters is too long")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError(f"time answer is not base64url: {exc}") from None
        if len(raw) != _BODY.size + SIGNATURE_SIZE:
            raise ProtocolError(f"time answer of {len(raw)} bytes, expected {_BODY.size + SIGNATURE_SIZE}")
        version, node, nonce, unix_ms = _BODY.unpack_from(raw)
        if version != ANSWER_VERSION:
            raise ProtocolError(f"time answer of version {version}")
        return cls(node, nonce, unix_ms, raw[_BODY.size :])


class TimeWitness:
    """Signs this node's answers to time challenges, within a budget of signatures per second."""

    def __init__(self, identity: Identity, clock: Clock) -> None:
        self._identity = identity
        self._clock = clock
        self._tokens = float(ANSWER_BURST)
        self._last = clock.monotonic()

    def answer(self, nonce: bytes) -> str | None:
        """The signed answer to ``nonce``; None if it is not a nonce, the budget is spent, or our own
        clock is not trusted (a hub that booted in 1970 has no time to give)."""
        if not self._clock.trusted:
            return None
        now = self._clock.monotonic()
        self._tokens = min(ANSWER_BURST, self._tokens + (now - self._last) * ANSWERS_PER_SECOND)
        self._last = now
        if len(nonce) != NONCE_SIZE or self._tokens < 1:
            return None
        self._tokens -= 1
        unsigned = TimeAnswer(self._identity.node_id, nonce, int(self._clock.time() * 1000))
        signature = self._identity.sign_statement(unsigned.signed_message())
        return TimeAnswer(unsigned.node, nonce, unsigned.unix_ms, signature).encode()
