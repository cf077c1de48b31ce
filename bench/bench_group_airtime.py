"""LoRa airtime of a group message: one sealed message per member, against one broadcast with a reader list.

Sealing is per reader, so a group message can travel two ways:
- per member (what Beredt does): one frame per member, each sealed to that member alone (DIRECT) and
  answered by the radio's routing ACK;
- as one broadcast sealed to the members (WRAPPED: the content key wrapped once per member), which the
  mesh floods to every node, members or not, and which no radio acknowledges.

For a short text, an institution status and an alert to groups of 3, 5, 10 and 20 members this prints
the packets, bytes and seconds on air of each (LONG_FAST, Beredt's 216-byte MTU). Each member's signed
end-to-end ack costs the same either way and is left out.

    .venv/bin/python bench/bench_group_airtime.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_lora_airtime import MESSAGES, PRESET, on_air, signed
from hub.core.fragment import split
from hub.core.identity import Identity
from hub.core.kinds import encode_payload
from transports.lora import MTU
from transports.lora_airtime import DATA_OVERHEAD, MESH_HEADER_LEN, packet_airtime

SIZES = (3, 5, 10, 20)


def broadcast_on_air(packets: list[int]) -> tuple[int, float]:
    """Bytes and seconds on air for packets no radio acknowledges (a mesh broadcast)."""
    return sum(p + MESH_HEADER_LEN + DATA_OVERHEAD for p in packets), sum(
        packet_airtime(p, PRESET) for p in packets
    )


def main() -> None:
    sender = Identity.generate("Krisestab", "staff")
    members = [Identity.generate(f"Plejehjem {n}", "care-home") for n in range(max(SIZES))]
    print(f"preset {PRESET.name}, MTU {MTU} B; per member = N sealed frames with their routing ACKs\n")
    print(
        f"{'message':<20}{'N':>3}  {'per member: pkts':>17}{'s on air':>10}"
        f"  {'broadcast: pkts':>16}{'s on air':>10}"
    )
    for name, (kind, body) in MESSAGES.items():
        payload = encode_payload(kind, body)
        one = [len(p) for p in split(signed(sender, kind, payload, members[:1]).encode(), MTU)]
        for size in SIZES:
            _, per_member_s = on_air(one * size)
            wrapped = signed(sender, kind, payload, members[:size]).encode()
            packets = [len(p) for p in split(wrapped, MTU)]
            _, broadcast_s = broadcast_on_air(packets)
            print(
                f"{name:<20}{size:>3}  {len(one) * size:>17}{per_member_s:>10.2f}"
                f"  {len(packets):>16}{broadcast_s:>10.2f}"
            )


if __name__ == "__main__":
    main()
