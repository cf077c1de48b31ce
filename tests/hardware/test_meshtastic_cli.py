"""The official ``meshtastic`` CLI against the fake radio on a pty, as an operator would use it.

An independent client proves the simulator speaks the client API as the firmware does: each command
runs the installed ``meshtastic`` program as a subprocess on the radio's ``/dev/pts/N`` and the test
reads what it prints. The mesh is a chain A - B - C, so B relays between A and C.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.meshtastic_radio import FakeMeshtasticRadio
from simulators.rf_medium import RFMedium

A, B, C = 0xA1, 0xB2, 0xC3
CLI = Path(sys.executable).with_name("meshtastic")
CLI_DEADLINE = 120.0
"""Seconds one CLI run may take on a loaded machine (it takes about two when idle)."""


class Bench:
    """Three fake radios in a chain; A is on a pty where the CLI finds it."""

    def __init__(self, medium: RFMedium, radios: dict[int, FakeMeshtasticRadio], port: str) -> None:
        self.medium, self.radios, self.port = medium, radios, port

    async def cli(self, *args: str) -> str:
        """Run ``meshtastic --port /dev/pts/N ARGS``; its output, after checking it succeeded."""
        assert CLI.exists(), f"the meshtastic CLI is not installed next to {sys.executable}"
        process = await asyncio.create_subprocess_exec(
            str(CLI),
            "--port",
            self.port,
            *args,
            "--timeout",
            "60",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), CLI_DEADLINE)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        text = out.decode(errors="replace")
        assert process.returncode == 0, text
        assert "Traceback" not in text and "Error while handling" not in text, text
        return text


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    medium = RFMedium(seed=2)
    radios = {num: FakeMeshtasticRadio(num, medium) for num in (A, B, C)}
    link = await radios[A].start_pty(tmp_path / "ttyMESH")
    for num in (B, C):
        await radios[num].start_tcp()
    medium.connect([(A, B), (B, C)])
    try:
        yield Bench(medium, radios, os.readlink(link))
    finally:
        for radio in radios.values():
            await radio.aclose()


async def test_info_and_nodes(bench: Bench) -> None:
    info = await bench.cli("--info")
    assert "Owner: Beredt sim 000000a1 (00a1)" in info
    assert '"firmwareVersion": "2.5.20.beredt-sim"' in info
    assert '"region": "EU_868"' in info and '"hopLimit": 3' in info
    assert "Index 0: PRIMARY" in info
    nodes = await bench.cli("--nodes")
    for num in (A, B, C):
        assert f"!{num:08x}" in nodes and f"Beredt sim {num:08x}" in nodes


async def test_set_changes_what_get_answers_and_export_completes(bench: Bench) -> None:
    assert "lora.hop_limit: 3" in await bench.cli("--get", "lora.hop_limit")
    changed = await bench.cli("--set", "lora.hop_limit", "5")
    assert "Set lora.hop_limit to 5" in changed and "Writing lora configuration to device" in changed
    assert bench.radios[A].hop_limit == 5
    assert "lora.hop_limit: 5" in await bench.cli("--get", "lora.hop_limit")
    exported = await bench.cli("--export-config", "-")
    assert "owner: Beredt sim 000000a1" in exported and "hopLimit: 5" in exported


async def test_sendtext_with_ack_to_one_node_and_on_the_channel(bench: Bench) -> None:
    direct = await bench.cli("--sendtext", "Strøm tilbage kl. 18", "--ack", "--dest", f"!{B:08x}")
    assert "Received an ACK." in direct  # from B itself
    (sent,) = bench.radios[A].from_host
    assert (sent.to, sent.want_ack, sent.decoded.payload) == (B, True, "Strøm tilbage kl. 18".encode())
    channel = await bench.cli("--sendtext", "Til alle", "--ack")
    # Nobody ACKs a broadcast: B repeating it is the implicit ACK.
    assert "Received an implicit ACK. Packet will likely arrive, but cannot be guaranteed." in channel
    assert bench.radios[A].implicit_acks == 1


async def test_traceroute_through_the_relay(bench: Bench) -> None:
    out = await bench.cli("--traceroute", f"!{C:08x}")
    lines = out.splitlines()
    towards = lines[lines.index("Route traced towards destination:") + 1]
    back = lines[lines.index("Route traced back to us:") + 1]
    assert towards.startswith("!000000a1 --> !000000b2 (") and " --> !000000c3 (" in towards
    assert back.startswith("!000000c3 --> !000000b2 (") and " --> !000000a1 (" in back
    assert "?dB" not in towards + back  # every hop reported its SNR


async def test_telemetry_and_position_requests_are_answered(bench: Bench) -> None:
    telemetry = await bench.cli("--request-telemetry", "--dest", f"!{B:08x}")
    assert "Telemetry received:" in telemetry and "Voltage: 5.00 V" in telemetry
    position = await bench.cli("--request-position", "--dest", f"!{B:08x}")
    assert "Position received: (56.15" in position and "10.2107) 42m" in position
