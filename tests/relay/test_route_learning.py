"""Learned routes between real hubs in one process over a memory medium: no [routes] anywhere."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from hub.api.routes import build_app
from hub.api.tokens import Scope, TokenStore
from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.core.kinds.routes import RouteAnnouncement, RouteEntry, encode
from hub.core.tasks import cancel_and_wait
from hub.relay.events import FrameRefused, MessageReceived
from hub.relay.hub import Hub
from hub.relay.roster import Role, Roster
from hub.relay.settings import LinkConfig, PeerConfig, Timing
from hub.service.assembly import open_hub
from hub.service.config import HubConfig
from tests.inproc import eventually
from transports.memory import MemoryMedium

TIMING = Timing(hop_ack_timeout=2.0, retry_initial=0.2, retry_cap=2.0, probe_interval=0.5)
_media = itertools.count()


@contextlib.asynccontextmanager
async def chain(
    folder: Path, names: list[str], edges: list[tuple[int, int]], one_way: tuple[tuple[int, int], ...] = ()
) -> AsyncIterator[list[Hub]]:
    """Hubs joined by ``edges`` (each knows only its direct neighbours' addresses) that trust each other;
    in a ``one_way`` edge (a, b) only a has b in its [[peers]]."""
    medium = f"routes-{next(_media)}"
    identities = [Identity.generate(name, "staff") for name in names]
    async with contextlib.AsyncExitStack() as stack:
        hubs: list[Hub] = []
        tasks = []
        for i, identity in enumerate(identities):
            data = folder / identity.name
            data.mkdir()
            roster = Roster(identity.card, data / "roster.toml")
            for other in identities:
                if other is not identity:
                    roster.add(other.card)
            roster.save()
            neighbours = [b if a == i else a for a, b in edges if i in (a, b)]
            neighbours += [b for a, b in one_way if a == i]
            config = HubConfig(
                name=identity.name,
                role=Role.STAFF,
                data_dir=data,
                links=(
                    LinkConfig("memory", "memory", {"kind": "memory", "medium": medium, "address": f"h{i}"}),
                ),
                peers=tuple(
                    PeerConfig(identities[n].node_id, identities[n].name, {"memory": f"h{n}"})
                    for n in neighbours
                ),
                timing=TIMING,
            )
            hub = await stack.enter_async_context(open_hub(config, identity))
            hubs.append(hub)
            tasks.append(asyncio.create_task(hub.run()))
        try:
            await asyncio.gather(*(hub.ready.wait() for hub in hubs))
            yield hubs
        finally:
            for task in tasks:
                await cancel_and_wait(task)


async def until(check: Callable[[], object], timeout: float = 60.0) -> None:
    await eventually(check, timeout)


async def received_text(hub: Hub, body: bytes) -> str:
    async for event in hub.subscribe():
        if isinstance(event, MessageReceived) and event.kind == "text":
            return event.sender
    raise AssertionError("subscription ended")


async def test_a_hub_three_hops_away_is_reached_without_any_routes(tmp_path: Path) -> None:
    async with chain(
        tmp_path, ["raadhus", "relae-a", "relae-b", "plejehjem"], [(0, 1), (1, 2), (2, 3)]
    ) as hubs:
        staff, home = hubs[0], hubs[3]
        assert staff.router.route(home.node_id) == []
        await until(lambda: staff.router.route(home.node_id) == [hubs[1].node_id])
        await until(lambda: home.router.route(staff.node_id) == [hubs[2].node_id])
        waiting = asyncio.create_task(received_text(home, b"hej"))
        await asyncio.sleep(0)
        await staff.submit(Kind.TEXT, home.node_id, b"hej")
        async with asyncio.timeout(60):
            assert await waiting == staff.node_id.hex()
        assert staff.routes.sent_frames > 0 and staff.routes.refused == 0


async def test_a_relayed_route_announcement_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    async with chain(tmp_path, ["a", "b", "c"], [(0, 1), (1, 2)]) as hubs:
        a, b, c = hubs
        await until(lambda: a.router.route(c.node_id) == [b.node_id])
        refusals: list[FrameRefused] = []

        async def watch() -> None:
            async for event in a.subscribe():
                if isinstance(event, FrameRefused) and event.reason == "route":
                    refusals.append(event)

        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0)
        try:
            # c is trusted but not a's neighbour: a frame claiming to be relayed offers c as the way to b
            frame = c.identity.sign(
                Kind.ROUTE,
                a.node_id,
                encode(RouteAnnouncement(30, (RouteEntry(0, (b.node_id,)),))),
                created=int(c.clock.time()),
                ttl_minutes=2,
            )
            await c.links.transports["memory"].send("h0", frame.with_hops(1).encode(), priority=1)
            await until(lambda: bool(refusals))
        finally:
            await cancel_and_wait(watcher)
        assert a.router.route(b.node_id)[0] == b.node_id
        assert a.routes.next_hops(c.node_id) == [b.node_id]
        assert c.node_id not in a.links.peers


async def test_a_new_hub_configured_on_its_own_side_only_is_learned_by_its_relay_and_reached(
    tmp_path: Path,
) -> None:
    async with chain(tmp_path, ["raadhus", "relae", "nyt-plejehjem"], [(0, 1)], one_way=((2, 1),)) as hubs:
        staff, relay, home = hubs
        await until(lambda: staff.router.route(home.node_id) == [relay.node_id])
        learned = relay.links.peers[home.node_id]
        assert learned.addresses == {} and learned.address("memory") == "h2"  # not configured: learned
        assert relay.router.route(home.node_id)[0] == home.node_id
        waiting = asyncio.create_task(received_text(home, b"velkommen"))
        await asyncio.sleep(0)
        await staff.submit(Kind.TEXT, home.node_id, b"velkommen")
        async with asyncio.timeout(60):
            assert await waiting == staff.node_id.hex()


async def test_traffic_goes_around_a_lost_relay(tmp_path: Path) -> None:
    names = ["raadhus", "relae-a", "relae-b", "plejehjem"]
    async with chain(tmp_path, names, [(0, 1), (0, 2), (1, 3), (2, 3)]) as hubs:
        staff, relay_a, relay_b, home = hubs
        await until(lambda: len(staff.routes.next_hops(home.node_id)) == 2)
        first = staff.routes.next_hops(home.node_id)[0]
        lost, other = (relay_a, relay_b) if first == relay_a.node_id else (relay_b, relay_a)
        MemoryMedium.named(staff.config.links[0].options["medium"]).unplug(f"h{hubs.index(lost)}")
        await until(lambda: staff.routes.next_hops(home.node_id) == [other.node_id])
        await until(lambda: home.routes.next_hops(staff.node_id) == [other.node_id])  # converges on its own
        waiting = asyncio.create_task(received_text(home, b"omvej"))
        await asyncio.sleep(0)
        await staff.submit(Kind.TEXT, home.node_id, b"omvej")
        async with asyncio.timeout(60):
            assert await waiting == staff.node_id.hex()


async def test_the_learned_routes_are_shown_best_first_with_their_link_and_when_they_were_told(
    tmp_path: Path,
) -> None:
    names = ["raadhus", "relae-a", "relae-b", "plejehjem"]
    async with chain(tmp_path, names, [(0, 1), (0, 2), (1, 3), (2, 3)]) as hubs:
        staff, relay_a, relay_b, home = hubs
        started = time.time()
        await until(lambda: len(staff.routes.next_hops(home.node_id)) == 2)
        tokens = TokenStore(tmp_path)
        secret = tokens.add("tavle", frozenset({Scope.READ}))
        headers = {"Authorization": f"Bearer {secret}"}
        async with TestClient(TestServer(build_app(staff, tokens=tokens)), headers=headers) as http:
            response = await http.get("/v1/routes")
            assert response.status == 200
            shown = await response.json()
        row = next(r for r in shown["routes"] if r["destination"] == home.node_id.hex())
        assert row["name"] == "plejehjem"
        # equal cost and length: the lower neighbour id first, as every hub decides
        relays = sorted((relay_a.node_id, relay_b.node_id))
        assert [(v["next_hop"], v["path"], v["cost"], v["link"]) for v in row["via"]] == [
            (relay.hex(), [relay.hex(), home.node_id.hex()], 2, "memory") for relay in relays
        ]
        assert all(started - 1 <= v["heard"] <= time.time() for v in row["via"])
        neighbours = {r["destination"] for r in shown["routes"] if len(r["via"][0]["path"]) == 1}
        assert neighbours == {relay_a.node_id.hex(), relay_b.node_id.hex()}
        assert shown["defaults"] == []  # memory links are free: no hub offers itself as a default
