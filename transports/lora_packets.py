"""What a LoRa link hands its radio: the ``meshtastic`` library's blocking ``sendData`` calls.

Each call runs on a thread of its own with a deadline (``transports.blocking``); a radio that does not
take the packet in time, or refuses it (``MeshInterfaceError``, serial and socket errors), is a
``LinkDown``. Three kinds of packet leave a LoRa link:

* a frame on the link's private port, with ``want_ack`` and a waiter for the routing answer (``send_frame``;
  without a waiter, a broadcast);
* a short text to a team's handheld (``send_text``), the answer to its coded visit;
* a traceroute (``traceroute``), answered by the far firmware itself, to prove the mesh reaches a peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hub.core.errors import LinkDown
from transports.blocking import run_blocking
from transports.lora_alarm import TEXT_MESSAGE_APP
from transports.lora_interface import node_num
from transports.lora_peers import TraceOutcome
from transports.lora_send import AckWaiter, ResponseWaiter, drop_response_handlers
from transports.lora_settings import LoraSettings

POSITION_APP = 3
ROUTING_APP = 5
TRACEROUTE_APP = 70
TRACE_BYTES = 24
"""A traceroute request with room for the hops relays add (budgeted as one packet of this size)."""


async def send_frame(
    iface: Any, settings: LoraSettings, link: str, dest: str, data: bytes, waiter: AckWaiter | None
) -> Any:
    """Hand one frame to the radio; returns the library's ``MeshPacket`` (its id is ours to match)."""

    def call() -> Any:
        return iface.sendData(
            data,
            destinationId="^all" if waiter is None else dest,
            portNum=settings.port,
            wantAck=waiter is not None,
            onResponse=None if waiter is None else waiter.onAckNak,
            channelIndex=settings.channel,
            hopLimit=settings.hop_limit,
        )

    try:
        return await run_blocking(call, deadline=settings.connect_timeout, name="beredt-lora-send")
    except TimeoutError:
        raise LinkDown("radio did not take the packet in time", transport=link, peer=dest) from None
    except Exception as exc:  # MeshInterfaceError, serial and socket errors: the radio is not usable
        raise LinkDown(f"radio refused the packet: {exc}", transport=link, peer=dest) from exc


async def send_text(iface: Any, settings: LoraSettings, link: str, dest: str, data: bytes) -> None:
    """A direct text to a handheld; the firmware encrypts it with the handheld's public key."""

    def call() -> Any:
        return iface.sendData(data, destinationId=dest, portNum=TEXT_MESSAGE_APP, wantAck=True,
                              channelIndex=0, hopLimit=settings.hop_limit)  # fmt: skip

    try:
        await run_blocking(call, deadline=settings.connect_timeout, name="beredt-lora-answer")
    except Exception as exc:  # timeout, MeshInterfaceError, serial and socket errors
        raise LinkDown(f"radio did not take the answer: {exc}", transport=link, peer=dest) from exc


async def traceroute(
    iface: Any, settings: LoraSettings, dest: str, on_air: Callable[[], None]
) -> TraceOutcome:
    """Traceroute ``dest``: its radio's answer proves the mesh reaches it; silence or a NAK does not.
    ``on_air`` is called once the radio has taken the request."""
    trace = ResponseWaiter(asyncio.get_running_loop())

    def call() -> Any:
        return iface.sendData(
            b"",  # an empty RouteDiscovery: the relays and the destination fill it in
            destinationId=dest,
            portNum=TRACEROUTE_APP,
            wantAck=True,
            wantResponse=True,
            onResponse=trace.on_response,
            channelIndex=settings.channel,
            hopLimit=settings.hop_limit,
        )

    try:
        try:
            await run_blocking(call, deadline=settings.connect_timeout, name="beredt-lora-trace")
        except Exception:  # the radio itself is failing; its supervisor reports that, not the peer
            return ""
        on_air()
        try:
            async with asyncio.timeout(settings.ack_timeout):
                answer = await trace.future
        except TimeoutError:
            return "no answer to a traceroute"
    finally:
        drop_response_handlers(iface, trace)
    reason = answer.get("decoded", {}).get("routing", {}).get("errorReason", "NONE")
    if reason != "NONE" or answer.get("from") != node_num(dest):
        return f"traceroute answered {reason if reason != 'NONE' else 'by another node'}"
    return None
