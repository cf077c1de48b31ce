"""Learned routes in a municipality of 200+ hubs: convergence, and what the announcements cost.

One process, ``drill.route_mesh``: every hub's real ``RouteTable``, announcements encoded with the
real ROUTE codec, memory links with 50 ms delay, a manual clock stepped every 0.25 s. The network: a
backbone ring of relays (internet), each with care homes attached over internet; every third care home
also has LoRa to the next relay, and some care homes have LoRa only. Free links announce in full every
30 s (changes at most every 1 s); radio links twice a day (changes at most hourly).

Measured:
- start: seconds until every hub reaches every other (first hops followed hop by hop, as frames go);
- relay lost silently (no probe tells its neighbours; only its announcements stop): seconds, and
  announcement intervals, until every pair still connected is reached again, checking for forwarding
  loops every 2 s on the way;
- a care home added: seconds until every hub reaches it;
- announcement bytes per hub per hour over internet, and LoRa airtime per radio hub per hour (frame
  overhead included, Meshtastic LONG_FAST) against the 5 % of the EU868 36 s hour budget, averaged over
  one radio interval (12 h) after two radio gaps of settling, stepped every 5 s.

The radio clock is compressed (``--radio-speedup``, default 72: a 12 h radio interval lasts 600 simulated
seconds, the hourly gap 50 s) so the bench finishes in minutes: simulating 14 hours of full tables every
30 s between 205 hubs took hours. A radio interval still holds exactly one full table per radio
neighbour plus the changes, so the airtime per radio interval, divided by its real 12 hours, is the same
figure; ``--radio-speedup 1`` runs the radio clock in real time. Over radio, news after a change then
arrives sooner than in the field (the gap is shorter), which makes the start figure for radio-only care
homes optimistic; the internet figures do not depend on it.

    .venv/bin/python bench/bench_routes.py [--relays 10] [--homes 195] [--radio-speedup 72]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drill.route_mesh import FREE_PACE, RouteMesh
from hub.core.frame import HEADER_SIZE, SIGNATURE_SIZE
from hub.relay.route_learning import RADIO_GAP, RADIO_INTERVAL
from transports.lora_airtime import ModemPreset, packet_airtime

INTERVAL = FREE_PACE[0]
LORA_BUDGET = 0.05 * 36.0  # seconds an hour: 5 % of the EU868 1 % duty cycle
FRAME_OVERHEAD = HEADER_SIZE + 2 + SIGNATURE_SIZE


def nid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def build(mesh: RouteMesh, relays: int, homes: int) -> tuple[list[bytes], list[bytes]]:
    """The hubs and their internet links now; the LoRa links once the internet part has settled (a relay
    offers a default over radio only once it has routes to offer)."""
    ring = [nid(1 + i) for i in range(relays)]
    cares = [nid(1000 + i) for i in range(homes)]
    for node in ring + cares:
        mesh.add_node(node)
    for i, relay in enumerate(ring):
        mesh.link(relay, ring[(i + 1) % relays], "internet")
    radio = []
    for i, home in enumerate(cares):
        relay = ring[i % relays]
        if i % 20 == 19:
            radio.append((home, relay))  # radio only
            continue
        mesh.link(home, relay, "internet")
        if i % 3 == 0:
            radio.append((home, ring[(i + 1) % relays]))
    mesh.run(10)
    for home, relay in radio:
        mesh.link(home, relay, "lora")
    return ring, cares


def converge(
    mesh: RouteMesh, nodes: list[bytes], limit: float, check_every: float = 2.0
) -> tuple[float, int]:
    """Seconds until no connected pair is unreached (or ``limit``), and forwarding loops seen meanwhile."""
    start = mesh.now
    loops = 0
    while mesh.now - start < limit:
        mesh.run(check_every)
        loops += len(mesh.loops(nodes))
        if not mesh.unreached(nodes):
            return mesh.now - start, loops
    return float("inf"), loops


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--relays", type=int, default=10)
    parser.add_argument("--homes", type=int, default=195)
    parser.add_argument("--radio-speedup", type=float, default=72.0)
    args = parser.parse_args()
    wall = time.perf_counter()
    radio_interval, radio_gap = RADIO_INTERVAL / args.radio_speedup, RADIO_GAP / args.radio_speedup
    mesh = RouteMesh(radio_pace=(radio_interval, radio_gap))
    ring, cares = build(mesh, args.relays, args.homes)
    nodes = ring + cares
    print(
        f"{len(nodes)} hubs, {len(mesh.links)} links ({sum(k == 'lora' for k in mesh.links.values())} LoRa);"
        f" radio clock {args.radio_speedup:g} times faster:"
        f" interval {radio_interval:.0f} s, gap {radio_gap:.0f} s"
    )

    took, loops = converge(mesh, nodes, 600)
    print(f"start: every hub reaches every other after {took:.1f} s; forwarding loops seen: {loops}")

    settled = max(2 * radio_gap, mesh.now + 4 * INTERVAL)  # radio changes wait for their gap
    mesh.run(settled - mesh.now, dt=1.0)
    internet_hours = radio_interval / 3600  # simulated time, at the free links' real pace
    hours = RADIO_INTERVAL / 3600  # one radio interval: it holds exactly one full table per radio neighbour
    before = {n: {k: (s.frames, s.payload_bytes) for k, s in mesh.sent_by.get(n, {}).items()} for n in nodes}
    mesh.run(radio_interval, dt=5.0)
    internet = []
    airtime = []
    for node in nodes:
        for kind, sent in mesh.sent_by.get(node, {}).items():
            frames, payload = before[node].get(kind, (0, 0))
            frames, payload = sent.frames - frames, sent.payload_bytes - payload
            if kind == "internet":
                internet.append((payload + frames * FRAME_OVERHEAD) / internet_hours)
            elif kind == "lora" and frames:
                per_frame = (payload + frames * FRAME_OVERHEAD) / frames
                airtime.append(frames * packet_airtime(round(per_frame), ModemPreset.LONG_FAST) / hours)
    print(
        f"steady state, per hour (averaged over {radio_interval:.0f} s), internet:"
        f" {sum(internet) / len(internet) / 1024:.1f} KiB per hub on average,"
        f" {max(internet) / 1024:.1f} KiB at most"
    )
    print(
        f"steady state, per hour (one radio interval of {hours:.0f} h), LoRa:"
        f" {max(airtime):.2f} s airtime at most per radio hub"
        f" ({len(airtime)} hubs), budget"
        f" {LORA_BUDGET:.1f} s: {'ok' if max(airtime) <= LORA_BUDGET else 'OVER'}"
    )

    lost = ring[3]
    mesh.kill(lost)
    took, loops = converge(mesh, nodes, 10 * INTERVAL)
    print(
        f"relay lost silently: converged after {took:.1f} s = {took / INTERVAL:.2f} announcement intervals"
        f" (budget 3); forwarding loops seen: {loops}"
    )

    home = nid(5000)
    mesh.add_node(home)
    mesh.link(home, ring[5], "internet")
    took, loops = converge(mesh, [*nodes, home], 10 * INTERVAL, check_every=0.5)
    print(f"care home added: every hub reaches it after {took:.1f} s; loops: {loops}")
    print(f"(wall {time.perf_counter() - wall:.0f} s)")


if __name__ == "__main__":
    main()
