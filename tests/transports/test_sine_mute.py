"""A SINE terminal that stays plugged in but goes mute: the hub finds out from its own command deadlines
(nothing tells it) and sends over its other link; the SINE link returns once the terminal answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.relay.hub import Hub
from hub.relay.policy import Policy
from hub.relay.settings import LinkConfig, PeerConfig
from simulators.pty_device import PtyDevice
from simulators.tetra import TetraNetwork, TetraRadio
from tests.inproc import eventually, hub_config, medium_name, running
from transports.memory import MemoryMedium

A = Identity.generate("Aarhus", "staff")
B = Identity.generate("Solgaarden", "care-home")
COMMAND_DEADLINE = 2.0  # the SINE link's "timeout" (and so its command deadline) in this test


@contextlib.asynccontextmanager
async def radio(network: TetraNetwork, issi: str, tmp_path: Path) -> AsyncIterator[tuple[TetraRadio, Path]]:
    terminal = network.add_radio(issi, max_bits=1120)
    pty = PtyDevice(terminal, tmp_path / f"tty{issi}", baud=38400)
    pty.start()
    try:
        yield terminal, Path(pty.link_path)
    finally:
        await pty.aclose()


def config(tmp_path: Path, name: str, device: Path, slow: str, other: Identity, other_issi: str) -> object:
    sine = {
        "kind": "sine",
        "device": str(device),
        "baud": 38400,
        "max_per_minute": 6000,
        "timeout": COMMAND_DEADLINE,
        "health_interval": 1,
    }
    links = (
        LinkConfig("sine", "sine", sine),
        LinkConfig("satellite", "memory", {"kind": "memory", "medium": slow, "address": name}),
    )
    other_name = "b" if name == "a" else "a"
    return hub_config(
        tmp_path / name,
        name,
        slow,
        links=links,
        policy=Policy(order=("sine", "satellite")),
        peers=(PeerConfig(other.node_id, other.name, {"sine": other_issi, "satellite": other_name}),),
        default_route=(other.node_id,),
    )


async def link_used(hub: Hub, message_id: bytes) -> str | None:
    await eventually(lambda: hub.router.open_count() == 0, timeout=30)
    await hub.store.flush()
    return (await hub.store.deliveries(message_id))[0].link


async def test_a_mute_terminal_takes_sine_down_and_the_message_goes_by_satellite(tmp_path: Path) -> None:
    network = TetraNetwork(max_per_window=10_000, window=60.0)
    slow = medium_name()
    MemoryMedium.named(slow)
    async with (
        radio(network, "1001", tmp_path) as (terminal_a, tty_a),
        radio(network, "1002", tmp_path) as (_, tty_b),
        running(config(tmp_path, "a", tty_a, slow, B, "1002"), A) as a,  # type: ignore[arg-type]
        running(config(tmp_path, "b", tty_b, slow, A, "1001"), B) as b,  # type: ignore[arg-type]
    ):
        a.roster.add(B.card)
        b.roster.add(A.card)
        first = await a.submit(Kind.TEXT, B.node_id, b"over SINE")
        await eventually(lambda: b.inbound.accepted >= 1, timeout=30)
        assert await link_used(a, first) == "sine"

        terminal_a.mute = True  # still plugged in: the port stays open, nothing comes back
        loop = asyncio.get_running_loop()
        muted = loop.time()
        second = await a.submit(Kind.TEXT, B.node_id, b"SINE is mute")
        await eventually(lambda: a.links.state("sine", B.node_id).label == "down", timeout=30)
        detected = loop.time() - muted
        await eventually(lambda: b.inbound.accepted >= 2, timeout=30)
        delivered = loop.time() - muted
        assert await link_used(a, second) == "satellite"
        assert {m.id for m in await b.store.inbox()} == {first, second}
        print(
            f"mute terminal: link down after {detected:.2f} s, delivered by satellite after {delivered:.2f} s"
        )

        terminal_a.mute = False  # the terminal answers again: the health check brings SINE back
        await eventually(lambda: a.links.state("sine", B.node_id).label == "up", timeout=30)
