from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.core.errors import ConfigError, LinkDown
from hub.core.transport import LinkChanged, TransportContext
from tests.transports.contract import LinkPair, TransportContract, next_received
from transports.memory import MemoryMedium, open_transport


class TestMemoryContract(TransportContract):
    @pytest.fixture
    async def link_pair(self) -> AsyncIterator[LinkPair]:
        medium = MemoryMedium(mtu=200)
        a, b = medium.attach("a"), medium.attach("b")
        yield LinkPair(a, b, "a", "b")
        await a.aclose()
        await b.aclose()


async def test_unplugged_node_cannot_send_and_reports_link_down() -> None:
    medium = MemoryMedium()
    a, b = medium.attach("a"), medium.attach("b")
    medium.unplug("a")
    with pytest.raises(LinkDown):
        await a.send("b", b"\x01x")
    event = await anext(a.events())
    assert event == LinkChanged(up=False, reason="unplugged")
    with pytest.raises(LinkDown):
        await b.probe("a")
    medium.plug("a")
    await a.send("b", b"\x01y")
    assert (await next_received(b, 1)).data == b"\x01y"


async def test_loss_drops_a_share_of_frames() -> None:
    medium = MemoryMedium(loss=0.5, seed=7)
    a, _ = medium.attach("a"), medium.attach("b")
    for _ in range(200):
        await a.send("b", b"\x01z")
    assert 60 < medium.lost < 140
    assert medium.delivered + medium.lost == 200


async def test_latency_delays_delivery() -> None:
    medium = MemoryMedium(latency=0.05)
    a, b = medium.attach("a"), medium.attach("b")
    await a.send("b", b"\x01slow")
    with pytest.raises(TimeoutError):
        await next_received(b, 0.01)
    assert (await next_received(b, 1)).data == b"\x01slow"
    await asyncio.sleep(0)


async def test_a_rated_medium_holds_the_sender_for_the_airtime_one_send_at_a_time() -> None:
    medium = MemoryMedium(rate=1000.0)  # 100 bytes: 0.1 s on air
    a, b = medium.attach("a"), medium.attach("b")
    assert a.capabilities.bytes_per_second == 1000.0
    first = asyncio.create_task(a.send("b", b"\x01" + bytes(99)))
    second = asyncio.create_task(a.send("b", b"\x02" + bytes(99)))
    await asyncio.sleep(0)
    assert a.on_air == 2 and not first.done()  # one on air, one waiting for it
    await asyncio.gather(first, second)
    assert a.on_air == 0
    assert [(await next_received(b, 1)).data[0] for _ in range(2)] == [1, 2]


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"mtu": 2.5}, "links.m.mtu"),
        ({"loss": 2}, "links.m.loss"),
        ({"latency": "slow"}, "links.m.latency"),
        ({"colour": "red"}, "links.m.colour"),
    ],
)
async def test_bad_options_name_the_key(options: dict[str, Any], key: str, tmp_path: Path) -> None:
    ctx = TransportContext("00" * 8, tmp_path, logging.getLogger("test.memory"))
    with pytest.raises(ConfigError) as caught:
        await open_transport("m", {"kind": "memory", **options}, ctx)
    assert caught.value.key == key
