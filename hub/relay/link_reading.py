"""Reading the links: what each link's transport reports (frames, its state, personal alarms, teams'
texts, the time),
and the workers that take the received frames off its queue in batches."""

from __future__ import annotations

import logging

from hub.core.clock import PLAUSIBLE_EPOCH, Clock
from hub.core.ranked import URGENT_RANK, RankedQueue
from hub.core.transport import LinkChanged, PersonalAlarm, Received, TeamText, TimeHint, Transport
from hub.relay.health import HealthBoard
from hub.relay.inbound import Inbound
from hub.relay.lanes import frame_rank
from hub.relay.link_reasons import Reason, Why
from hub.relay.links import LinkSet
from hub.relay.personal_alarms import PersonalAlarms
from hub.relay.store_writer import COMPANY
from hub.relay.team_texts import TeamTexts
from hub.relay.timesync import NeighbourTime

log = logging.getLogger("beredt.hub")

INBOUND_WORKERS = COMPANY + 2
"""Batches worked at once per link: while one waits for its commit, the next is being verified. Up to
``COMPANY - 1`` may wait in a commit window at once (each holds a received message); the other three keep
reading the link, its hop acks first."""
_INBOUND_BATCH = 64
"""Frames a worker takes from its link's queue at once: checked one by one, committed together."""
_INBOUND_PER_RANK = 2048  # frames read from a link and waiting for a worker, per rank


def inbound_queue() -> RankedQueue[Received]:
    """A link's queue of received frames. Acks first, then data by priority: an ack stuck behind a flood
    of data would miss the sender's hop-ack deadline and make it resend the very flood we are working
    through."""
    return RankedQueue(URGENT_RANK + 1, maxsize=_INBOUND_PER_RANK)


async def read_link(
    name: str,
    transport: Transport,
    queue: RankedQueue[Received],
    *,
    links: LinkSet,
    health: HealthBoard,
    clock: Clock,
    neighbour_time: NeighbourTime,
    personal_alarms: PersonalAlarms,
    team_texts: TeamTexts,
) -> None:
    async for event in transport.events():
        match event:
            case Received(data=data):
                await queue.put(event, frame_rank(data))
            case LinkChanged(up=up, reason=reason, peer=address):
                peer = None
                if address is not None:
                    node = links.peer_at(name, address)
                    if node is None:  # an address no peer has (a sender's claimed reply-to, say)
                        log.debug("%s: %s %s (%s)", name, address, "up" if up else "down", reason)
                        continue
                    peer = node.hex()
                now = clock.monotonic()
                if up:
                    health.success(name, peer, now, Reason(Why.LINK_UP, reason), hard=True)
                else:
                    health.failure(name, peer, now, Reason(Why.LINK_DOWN, reason), hard=True)
            case PersonalAlarm():
                await personal_alarms.forward(name, event)
            case TeamText():
                team_texts.take(name, event)
            case TimeHint(unix_time=when, source=source):
                if when < PLAUSIBLE_EPOCH:
                    log.warning("ignored implausible time %.0f from %s", when, source)
                elif not clock.trusted or neighbour_time.owns_clock:
                    log.warning("clock untrusted or set by neighbours; taking time from %s", source)
                    clock.correct(when, source)
                    neighbour_time.outside_hint()
    log.info("link %s closed", name)


async def work_inbound(inbound: Inbound, name: str, queue: RankedQueue[Received]) -> None:
    """Take what has arrived (up to ``_INBOUND_BATCH``, acks first) and work it as one batch."""
    while True:
        batch = [await queue.get()]
        while len(batch) < _INBOUND_BATCH and queue.qsize():
            batch.append(queue.get_nowait())
        try:
            await inbound.handle_batch(name, batch)
        except Exception:  # a bug in one batch must not stop a link
            log.exception("inbound batch of %d frames on %s failed", len(batch), name)
