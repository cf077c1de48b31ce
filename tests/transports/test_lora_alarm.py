"""Personal alarms over the mesh: a registered handheld's PKI direct message, and everything that is not.

The handheld is a fake radio driven by the real ``meshtastic`` library, as a phone or the handheld's own
canned-message module would drive the firmware; the hub's radio is read by ``LoraTransport``.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from meshtastic.tcp_interface import TCPInterface
from pubsub import pub

from hub.core.handhelds import FILE_NAME
from hub.core.transport import PersonalAlarm
from simulators.meshtastic_radio import FakeMeshtasticRadio
from tests.inproc import eventually
from tests.transports.test_lora import Mesh
from transports.lora import LoraTransport
from transports.lora_alarm import ALERT_APP, TEXT_MESSAGE_APP

HUB, HANDHELD, STRANGER, IMPOSTOR = 0xA1, 0xD1, 0xD2, 0xD3
DEADLINE = 20.0


class Handheld:
    """A handheld at a citizen's home: a fake radio and the real library sending through it."""

    def __init__(self, radio: FakeMeshtasticRadio, iface: Any) -> None:
        self.radio = radio
        self.iface = iface

    @classmethod
    async def open(cls, mesh: Mesh, num: int, *, pki: bool = True) -> Handheld:
        radio = mesh.radios[num] = FakeMeshtasticRadio(num, mesh.medium, pki=pki)
        port = await radio.start_tcp()
        iface = await asyncio.to_thread(TCPInterface, "127.0.0.1", portNumber=port, timeout=15)
        return cls(radio, iface)

    async def press(self, text: str, *, port: int = TEXT_MESSAGE_APP, to: int = HUB) -> None:
        """Send ``text`` as the handheld's button or canned message does; wait until the air is quiet."""
        sent = len(self.radio.from_host)
        dest = "^all" if to == 0xFFFFFFFF else f"!{to:08x}"
        await asyncio.to_thread(
            self.iface.sendData, text.encode(), destinationId=dest, portNum=port, wantAck=to != 0xFFFFFFFF
        )
        await asyncio.wait_for(self.radio.packets_from_host(sent + 1), DEADLINE)
        await asyncio.wait_for(self.radio.medium.quiet(), DEADLINE)

    def close(self) -> None:
        self.iface.close()


def register(tmp_path: Path, *entries: tuple[int, bytes | None]) -> None:
    lines = []
    for node, key in entries:
        assert key is not None
        encoded = base64.b64encode(key).decode()
        lines.append(
            f'[[handheld]]\nnode = "!{node:08x}"\npublic_key = "{encoded}"\ncitizen = "C-{node:04x}"\n'
        )
    (tmp_path / FILE_NAME).write_text("\n".join(lines))


async def next_alarm(transport: LoraTransport) -> PersonalAlarm:
    async def pull() -> PersonalAlarm:
        async for event in transport.events():
            if isinstance(event, PersonalAlarm):
                return event
        raise AssertionError("events ended")

    return await asyncio.wait_for(pull(), DEADLINE)


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    mesh = Mesh(tmp_path)
    yield mesh
    await mesh.aclose()


@pytest.fixture
async def handhelds(mesh: Mesh) -> AsyncIterator[list[Handheld]]:
    opened: list[Handheld] = []
    yield opened
    for handheld in opened:
        await asyncio.to_thread(handheld.close)


async def test_firmware_hands_a_pki_dm_to_the_host_marked_with_the_senders_key(
    mesh: Mesh, handhelds: list[Handheld]
) -> None:
    """The transcript of what the hub's library receives for a PKI direct message (Router.cpp)."""
    hub_radio = FakeMeshtasticRadio(HUB, mesh.medium)
    mesh.radios[HUB] = hub_radio
    port = await hub_radio.start_tcp()
    heard: list[dict[str, Any]] = []
    arrived = threading.Event()

    def on_receive(packet: dict[str, Any], interface: Any) -> None:
        if packet.get("to") == HUB and packet.get("decoded", {}).get("portnum") == "TEXT_MESSAGE_APP":
            heard.append(packet)
            arrived.set()

    pub.subscribe(on_receive, "meshtastic.receive")
    hub_iface = await asyncio.to_thread(TCPInterface, "127.0.0.1", portNumber=port, timeout=15)
    try:
        handhelds.append(handheld := await Handheld.open(mesh, HANDHELD))
        await handheld.press("HJÆLP")
        assert await asyncio.to_thread(arrived.wait, DEADLINE)
    finally:
        pub.unsubscribe(on_receive, "meshtastic.receive")
        await asyncio.to_thread(hub_iface.close)
    (packet,) = heard
    assert handheld.radio.public_key is not None
    transcript = {
        key: packet.get(key) for key in ("from", "to", "wantAck", "pkiEncrypted", "publicKey", "channel")
    }
    assert transcript == {
        "from": HANDHELD,
        "to": HUB,
        "wantAck": True,
        "pkiEncrypted": True,
        "publicKey": base64.b64encode(handheld.radio.public_key).decode(),
        "channel": None,  # channel index 0: left out of the dict, as protobuf leaves out defaults
    }
    assert packet["decoded"]["payload"] == "HJÆLP".encode()
    assert packet["raw"].public_key == handheld.radio.public_key


