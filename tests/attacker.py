"""What an attacker on the network can do to a running hub's internet link, for trust tests.

An attacker here either holds a key that the victim trusts (a stolen care-home Pi: ``sign_as``) or no key
at all, and talks to the victim's ``POST /v1/frames`` like any hub would (``post_frames``). Nothing here
goes around the hub's own code: the frames travel over loopback into a real ``beredt run`` process.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from hub.core.frame import Frame, Kind, Priority
from hub.core.identity import Identity
from tests.hubproc import HubProcess
from transports.internet import FRAMES_PATH, REPLY_TO_HEADER
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


def post_frames(victim: HubProcess, wires: Sequence[bytes], reply_to: str) -> int:
    """POST encoded frames (or fragments) to the victim's internet link; return the HTTP status."""
    request = urllib.request.Request(
        victim.internet_url + FRAMES_PATH,
        data=encode_batch(list(wires)),
        method="POST",
        headers={REPLY_TO_HEADER: reply_to, "Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
