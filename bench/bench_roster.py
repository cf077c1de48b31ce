"""How long a revocation takes to reach every hub, against a plain broadcast through the same hubs.

N hubs (default 30) in one process form a binary tree over one in-memory medium (no latency, no loss,
internet-class), each configured with the root key and its tree neighbours as peers; only the root hub
holds the root key. Version 1 (every hub's card) is signed, saved in the root hub's data folder and loaded
(``reload_roster``, as ``beredt enrol approve`` does); once every hub holds it:

- floor: a TEXT broadcast submitted at the root hub, timed until every hub has committed it
  (``MessageReceived``): the relay engine's own spread through this tree.
- revocation: version 2 revoking one leaf is signed and loaded at the root hub, timed until every other
  hub refuses the leaf (the revocation in effect: from the first page of version 2 a hub holds, since
  every page carries the whole revocation list) and until every hub holds all of version 2 (checked every
  5 ms). Each hop verifies the root's signature once per page and saves the version durably (write +
  fsync), on top of what the TEXT broadcast costs.

Both go through the same store (synchronous=FULL) and hop acks. One run, same machine, same moment:
compare the ratio more than the seconds (the machine is shared). Above about 35 hubs a version is
several pages, one frame each.

    .venv/bin/python bench/bench_roster.py [--hubs 30]   (the budget, 10 s, is for --hubs 200)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.core.frame import BROADCAST, Kind
from hub.core.identity import Identity
from hub.core.kinds.roster import RosterNode, RosterVersion, root_public_text
from hub.core.tasks import cancel_and_wait
from hub.relay.events import MessageReceived
from hub.relay.hub import Hub
from hub.relay.roster import Role
from hub.relay.roster_updates import FILE_NAME, write_signed
from hub.relay.settings import LinkConfig, PeerConfig, Timing, TrustSettings
from hub.service.assembly import open_hub
from hub.service.config import HubConfig

TIMING = Timing(hop_ack_timeout=2.0, retry_initial=0.2, retry_cap=2.0, probe_interval=5.0)


def _neighbours(index: int, count: int) -> list[int]:
    parent = [(index - 1) // 2] if index else []
    return parent + [c for c in (2 * index + 1, 2 * index + 2) if c < count]


@contextlib.asynccontextmanager
async def _network(folder: Path, count: int, root: Ed25519PrivateKey) -> AsyncIterator[list[Hub]]:
    medium = f"bench-roster-{time.monotonic_ns()}"
    identities = [Identity.generate(f"hub-{i}", "staff" if i == 0 else "relay") for i in range(count)]
    trust = root_public_text(root.public_key())
    async with contextlib.AsyncExitStack() as stack:
        hubs: list[Hub] = []
        tasks = []
        for i, identity in enumerate(identities):
            config = HubConfig(
                name=identity.name,
                role=Role.STAFF if i == 0 else Role.RELAY,
                data_dir=folder / identity.name,
                links=(
                    LinkConfig("memory", "memory", {"kind": "memory", "medium": medium, "address": f"h{i}"}),
                ),
                peers=tuple(
                    PeerConfig(identities[n].node_id, identities[n].name, {"memory": f"h{n}"})
                    for n in _neighbours(i, count)
                ),
                timing=TIMING,
                trust=TrustSettings(root=trust, announce_interval=3600.0 if i == 0 else 0.0),
            )
            hub = await stack.enter_async_context(open_hub(config, identity))
            hubs.append(hub)
            tasks.append(asyncio.create_task(hub.run(), name=f"hub-{i}"))
        try:
            await asyncio.gather(*(hub.ready.wait() for hub in hubs))
            yield hubs
        finally:
            for task in tasks:
                await cancel_and_wait(task)


async def _until(check: Callable[[], bool], timeout: float = 900.0) -> float:
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("not every hub got there in time")
        await asyncio.sleep(0.005)
    return time.perf_counter() - start


def _issue(hub: Hub, version: RosterVersion, root: Ed25519PrivateKey) -> None:
    write_signed(hub.config.data_dir / FILE_NAME, version.sign(root))
    hub.reload_roster()


BUDGET_SECONDS = 10.0  # a revocation reaches 200 hubs over internet-class links within this
BUDGET_HUBS = 200


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hubs", type=int, default=30)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # each hub logs the revocation and the refused leaf; not measured
    root = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        async with _network(Path(tmp), args.hubs, root) as hubs:
            staff = hubs[0]
            v1 = RosterVersion(1, int(time.time()), tuple(RosterNode(h.identity.card) for h in hubs))
            _issue(staff, v1, root)
            first = await _until(lambda: all(h.roster_updates.version == 1 for h in hubs))

            received: set[bytes] = set()

            async def watch(hub: Hub) -> None:
                async for event in hub.subscribe():
                    if isinstance(event, MessageReceived) and event.kind == "text":
                        received.add(hub.node_id)

            watchers = [asyncio.create_task(watch(h)) for h in hubs[1:]]
            await asyncio.sleep(0.1)
            await staff.submit(Kind.TEXT, BROADCAST, b"floor", public=True)
            floor = await _until(lambda: len(received) == len(hubs) - 1)
            for watcher in watchers:
                await cancel_and_wait(watcher)

            leaf = hubs[-1].node_id
            _issue(staff, v1.with_revoked(leaf), root)
            start = time.perf_counter()
            revocation = await _until(lambda: all(h.roster.get(leaf) is None for h in hubs[:-1]))
            await _until(lambda: all(h.roster_updates.version == 2 for h in hubs))
            version_2 = time.perf_counter() - start
            size, pages = sum(len(page) for page in v1.sign(root)), len(v1.sign(root))
    depth = max(len(bin(i + 1)) - 3 for i in range(args.hubs))
    print(
        f"{args.hubs} hubs, binary tree of depth {depth}, one in-memory medium;"
        f" version 1 is {size} bytes in {pages} pages"
    )
    print(f"version 1 (enrolment of all) reached every hub in {first * 1000:.0f} ms")
    print(f"floor: a TEXT broadcast reached every hub in {floor * 1000:.0f} ms")
    print(
        f"revocation: in effect on every hub in {revocation * 1000:.0f} ms ({revocation / floor:.1f}x the"
        f" floor); all {pages} pages of version 2 held everywhere in {version_2 * 1000:.0f} ms"
        f" ({version_2 / floor:.1f}x)"
    )
    verdict = "ok" if revocation <= BUDGET_SECONDS else "over"
    scope = (
        ""
        if args.hubs >= BUDGET_HUBS
        else f" (the budget is for {BUDGET_HUBS} hubs: run --hubs {BUDGET_HUBS})"
    )
    print(f"budget: revocation in effect on every hub within {BUDGET_SECONDS:.0f} s: {verdict}{scope}")


if __name__ == "__main__":
    asyncio.run(main())
