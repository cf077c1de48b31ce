"""One conformance suite that every transport must pass (after trio's check_streams).

A transport's test module subclasses ``TransportContract`` and provides the ``link_pair`` fixture:
two opened transports that can reach each other, with each one's address as the other sees it::

    class TestMemoryContract(TransportContract):
        @pytest.fixture
        async def link_pair(self) -> AsyncIterator[LinkPair]:
            ...
            yield LinkPair(a, b, address_of_a, address_of_b)
            await a.aclose(); await b.aclose()

``receive_timeout`` may be raised for slow links (radio simulators).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from hub.core.errors import FrameTooLarge, TransportClosed
from hub.core.transport import Capabilities, Received, Transport


@dataclass
class LinkPair:
    a: Transport
    b: Transport
    address_of_a: str
    address_of_b: str


async def next_received(transport: Transport, timeout: float) -> Received:
    """The next ``Received`` event, skipping link and time events."""

    async def pull() -> Received:
        async for event in transport.events():
            if isinstance(event, Received):
                return event
        raise AssertionError("events ended before a frame arrived")

    return await asyncio.wait_for(pull(), timeout)


class TransportContract:
    receive_timeout = 10.0

    async def test_capabilities_are_sane(self, link_pair: LinkPair) -> None:
        caps = link_pair.a.capabilities
        assert isinstance(caps, Capabilities)
        assert 64 <= caps.mtu <= 65536
        assert caps.bytes_per_second > 0
        assert isinstance(link_pair.a, Transport)

    async def test_bytes_arrive_intact_and_source_answers_back(self, link_pair: LinkPair) -> None:
        payload = bytes(range(256))[: link_pair.a.capabilities.mtu // 2]
        await link_pair.a.send(link_pair.address_of_b, payload)
        got = await next_received(link_pair.b, self.receive_timeout)
        assert got.data == payload
        await link_pair.b.send(got.source, b"\x01reply")
        back = await next_received(link_pair.a, self.receive_timeout)
        assert back.data == b"\x01reply"

    async def test_full_mtu_passes_and_one_more_byte_is_refused(self, link_pair: LinkPair) -> None:
        mtu = link_pair.a.capabilities.mtu
        await link_pair.a.send(link_pair.address_of_b, b"\x01" + b"m" * (mtu - 1))
        got = await next_received(link_pair.b, self.receive_timeout)
        assert len(got.data) == mtu
        with pytest.raises(FrameTooLarge):
            await link_pair.a.send(link_pair.address_of_b, b"\x01" + b"m" * mtu)

    async def test_several_frames_all_arrive(self, link_pair: LinkPair) -> None:
        sent = {bytes([1, i]) * 8 for i in range(5)}
        for data in sorted(sent):
            await link_pair.a.send(link_pair.address_of_b, data)
        got = {(await next_received(link_pair.b, self.receive_timeout)).data for _ in sent}
        assert got == sent

    async def test_probe_reaches_live_peer(self, link_pair: LinkPair) -> None:
        await link_pair.a.probe(link_pair.address_of_b)

    async def test_close_is_idempotent_and_send_after_close_raises(self, link_pair: LinkPair) -> None:
        await link_pair.a.aclose()
        await link_pair.a.aclose()
        with pytest.raises(TransportClosed):
            await link_pair.a.send(link_pair.address_of_b, b"\x01late")

    async def test_events_end_after_close(self, link_pair: LinkPair) -> None:
        async def drain() -> None:
            async for _ in link_pair.b.events():
                pass

        task = asyncio.create_task(drain())
        await asyncio.sleep(0.05)
        await link_pair.b.aclose()
        await asyncio.wait_for(task, self.receive_timeout)
