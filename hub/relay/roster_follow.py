"""What the engine does as its roster changes: it announces a signed version (at once when new, then
every ``announce_interval``), moves a rotated peer's links and routes to its new key and sends again,
sealed to that key, what it had sent to the old one, and withdraws and reports what was queued to a node
just revoked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

from hub.core.clock import Clock
from hub.core.errors import RoutingError
from hub.core.frame import BROADCAST, Kind, Priority
from hub.core.kinds.roster import RosterVersion
from hub.core.seal import SealingKey
from hub.relay.links import LinkSet
from hub.relay.readdress import Submit, readdress
from hub.relay.roster_updates import RosterUpdates
from hub.relay.router import Router
from hub.relay.store import Store

log = logging.getLogger("beredt.hub")

URGENT_TTL_MINUTES = 60
"""How long a new version's urgent frames live at least: a neighbour that refuses one (stale, it holds a
newer version) sends no hop ack, so the frame is retried until it expires; the root's hub repeats its
version every interval for hubs away longer."""


class RosterFollowUp:
    def __init__(
        self,
        roster_updates: RosterUpdates,
        links: LinkSet,
        router: Router,
        store: Store,
        sealing: SealingKey,
        clock: Clock,
        submit: Submit,
        *,
        announce_interval: float,
    ) -> None:
        self._roster_updates = roster_updates
        self._links = links
        self._router = router
        self._store = store
        self._sealing = sealing
        self._clock = clock
        self._submit = submit
        self._announce_interval = announce_interval
        self.announce_now = asyncio.Event()
        """Set to announce the signed version now rather than at the end of the interval."""
        self._readdress_now = asyncio.Event()
        self._revoked: list[tuple[bytes, int]] = []
        """Nodes just revoked (and the version that did it) whose messages are still to withdraw."""
        self._withdraw_now = asyncio.Event()
        self._rotated: RosterVersion | None = None

    async def announce_forever(self) -> None:
        """Broadcast the signed roster at once when a version is new here, and again every
        ``announce_interval``, so a hub that was offline, or is new, catches up within one interval.

        A new version goes out urgent (a revocation may use metered radio, and a paid link where nothing
        else reaches) and lives an hour (``URGENT_TTL_MINUTES``, or two intervals if longer), queued for
        hubs that are away; the repeats are
        routine (so they keep off metered and paid links) and live two intervals, since the next one
        supersedes them. A version that a root-signed delta made from the one announced before goes
        urgent as that delta alone, a few hundred bytes; the root's hub sends its pages routine, over free
        links, for hubs that lack the delta's base (over radio those are handed the whole version,
        ``hub.relay.roster_handoff``). At start the whole version goes urgent: no neighbour is known to
        hold the delta's base. A hub that holds its version as an older one's pages and deltas does not
        repeat them, and at start sends only the last delta: its neighbours holding its version would
        refuse the rest as stale (until the root's pages of the version replace the chain)."""
        interval = self._announce_interval
        announced = 0
        while True:
            self.announce_now.clear()
            version, payloads = self._roster_updates.version, self._roster_updates.payloads
            new = version != announced
            made = self._roster_updates.delta
            # the delta alone will do only for neighbours that hold what we announced before it
            delta = made[1] if made and new and announced and made[0] == announced else None
            # pages of an older version, then deltas: neighbours holding ours would refuse those pages
            # as stale, so the root's hub (which holds the pages) repeats the whole version, not this one
            chain = made is not None and made[1] in payloads
            if delta is not None:
                urgent, routine = [delta], [] if chain else payloads
            elif chain and made is not None:  # at start: only the last delta is not stale for them
                urgent, routine = ([made[1]] if new else []), []
            else:
                urgent, routine = (payloads, []) if new else ([], [] if chain else payloads)
            try:
                for payload in urgent:  # one frame per page or delta
                    await self._submit(
                        Kind.ROSTER,
                        BROADCAST,
                        payload,
                        priority=Priority.URGENT,
                        ttl_minutes=max(URGENT_TTL_MINUTES, math.ceil(2 * interval / 60)),
                    )
                for payload in routine:
                    await self._submit(
                        Kind.ROSTER,
                        BROADCAST,
                        payload,
                        priority=Priority.ROUTINE,
                        ttl_minutes=max(1, math.ceil(2 * interval / 60)),
                    )
                announced = version
            except RoutingError as exc:
                log.warning("roster version %d not announced: %s", version, exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self.announce_now.wait()

    def report_revoked(self, node_id: bytes, version: int) -> None:
        """Withdraw what is queued to a node just revoked (``withdraw_forever``)."""
        self._revoked.append((node_id, version))
        self._withdraw_now.set()

    async def withdraw_forever(self) -> None:
        """Messages to a revoked node can never be delivered (no hub takes its frames, hop acks included):
        they leave the queues at once, and those this hub sent are marked ``revoked`` so its console, API
        and CLI say why, and staff can send them to someone else. Relayed ones are reported by their
        senders, which get the same revocation."""
        while True:
            await self._withdraw_now.wait()
            self._withdraw_now.clear()
            while self._revoked:
                node_id, version = self._revoked.pop(0)
                own, relayed = await self._store.withdraw_revoked(node_id)
                for message_id in own:
                    log.warning(
                        "message %s to %s not delivered: its recipient was revoked by roster version %d",
                        message_id.hex(), node_id.hex(), version,
                    )  # fmt: skip
                log.warning(
                    "node %s revoked by roster version %d: frames from it are refused; %d messages from"
                    " this hub to it reported undeliverable, %d relayed for others dropped",
                    node_id.hex(), version, len(own), relayed,
                )  # fmt: skip

    def follow_rotations(self, version: RosterVersion) -> None:
        """A peer whose new key the root approved is the same peer: its links and routes move over."""
        for node in version.nodes:
            old, new = node.replaces, node.node_id
            if not old or not self._links.rename(old, new):
                continue
            swap = {old: new}
            routes = self._router.routes
            for recipient, hops in list(routes.items()):
                routes.pop(recipient)
                routes[swap.get(recipient, recipient)] = tuple(swap.get(h, h) for h in hops)
            self._router.default_route = tuple(swap.get(h, h) for h in self._router.default_route)
            log.info("peer %s rotated its key: links and routes now go to %s", old.hex(), new.hex())
        self._rotated = version
        self._readdress_now.set()

    async def readdress_forever(self) -> None:
        """What this hub sent to a rotated node's old key goes again, sealed to its new key."""
        while True:
            await self._readdress_now.wait()
            self._readdress_now.clear()
            version = self._rotated
            if version is None:
                continue
            for node in version.nodes:
                if node.replaces:
                    moved = await readdress(
                        self._store,
                        self._sealing,
                        self._clock,
                        self._submit,
                        version,
                        node.replaces,
                        node.node_id,
                    )
                    if moved:
                        log.info(
                            "%d messages to %s re-sealed and re-addressed to its new key %s",
                            moved, node.replaces.hex(), node.node_id.hex(),
                        )  # fmt: skip
