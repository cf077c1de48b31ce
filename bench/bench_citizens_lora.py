"""Follow-up lists and visits on LoRa: bytes and airtime per team list, and time from outage to first list.

Part 1 (computed on real sealed, signed frames): for a team list of 5 to 120 citizens, the payload, the
frame, the LoRa packets after fragmenting to Beredt's 216-byte MTU, and bytes and seconds on air with
the radios' routing ACKs (LONG_FAST), and the SINE SDS the same frame takes (a 1,120-bit SDS, a
handheld's usual maximum); the same for one VISIT.

Part 2 (measured): three hubs in this process, each on a fake Meshtastic radio driven by the real
meshtastic library over a simulated mesh; a register of ``--people`` citizens in two districts, one
team per district. The time is from ``mark_outage`` to the moment each team's hub holds its whole list.
The simulated medium does not hold a packet for its airtime, so add part 1's seconds on air for a
real radio.

Part 3 (measured, same mesh): the Nord team's radio is cut off from the others, a nurse records
``--visits`` visits on the team's hub, the team's link finds the staff hub's radio down (its sends go
unacknowledged, a traceroute goes unanswered), then the mesh heals. The time is from the heal to the
moment the staff hub holds every visit, with the link's default peer checks (a down peer is probed
again every 60 s) and the count of visits the staff hub recorded (each must count once).

    .venv/bin/python bench/bench_citizens_lora.py [--people 200] [--visits 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_lora_airtime import PRESET, on_air, signed
from hub.citizens.followup import Entry, Outage, list_bodies
from hub.citizens.records import to_csv
from hub.citizens.register import Reader
from hub.citizens.sample import sample_citizens
from hub.citizens.service import FollowUp
from hub.citizens.settings import CitizensConfig
from hub.core.fragment import split
from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.core.kinds import encode_payload
from hub.relay.roster import Role
from hub.relay.settings import LinkConfig, PeerConfig
from hub.service.assembly import open_hub
from hub.service.config import HubConfig
from simulators.meshtastic_radio import FakeMeshtasticRadio
from simulators.rf_medium import RFMedium
from transports.lora import MTU
from transports.sine import pei_mtu

SINE_MTU = pei_mtu(1120)

SIZES = (5, 10, 20, 40, 80, 120)
COORDINATOR = Reader("bench", "coordinator")
NURSE = Reader("bench", "nurse")


def computed() -> None:
    staff, team = Identity.generate("Krisestab", "staff"), Identity.generate("Hjemmepleje", "care-home")
    outage = Outage("0000cafe", 1_800_000_000.0)
    print(f"preset {PRESET.name}, MTU {MTU} B; frames sealed to one team hub, with routing ACKs\n")
    print(f"{'citizens':>9}{'payload B':>11}{'frame B':>9}{'packets':>9}{'B on air':>10}{'s on air':>10}"
          f"{'SINE SDS':>10}")  # fmt: skip
    for size in SIZES:
        entries = [Entry(f"{n:08x}", outage.id, "Nord", outage.started + (n + 1) * 900.0, ("oxygen",), None)
                   for n in range(size)]  # fmt: skip
        (body,) = list_bodies(entries, outage)
        payload = encode_payload(Kind.FOLLOWUP_LIST, body)
        frame = signed(staff, Kind.FOLLOWUP_LIST, payload, [team]).encode()
        packets = [len(p) for p in split(frame, MTU)]
        air_bytes, seconds = on_air(packets)
        sds = len(split(frame, SINE_MTU))
        print(f"{size:>9}{len(payload):>11}{len(frame):>9}{len(packets):>9}{air_bytes:>10}{seconds:>10.2f}"
              f"{sds:>10}")  # fmt: skip
    visit = {"citizen": "0a0b0c0d", "outcome": "needs_oxygen", "at": 1_800_003_600, "outage": "0000cafe"}
    payload = encode_payload(Kind.VISIT, visit)
    frame = signed(team, Kind.VISIT, payload, [staff]).encode()
    air_bytes, seconds = on_air([len(p) for p in split(frame, MTU)])
    print(f"\nVISIT: payload {len(payload)} B, frame {len(frame)} B, {air_bytes} B and {seconds:.2f} s"
          f" on air, {len(split(frame, SINE_MTU))} SINE SDS")  # fmt: skip


@contextlib.asynccontextmanager
async def _hub(
    root: Path,
    identity: Identity,
    num: int,
    medium: RFMedium,
    peers: dict[Identity, int],
    settings: CitizensConfig,
) -> AsyncIterator[FollowUp]:
    radio = FakeMeshtasticRadio(num, medium)
    port = await radio.start_tcp()
    link = {"kind": "lora", "host": f"127.0.0.1:{port}", "ack_timeout": 10, "connect_timeout": 15}
    config = HubConfig(
        name=identity.name,
        role=Role(identity.role),
        data_dir=root / identity.name,
        links=(LinkConfig("lora", "lora", link),),
        peers=tuple(PeerConfig(p.node_id, p.name, {"lora": f"!{n:08x}"}) for p, n in peers.items()),
    )
    config.data_dir.mkdir(parents=True)
    try:
        async with open_hub(config, identity) as hub:
            task = asyncio.create_task(hub.run())
            await hub.ready.wait()
            for peer in peers:
                hub.roster.add(peer.card)
            service = await FollowUp.open_for(hub, settings)
            runner = asyncio.create_task(service.run())
            try:
                yield service
            finally:
                for running in (runner, task):
                    running.cancel()
                await asyncio.gather(runner, task, return_exceptions=True)
                await service.aclose()
    finally:
        await radio.aclose()


async def measured(people: int, visits: int) -> None:
    staff = Identity.generate("Krisestab", "staff")
    nord, syd = (
        Identity.generate("Hjemmepleje Nord", "care-home"),
        Identity.generate("Hjemmepleje Syd", "care-home"),
    )
    register = sample_citizens(people, ["Nord", "Syd"])
    teams = {"Nord": (nord.node_id.hex(),), "Syd": (syd.node_id.hex(),)}
    medium = RFMedium(seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        async with (
            _hub(root, staff, 0xA1, medium, {nord: 0xB2, syd: 0xC3}, CitizensConfig(teams=teams)) as hq,
            _hub(root, nord, 0xB2, medium, {staff: 0xA1}, CitizensConfig()) as team_nord,
            _hub(root, syd, 0xC3, medium, {staff: 0xA1}, CitizensConfig()) as team_syd,
        ):
            await hq.register.import_csv(to_csv(register), COORDINATOR)
            before = medium.airtime_used(0xA1)
            began = time.monotonic()
            outage = await hq.mark_outage(COORDINATOR, districts=["Nord", "Syd"])
            sent = await hq.incidents.lists_sent(outage)
            arrived: dict[str, float] = {}
            while len(arrived) < 2:
                for name, team in (("Nord", team_nord), ("Syd", team_syd)):
                    want = sum(p.district == name for p in register)
                    if name not in arrived and len(await team.incidents.entries()) == want:
                        arrived[name] = time.monotonic() - began
                if time.monotonic() - began > 300:
                    raise SystemExit("the lists did not arrive within 5 minutes")
                await asyncio.sleep(0.02)
            airtime = medium.airtime_used(0xA1) - before
            synced, counted = await _offline_visits(medium, hq, team_nord, visits)
    times = ", ".join(f"{k} {v:.2f} s" for k, v in sorted(arrived.items()))
    print(f"\n{people} citizens in two districts: list payloads {[s['bytes'] for s in sent]} B;"
          f" outage to whole list on each team's hub: {times}; staff radio airtime meanwhile {airtime:.1f} s"
          " (lists, fragments and link probes; the simulated medium does not wait out airtime)")  # fmt: skip
    print(f"{visits} visits recorded on the Nord team's hub while its radio was cut off: all on the staff"
          f" hub {synced:.1f} s after the mesh healed; the staff hub counted {counted}")  # fmt: skip


async def _offline_visits(medium: RFMedium, hq: FollowUp, team: FollowUp, count: int) -> tuple[float, int]:
    """Visits recorded while the team's radio hears nobody; seconds from the heal until the staff hub
    holds them all, and how many visits it counted."""
    medium.partition([0xB2], [0xA1, 0xC3])
    rows = (await team.followup_view(NURSE))[:count]
    for row in rows:
        await team.record_visit(str(row["id"]), "seen_ok", by=NURSE)
    link = team.hub.links.transports["lora"]
    cut = time.monotonic()
    while "!000000a1" not in link.status()["peers_down"]:  # type: ignore[attr-defined]
        if time.monotonic() - cut > 300:
            raise SystemExit("the team's link did not find the staff radio down within 5 minutes")
        await asyncio.sleep(0.1)
    healed = time.monotonic()
    medium.heal()
    want = {str(row["id"]) for row in rows}
    while want - {str(r["id"]) for r in await hq.followup_view(COORDINATOR) if r["seen"]}:
        if time.monotonic() - healed > 600:
            raise SystemExit("the visits did not arrive within 10 minutes of the heal")
        await asyncio.sleep(0.05)
    return time.monotonic() - healed, len(await hq.incidents.visits())


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--visits", type=int, default=5)
    args = parser.parse_args()
    computed()
    asyncio.run(measured(args.people, args.visits))


if __name__ == "__main__":
    main()
