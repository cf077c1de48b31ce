"""Messages this hub sent to a node that has since rotated its key, sent again to the new key.

A frame names its recipient inside the signature and is sealed to the recipient's key, so a relay cannot
re-address it; only the hub that signed it can. Sealing here is static-static (``hub.core.seal``), so
the sender can open what it sealed to the old key (still in the roster version during the grace), seal it
to the new key and sign a new frame with the same kind, priority, status and expiry. The old message
leaves its queues (state ``replaced``); its log lines name both ids. Frames from other hubs waiting here
to the old id stay held until they expire, as before: their signers re-address them in turn.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

from hub.core.clock import Clock
from hub.core.errors import BeredtError
from hub.core.frame import Kind, decode_frame
from hub.core.kinds.roster import RosterVersion
from hub.core.seal import Context, SealingKey
from hub.relay.store import Store

Submit = Callable[..., Awaitable[bytes]]
"""``Hub.submit``: sign, seal, store and queue a message."""

log = logging.getLogger("beredt.hub")

_NOT_RESENT = frozenset({Kind.ACK, Kind.HOP_ACK, Kind.ROSTER, Kind.ROUTE, Kind.LOGBOOK_HEAD})


async def readdress(
    store: Store,
    sealing: SealingKey,
    clock: Clock,
    submit: Submit,
    version: RosterVersion,
    old: bytes,
    new: bytes,
) -> int:
    """Send every live, unacknowledged message this hub originated to ``old`` again to ``new``; return
    how many went."""
    messages = await store.open_sent_to(old)
    if not messages:
        return 0
    keys = {n.node_id: n.card.sealing_key for n in version.nodes}
    moved: list[bytes] = []
    for message in messages:
        frame = decode_frame(message.wire)
        if frame.kind in _NOT_RESENT:
            continue
        try:
            payload = sealing.open(frame.payload, Context.of(frame), keys) if frame.sealed else frame.payload
            minutes = max(1, math.ceil((frame.expires - clock.time()) / 60))
            again = await submit(
                frame.kind, new, payload, priority=frame.priority, ttl_minutes=minutes, status=frame.status,
                public=not frame.sealed,
            )  # fmt: skip
        except BeredtError as exc:
            log.warning("message %s to %s stays held: %s", message.id.hex(), old.hex(), exc)
            continue
        log.info("message %s re-sealed to %s's new key as %s", message.id.hex(), old.hex(), again.hex())
        moved.append(message.id)
    await store.replace(moved)
    return len(moved)
