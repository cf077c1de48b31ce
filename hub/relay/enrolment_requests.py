"""Enrolment requests waiting for a coordinator, on the hub that holds the root key.

A new node sends its card with ``beredt enrol --request URL`` (``POST /enrol`` on this hub, see
``hub.api.enrolment``), signed with the card's own key so no one can send a card whose key they do not
hold. The request only puts the card on a list: nothing is trusted until a coordinator approves it in the
console (or with ``beredt enrol approve``), after comparing the code the list shows with the code on the new
node's screen. The list lives in ``enrolment-requests.json`` in the data folder, at most ``MAX_PENDING``
requests (one per card), so a stranger sending cards cannot fill the disk. Anyone can make a card and
sign for it, so the list is also shared out by where requests come from: one address holds at most
``MAX_PER_SOURCE`` (its own oldest go first), and a full list drops the oldest request of the address
holding the most, so a flood from one address cannot push out a genuine request from another. Taking a
request writes the file, so at most ``RATE`` a second are taken (bursts of ``BURST``); ``wait`` says how
long the next one must wait.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.core.errors import UsageError
from hub.core.files import write_atomically
from hub.core.identity import STATEMENT_TAG, PublicCard
from hub.core.kinds.roster import enrolment_code

log = logging.getLogger("beredt.roster")

FILE_NAME = "enrolment-requests.json"
ENROL_PATH = "/enrol"  # where the hub holding the root key takes requests (hub.api.enrolment)
MAX_PENDING = 50
MAX_PER_SOURCE = 5
RATE = 0.5  # requests taken a second, sustained
BURST = 10
STATEMENT = STATEMENT_TAG + b"enrolment-request v1\n"


def request_statement(card: PublicCard) -> bytes:
    """What the new node signs with its own key to ask to be enrolled."""
    return STATEMENT + card.encode().encode()


@dataclass(frozen=True, slots=True)
class EnrolmentRequest:
    card: PublicCard
    received: float  # Unix seconds
    source: str = ""  # the address it came from (hub.core.bounded_http.source_of)

    @property
    def code(self) -> str:
        return enrolment_code(self.card)


class EnrolmentRequests:
    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = data_dir / FILE_NAME
        self._pending: dict[str, EnrolmentRequest] = {}  # by code
        self._clock = clock
        self._tokens, self._at = float(BURST), clock()
        if self.path.exists():
            try:
                for item in json.loads(self.path.read_text()):
                    card = PublicCard.decode(str(item["card"]))
                    self._pending[enrolment_code(card)] = EnrolmentRequest(
                        card, float(item["received"]), str(item.get("source", ""))
                    )
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s is damaged (%s): the list of enrolment requests starts empty", self.path, exc)

    def pending(self) -> list[EnrolmentRequest]:
        """Newest first."""
        return sorted(self._pending.values(), key=lambda r: r.received, reverse=True)

    def wait(self) -> float:
        """Seconds until the list takes another request (0: now)."""
        now = self._clock()
        self._tokens, self._at = min(BURST, self._tokens + (now - self._at) * RATE), now
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / RATE

    def add(
        self, card_text: str, signature: bytes, *, source: str = "", now: float | None = None
    ) -> EnrolmentRequest:
        """Put a card on the list if its own key signed the request; ``UsageError`` otherwise. ``source``
        is where it came from; the caller checks ``wait`` first."""
        try:
            card = PublicCard.decode(card_text)
        except ValueError as exc:
            raise UsageError(f"kortet: {exc}") from None
        try:
            Ed25519PublicKey.from_public_bytes(card.signing_key).verify(signature, request_statement(card))
        except (InvalidSignature, ValueError):
            raise UsageError("signaturen er ikke lavet med kortets egen nøgle") from None
        self.wait()
        self._tokens = max(0.0, self._tokens - 1)
        request = EnrolmentRequest(card, time.time() if now is None else now, source)
        self._pending[request.code] = request
        while (held := self._held_by(source)) and len(held) > MAX_PER_SOURCE:
            del self._pending[held[0].code]
        while len(self._pending) > MAX_PENDING:
            counts = Counter(r.source for r in self._pending.values())
            greedy = max(counts, key=lambda s: (counts[s], -min(r.received for r in self._held_by(s))))
            del self._pending[self._held_by(greedy)[0].code]
        self._save()
        log.info("enrolment request from %s (%s), code %s", card.name, card.node_id.hex(), request.code)
        return request

    def _held_by(self, source: str) -> list[EnrolmentRequest]:
        """The requests from ``source``, oldest first."""
        return sorted((r for r in self._pending.values() if r.source == source), key=lambda r: r.received)

    def get(self, code: str) -> EnrolmentRequest:
        request = self._pending.get(code.strip().upper())
        if request is None:
            raise UsageError(f"ingen anmodning om tilmelding med koden {code}")
        return request

    def remove(self, code: str) -> EnrolmentRequest:
        request = self.get(code)
        del self._pending[request.code]
        self._save()
        return request

    def _save(self) -> None:
        items = [
            {"card": r.card.encode(), "received": r.received, "source": r.source}
            for r in self._pending.values()
        ]
        write_atomically(self.path, json.dumps(items, ensure_ascii=False))
