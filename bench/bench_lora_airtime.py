"""Bytes and seconds on air per delivered message over LoRa (EU 868, LONG_FAST), against JSON.

For an institution status (typical, and fully filled), a situation report and a short text, this script
prints:
- the signed Beredt frame size, in clear (marked public) and sealed to one recipient as it is sent by
  default; the status and the sitrep also sealed as a broadcast to 10 readers (one wrapped key each);
- the mesh packets it takes at Beredt's 216-byte LoRa MTU;
- bytes on air (with Meshtastic's packet header and data overhead);
- time on air for the packets, plus the routing ACK the radio sends back for each;
- how many such messages fit in one legal hour (360 s of airtime at the default 90 % share Beredt allows
  itself);
- each sealing budget with the figure it is judged by: bytes sealing adds to a one-recipient frame
  (<= 32), bytes per extra recipient of a sealed broadcast (<= 24), and whether a fully filled status
  sealed to one recipient is one packet.

The same content as compact JSON, signed the same way (64-byte Ed25519 signature plus the same header
fields as JSON), is printed beside, to show what the binary encoding saves on the scarcest link there is.

    .venv/bin/python bench/bench_lora_airtime.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.core.fragment import split
from hub.core.frame import BROADCAST, Frame, Kind
from hub.core.identity import Identity
from hub.core.kinds import encode_payload
from hub.core.seal import Context, SealingKey
from transports.lora import MTU
from transports.lora_airtime import DATA_OVERHEAD, MESH_HEADER_LEN, ModemPreset, packet_airtime

PRESET = ModemPreset.LONG_FAST
BUDGET_SECONDS = 360.0 * 0.9
ACK_PAYLOAD = 2  # a routing ACK carries a tiny Routing message

MESSAGES: dict[str, tuple[Kind, object]] = {
    "institution status": (
        Kind.STATUS,
        {
            "facility": "Compromised",
            "staffing": "Adequate",
            "operations": "Insufficient",
            "power": "generator",
            "fuel_hours": 18,
            "water_days": 2,
            "food_days": 3,
            "medicine_days": 5,
            "residents": {"total": 42, "present": 40, "power_dependent": 3, "needing_help": 2},
            "needs": ["oxygen", "heat"],
            "text": "Generator kører, ilt til 2 døgn",
        },
    ),
    "full status": (
        Kind.STATUS,
        {  # every field at its limit; the free text's 48 bytes in two-byte Danish letters
            "facility": "Compromised",
            "staffing": "Insufficient",
            "operations": "Adequate",
            "power": "generator",
            "fuel_hours": 9999,
            "water_days": 99,
            "food_days": 99,
            "medicine_days": 99,
            "residents": {"total": 9999, "present": 9999, "power_dependent": 9999, "needing_help": 9999},
            "needs": ["oxygen", "dialysis", "heat", "water", "food", "medicine", "transport", "staff"],
            "text": "ø" * 24,
            "rollcall": "a1b2c3d4",
        },
    ),
    "situation report": (
        Kind.SITREP,
        {
            "number": 4,
            "phase": "Update",
            "summary": "Strømsvigt i hele kommunen siden 06:10. Varmestuer åbne på Rådhuset og i Hallen. "
            "Næste opdatering kl. 18.",
            "casualties": {"injured": 2, "evacuated": 35, "sheltering": 120},
        },
    ),
    "short text": (Kind.TEXT, "Diesel leveres kl. 14 til Solgaarden"),
}


def on_air(packets: list[int]) -> tuple[int, float]:
    """Bytes and seconds on air for packets of the given application payload sizes, with their ACKs."""
    air_bytes = sum(p + MESH_HEADER_LEN + DATA_OVERHEAD for p in packets)
    seconds = sum(packet_airtime(p, PRESET) + packet_airtime(ACK_PAYLOAD, PRESET) for p in packets)
    return air_bytes, seconds


def json_equivalent(identity: Identity, kind: Kind, body: object) -> bytes:
    """The same message as compact JSON with the same header fields and a base64 Ed25519 signature."""
    document = {
        "v": 1,
        "kind": kind.name.lower(),
        "from": identity.node_id.hex(),
        "to": "ffffffffffffffff",
        "created": int(time.time()),
        "ttl": 1440,
        "priority": "normal",
        "status": "actual",
        "nonce": 123456789,
        "body": body,
        "sig": "A" * 86,  # 64 bytes in base64 without padding
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


BROADCAST_READERS = 10


def signed(identity: Identity, kind: Kind, payload: bytes, readers: list[Identity] | None) -> Frame:
    """A frame as the hub signs it: in clear, sealed to one reader, or sealed as a broadcast to several."""
    recipient = BROADCAST if readers is None or len(readers) > 1 else readers[0].node_id
    context = Context(identity.node_id, recipient, kind, int(time.time()), 0x5EA1ED)
    if readers is not None:
        sealer = SealingKey(identity.sealing_private, identity.node_id)
        if recipient == BROADCAST:
            payload = sealer.seal_wrapped(payload, [(r.node_id, r.sealing_public) for r in readers], context)
        else:
            payload = sealer.seal_direct(payload, readers[0].sealing_public, context)
    return identity.sign(
        kind,
        recipient,
        payload,
        created=context.created,
        ttl_minutes=1440,
        sealed=readers is not None,
        nonce=context.nonce,
    )


def main() -> None:
    identity = Identity.generate("Plejehjemmet Solgaarden", "care-home")
    readers = [Identity.generate(f"Hub {n}", "staff") for n in range(BROADCAST_READERS)]
    header = ("message", "encoding", "bytes", "packets", "bytes on air", "s on air", "per legal hour")
    rows = []
    for name, (kind, body) in MESSAGES.items():
        payload = encode_payload(kind, body)
        encodings = [
            ("sealed 1", signed(identity, kind, payload, readers[:1]).encode()),
            ("public", signed(identity, kind, payload, None).encode()),
            ("JSON", json_equivalent(identity, kind, body)),
        ]
        if kind is not Kind.TEXT:
            encodings.insert(
                1, (f"sealed {BROADCAST_READERS}", signed(identity, kind, payload, readers).encode())
            )
        for encoding, data in encodings:
            packets = [len(p) for p in split(data, MTU)]
            air_bytes, seconds = on_air(packets)
            rows.append(
                (name, encoding, len(data), len(packets), air_bytes, seconds, int(BUDGET_SECONDS // seconds))
            )
    widths = (20, 11, 7, 8, 13, 9, 15)
    print(f"preset {PRESET.name}, MTU {MTU} B, budget {BUDGET_SECONDS:.0f} s of airtime per rolling hour\n")
    print("".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        cells = (row[0], row[1], str(row[2]), str(row[3]), str(row[4]), f"{row[5]:.2f}", f"{row[6]:,}")
        print("".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    print()
    by_name = {(row[0], row[1]): row for row in rows}
    for name in MESSAGES:
        sealed, public, as_json = by_name[name, "sealed 1"], by_name[name, "public"], by_name[name, "JSON"]
        print(
            f"{name}: sealing to one recipient adds {sealed[2] - public[2]} bytes;"
            f" JSON costs {as_json[5] / sealed[5]:.1f}x the airtime of the sealed Beredt frame"
        )
    print()
    print(budgets(by_name))


def budgets(by_name: dict[tuple[str, str], tuple[str, str, int, int, int, float, int]]) -> str:
    """The sealing budgets, each with the figure from the table above that it is judged by."""
    added = max(by_name[name, "sealed 1"][2] - by_name[name, "public"][2] for name in MESSAGES)
    per_reader = max(
        (by_name[name, f"sealed {BROADCAST_READERS}"][2] - by_name[name, "sealed 1"][2])
        / (BROADCAST_READERS - 1)
        for name in MESSAGES
        if (name, f"sealed {BROADCAST_READERS}") in by_name
    )
    full = by_name["full status", "sealed 1"]

    def verdict(ok: bool) -> str:
        return "within budget" if ok else "OVER BUDGET"

    return "\n".join(
        (
            f"budget: sealing adds <= 32 bytes to a one-recipient frame: {added} bytes,"
            f" {verdict(added <= 32)}",
            f"budget: <= 24 bytes per extra recipient: {per_reader:.1f} bytes"
            f" ({BROADCAST_READERS} readers against one), {verdict(per_reader <= 24)}",
            f"budget: a fully filled status sealed to one recipient in one LoRa packet: {full[2]} bytes,"
            f" {full[3]} packet(s) (Beredt's MTU {MTU} B: what the 233-byte payload leaves a PKI-encrypted"
            f" direct message), {verdict(full[3] == 1)}",
        )
    )


if __name__ == "__main__":
    main()