async def test_a_registered_handhelds_button_and_canned_message_are_personal_alarms(
    mesh: Mesh, handhelds: list[Handheld], tmp_path: Path
) -> None:
    handhelds.append(handheld := await Handheld.open(mesh, HANDHELD))
    register(tmp_path, (HANDHELD, handheld.radio.public_key))
    link = await mesh.open(HUB, personal_alarms=True, alarm_interval=1)
    await handheld.press("Jeg er faldet")
    alarm = await next_alarm(link)
    assert (alarm.node, alarm.text, alarm.port) == (HANDHELD, "Jeg er faldet", "text")
    assert alarm.public_key == handheld.radio.public_key
    await asyncio.sleep(1.05)  # the rate limit's interval: the next press counts again
    await handheld.press("\U0001f514", port=ALERT_APP)
    assert (await next_alarm(link)).port == "alert"
    assert link.status()["personal_alarms"]["accepted"] == 2


async def test_everything_else_on_the_alarm_ports_is_refused_and_counted(
    mesh: Mesh, handhelds: list[Handheld], tmp_path: Path
) -> None:
    handhelds.append(handheld := await Handheld.open(mesh, HANDHELD))
    handhelds.append(stranger := await Handheld.open(mesh, STRANGER))
    handhelds.append(old_firmware := await Handheld.open(mesh, IMPOSTOR, pki=False))
    registered_key = b"\x07" * 32
    register(tmp_path, (HANDHELD, handheld.radio.public_key), (IMPOSTOR, registered_key))
    link = await mesh.open(HUB, personal_alarms=True, alarm_interval=600)
    counters = link.alarms.counters if link.alarms is not None else {}

    await handheld.press("første")
    assert (await next_alarm(link)).text == "første"
    await handheld.press("igen")  # within the interval
    await eventually(lambda: counters["rate_limited"] == 1, DEADLINE)
    await handheld.press("til alle", to=0xFFFFFFFF)
    await eventually(lambda: counters["broadcast"] == 1, DEADLINE)
    await stranger.press("ukendt")
    await eventually(lambda: counters["unknown_node"] == 1, DEADLINE)
    await old_firmware.press("uden PKI")  # firmware without keys: a channel-encrypted DM
    await eventually(lambda: counters["not_pki"] == 1, DEADLINE)

    # A handheld whose radio has a key other than the registered one (reset, swapped, or planted).
    mesh.radios[HUB].node_keys[STRANGER] = b"\x09" * 32
    stranger.radio.node_keys.clear()
    register(tmp_path, (HANDHELD, handheld.radio.public_key), (STRANGER, b"\x08" * 32))
    link2 = await mesh.open(HUB, personal_alarms=True)
    assert link2.alarms is not None
    await stranger.press("ny nøgle")  # the hub's radio cannot decrypt it with the key it holds: dropped
    mesh.radios[HUB].node_keys.clear()
    await stranger.press("ny nøgle igen")  # decrypted with the radio's key, not the registered one
    await eventually(
        lambda: link2.alarms is not None and link2.alarms.counters["key_mismatch"] == 1, DEADLINE
    )

    # Another node forging the handheld's id: the firmware cannot decrypt it, so the host never sees it.
    stranger.radio.send_forged(HANDHELD, HUB, TEXT_MESSAGE_APP, b"falsk")
    await asyncio.wait_for(mesh.medium.quiet(), DEADLINE)
    await handheld.press("efter", to=0xFFFFFFFF)  # heard after the forged one, in order
    await eventually(lambda: counters["broadcast"] == 2, DEADLINE)
    assert counters == {
        "accepted": 1,
        "team_texts": 0,
        "broadcast": 2,
        "not_to_us": 0,
        "not_pki": 1,
        "unknown_node": 2,  # the stranger, then the one the second link's register lists with another key
        "key_mismatch": 0,
        "rate_limited": 1,
    }
