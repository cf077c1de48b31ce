"""FOLLOWUP_LIST and VISIT: the follow-up of power-dependent citizens, small enough for SINE and LoRa.

A home-care team's device already holds the personal details of the citizens in its districts, so the
list sent to a team names each citizen only by an 8-hex-digit register id and adds what changes with
the outage: when the citizen's battery runs out and which equipment is at stake. Entries travel packed,
seven bytes each (id, minutes of autonomy after the outage began, equipment flags), in urgency order,
so ten citizens fit one sealed LoRa packet. A long list is split into numbered parts by the sender.

A VISIT is what a team reports from the doorstep: the citizen's id, one outcome code, when, and the
outage it belongs to. Sealed to one recipient it fits one SINE SDS. Wire keys and the orders of the
outcome and equipment tables are append-only, like every table in ``hub.core.kinds``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hub.core.errors import ProtocolError
from hub.core.kinds.fields import Choice, Entry, Flags, HexId, Schema, Time, UInt

CITIZEN_ID = HexId(4)
OUTAGE_ID = HexId(4)
EQUIPMENT = Flags(("oxygen", "dialysis", "ventilator", "suction", "other"))
OUTCOME = Choice(
    (
        "seen_ok",
        "needs_power",
        "needs_oxygen",
        "needs_transport",
        "moved_care_home",
        "moved_hospital",
        "not_home",
    )
)
MAX_ENTRIES = 120  # per part: 840 bytes, a handful of LoRa fragments; longer lists go as several parts
_ENTRY = struct.Struct(">4sHB")  # citizen id, minutes of autonomy after the outage began, equipment flags
NO_AUTONOMY_LIMIT = 0xFFFF


@dataclass(frozen=True, slots=True)
class PackedEntries:
    """A list of ``{"id", "minutes", "equipment"}`` objects as one byte string of fixed-size records."""

    max_items: int

    def to_wire(self, name: str, value: object) -> object:
        if not isinstance(value, list) or not 1 <= len(value) <= self.max_items:
            raise ValueError(f"{name}: expected a list of 1..{self.max_items} citizens")
        out = bytearray()
        for index, item in enumerate(value):
            where = f"{name}[{index}]"
            if not isinstance(item, dict) or set(item) - {"id", "minutes", "equipment"}:
                raise ValueError(f"{where}: expected an object with id, minutes and equipment")
            raw = CITIZEN_ID.to_wire(f"{where}.id", item.get("id"))
            minutes = UInt(NO_AUTONOMY_LIMIT).to_wire(f"{where}.minutes", item.get("minutes"))
            flags = EQUIPMENT.to_wire(f"{where}.equipment", item.get("equipment", []))
            assert isinstance(raw, bytes) and isinstance(minutes, int) and isinstance(flags, int)
            out += _ENTRY.pack(raw, minutes, flags)
        return bytes(out)

    def from_wire(self, name: str, value: object) -> object:
        if not isinstance(value, bytes) or not value or len(value) % _ENTRY.size:
            raise ProtocolError(f"{name}: expected packed entries of {_ENTRY.size} bytes each")
        if len(value) // _ENTRY.size > self.max_items:
            raise ProtocolError(f"{name}: more than {self.max_items} citizens")
        entries = []
        for index, (raw, minutes, flags) in enumerate(_ENTRY.iter_unpack(value)):
            equipment = EQUIPMENT.from_wire(f"{name}[{index}].equipment", flags)
            entries.append({"id": raw.hex(), "minutes": minutes, "equipment": equipment})
        return entries


FOLLOWUP_LIST = Schema(
    "followup_list",
    (
        Entry(1, "outage", OUTAGE_ID, required=True),
        Entry(2, "started", Time(), required=True),
        Entry(3, "citizens", PackedEntries(MAX_ENTRIES), required=True),
        Entry(4, "part", UInt(255)),
        Entry(5, "parts", UInt(255)),
    ),
)

VISIT = Schema(
    "visit",
    (
        Entry(1, "citizen", CITIZEN_ID, required=True),
        Entry(2, "outcome", OUTCOME, required=True),
        Entry(3, "at", Time(), required=True),
        Entry(4, "outage", OUTAGE_ID),
    ),
)
