"""LoRa frames across a relay: sends, resends and what the implicit ACKs did, at several loss rates.

Three fake radios in a chain A - B - C (B relays; A and C cannot hear each other) on the simulated mesh,
the hub's LoRa link on A and on C through the real ``meshtastic`` library. A sends FRAMES frames to C,
one after another, resending a frame the way the hub's store would when ``send`` fails (up to five
attempts). Loss is per reception, so a relayed packet and its ACK each cross two lossy hops.

Per loss rate it prints:
- sends made by the link and resends among them;
- resends after an implicit ACK (B was heard repeating the frame but C's ACK never came within the
  deadline), and how many of those C already had (the ACK, not the frame, was lost);
- implicit ACKs seen, and how many sends an "implicit ACK = failure" policy would have resent (sends
  whose implicit ACK was followed by C's ACK): the resends this link no longer makes;
- frames C received at least once, and duplicates it received (the far hub drops these by message id);
- radio retransmissions by A (packets the radio put on the air more than once);
- wall-clock seconds of the run (simulated air is instant; only timeouts take time).

    .venv/bin/python bench/bench_lora_relay.py [--frames 40] [--loss 0 0.05 0.15]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.core.errors import LinkDown
from hub.core.transport import Received, TransportContext
from simulators.meshtastic_radio import FakeMeshtasticRadio
from simulators.rf_medium import RFMedium
from transports.lora import LoraTransport, open_transport

A, B, C = 0xA1, 0xB2, 0xC3
PRESET = "SHORT_FAST"
ACK_TIMEOUT = 2
ATTEMPTS = 5


async def link(radio: FakeMeshtasticRadio, folder: Path) -> LoraTransport:
    port = await radio.start_tcp()
    options = {"kind": "lora", "host": f"127.0.0.1:{port}", "preset": PRESET, "ack_timeout": ACK_TIMEOUT}
    ctx = TransportContext(node_id="0" * 16, data_dir=folder, logger=logging.getLogger("bench.lora"))
    return await open_transport(f"lora-{radio.node_num:x}", options, ctx)


async def run(loss: float, frames: int, folder: Path) -> dict[str, float]:
    medium = RFMedium(loss=loss, seed=7, preset=PRESET, retry_delay=0.05)
    radios = {num: FakeMeshtasticRadio(num, medium) for num in (A, B, C)}
    medium.connect([(A, B), (B, C)])
    sender, receiver = await link(radios[A], folder), await link(radios[C], folder)
    arrivals: Counter[bytes] = Counter()

    async def collect() -> None:
        async for event in receiver.events():
            if isinstance(event, Received):
                arrivals[event.data] += 1

    collector = asyncio.create_task(collect())
    figures = Counter[str]()
    started = time.perf_counter()
    try:
        for number in range(frames):
            frame = b"\x01" + number.to_bytes(4, "big") + b"Beredt bench frame over a relay"
            for attempt in range(ATTEMPTS):
                figures["sends"] += 1
                figures["resends"] += attempt > 0
                before = sender.counters["unconfirmed_after_relay"]
                implicit_before = sender.counters["implicit_acks"]
                try:
                    await sender.send(f"!{C:08x}", frame)
                except LinkDown:
                    if sender.counters["unconfirmed_after_relay"] > before:
                        figures["failed after an implicit ACK"] += 1
                        figures["... C already had it"] += arrivals[frame] > 0
                    continue
                figures["old policy would have resent"] += sender.counters["implicit_acks"] > implicit_before
                break
        await asyncio.sleep(0.5)  # late arrivals of the last frame
    finally:
        seconds = time.perf_counter() - started
        await sender.aclose()
        await receiver.aclose()
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        for radio in radios.values():
            await radio.aclose()
    figures["implicit ACKs"] = sender.counters["implicit_acks"]
    figures["received"] = len(arrivals)
    figures["duplicates at C"] = sum(count - 1 for count in arrivals.values())
    figures["radio retransmissions"] = sum(count - 1 for count in radios[A].on_air.values())
    return {**figures, "seconds": round(seconds, 1)}


async def main(frames: int, losses: list[float]) -> None:
    logging.basicConfig(level=logging.ERROR)
    print(f"{frames} frames A -> C across relay B, preset {PRESET}, ack_timeout {ACK_TIMEOUT} s")
    with tempfile.TemporaryDirectory() as folder:
        rows = [(loss, await run(loss, frames, Path(folder))) for loss in losses]
    columns = [
        "sends", "resends", "failed after an implicit ACK", "... C already had it", "implicit ACKs",
        "old policy would have resent", "received", "duplicates at C", "radio retransmissions", "seconds",
    ]  # fmt: skip
    width = max(len(c) for c in columns)
    print(f"{'loss per reception':<{width}}" + "".join(f"{loss:>10.2f}" for loss, _ in rows))
    for column in columns:
        print(f"{column:<{width}}" + "".join(f"{row.get(column, 0):>10}" for _, row in rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--loss", type=float, nargs="+", default=[0.0, 0.05, 0.15])
    args = parser.parse_args()
    asyncio.run(main(args.frames, args.loss))
