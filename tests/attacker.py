"""What an attacker on the network can do to a running hub's internet link, for trust tests.

An attacker here either holds a key that the victim trusts (a stolen care-home Pi: ``sign_as``) or no key
at all, and talks to the victim's ``POST /v1/frames`` like any hub would (``post_frames``). Nothing here
goes around the hub's own code: the frames travel over loopback into a real ``beredt run`` process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

from hub.core.address_card import LIFETIME, AddressCard, signed_message
from hub.core.fragment import FRAGMENT_HEADER, Fragment
from hub.core.frame import Frame, Kind, Priority
from hub.core.identity import Identity
from tests.hubproc import HubProcess
from transports.internet import BATCH_BYTES, CARD_HEADER, FRAMES_PATH, REPLY_TO_HEADER
from transports.internet_codec import encode_batch


def identity_of(hub: HubProcess) -> Identity:
    """The hub's own key pair, read from its key file (what a thief of its Pi gets)."""
    return Identity.load(hub.dir / "data" / "identity.key")


def sign_as(
    hub: HubProcess,
    kind: Kind,
    recipient: str,
    payload: bytes,
    *,
    created: float | None = None,
    ttl_minutes: int = 60,
    priority: Priority = Priority.NORMAL,
) -> Frame:
    """A frame genuinely signed with ``hub``'s key."""
    return identity_of(hub).sign(
        kind,
        bytes.fromhex(recipient),
        payload,
        created=int(time.time() if created is None else created),
        ttl_minutes=ttl_minutes,
        priority=priority,
    )


def card_as(hub: HubProcess, address: str, *, issued: float | None = None, kind: str = "internet") -> str:
    """An address card genuinely signed with ``hub``'s key (one recorded earlier, say), encoded."""
    at = int(time.time() if issued is None else issued)
    unsigned = AddressCard(bytes.fromhex(hub.node_id), kind, address, at, at + LIFETIME)
    signature = identity_of(hub).sign_statement(signed_message(unsigned))
    return dataclasses.replace(unsigned, signature=signature).encode()


def post_frames(
    victim: HubProcess,
    wires: Sequence[bytes],
    reply_to: str,
    card: str | None = None,
    *,
    source: str | None = None,
) -> int:
    """POST encoded frames (or fragments) to the victim's internet link, with ``card`` as the address
    card header if given, from the loopback address ``source`` if given; return the HTTP status."""
    headers = {REPLY_TO_HEADER: reply_to, "Content-Type": "application/octet-stream"}
    if card is not None:
        headers[CARD_HEADER] = card
    target = urllib.parse.urlsplit(victim.internet_url)
    assert target.hostname is not None and target.port is not None
    connection = http.client.HTTPConnection(
        target.hostname, target.port, timeout=15, source_address=(source, 0) if source else None
    )
    try:
        connection.request("POST", FRAMES_PATH, encode_batch(list(wires)), headers)
        response = connection.getresponse()
        response.read()
        return int(response.status)
    finally:
        connection.close()


def rss_mb(hub: HubProcess) -> float:
    """Resident memory of the hub's process, from /proc."""
    assert hub.process is not None
    for line in Path(f"/proc/{hub.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc status")


@dataclasses.dataclass(slots=True)
class Peak:
    value: float


@contextlib.contextmanager
def peak_rss_mb(hub: HubProcess, every: float = 0.1) -> Iterator[Peak]:
    """The highest resident memory of the hub's process (MB), sampled every ``every`` seconds while the
    block runs and once more at its end; read ``.value`` after the block."""
    peak = Peak(rss_mb(hub))
    done = threading.Event()

    def watch() -> None:
        while not done.wait(every):
            peak.value = max(peak.value, rss_mb(hub))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield peak
    finally:
        done.set()
        watcher.join()
        peak.value = max(peak.value, rss_mb(hub))


def fragment_flood(
    victim: HubProcess, *, sets: int, fragments: int, chunk: int, count: int = 255, addresses: int = 1
) -> int:
    """Start ``sets`` fragment sets of ``count`` fragments that never complete (``fragments`` of each are
    sent, ``chunk`` bytes apiece), each set under its own made-up reply-to, the sets spread over
    ``addresses`` loopback addresses (127.0.0.2 and up; one: the default address). No key is needed.
    Returns how many POSTs were answered 204."""
    per_post = max(1, (BATCH_BYTES - 2) // (FRAGMENT_HEADER + chunk + 2))
    accepted = 0
    for n in range(sets):
        pieces = [
            Fragment(n.to_bytes(4, "big"), index, count, bytes([index % 256]) * chunk).encode()
            for index in range(fragments)
        ]
        for start in range(0, len(pieces), per_post):
            source = f"127.0.0.{2 + n % addresses}" if addresses > 1 else None
            reply_to = f"http://flood-{n}.invalid:1"
            status = post_frames(victim, pieces[start : start + per_post], reply_to, source=source)
            accepted += status == 204
    return accepted
