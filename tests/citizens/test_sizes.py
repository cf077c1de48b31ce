"""FOLLOWUP_LIST and VISIT on real sealed, signed frames: a visit fits one SINE SDS, a team's list of
ten citizens one LoRa packet; a long list is split into parts that each decode on their own."""

from __future__ import annotations

import cbor2
import pytest

from hub.citizens.followup import Entry, Outage, list_bodies
from hub.core.errors import ProtocolError
from hub.core.frame import Kind
from hub.core.identity import Identity
from hub.core.kinds import decode_payload, encode_payload
from hub.core.kinds.followup import MAX_ENTRIES
from tests.core.test_seal import signed
from transports.lora import MTU as LORA_MTU
from transports.sine import pei_mtu

TEAM = Identity.generate("Hjemmepleje Nord", "care-home")
SINE_SDS = pei_mtu(1120)  # a type-4 SDS of a SINE handheld's usual maximum


def _entries(count: int) -> list[Entry]:
    return [Entry(f"{n:08x}", "0000cafe", "Nord", 1_800_000_000 + n * 600.0, ("oxygen",), None)
            for n in range(count)]  # fmt: skip


def test_a_sealed_visit_fits_one_sine_sds() -> None:
    body = {"citizen": "0a0b0c0d", "outcome": "moved_hospital", "at": 1_800_003_600, "outage": "0000cafe"}
    frame = signed(Kind.VISIT, TEAM.node_id, encode_payload(Kind.VISIT, body), seal_to=[TEAM])
    assert len(frame.encode()) <= SINE_SDS, (len(frame.encode()), SINE_SDS)


def test_ten_citizens_fit_one_sealed_lora_packet() -> None:
    outage = Outage("0000cafe", 1_800_000_000.0)
    (body,) = list_bodies(_entries(10), outage)
    payload = encode_payload(Kind.FOLLOWUP_LIST, body)
    frame = signed(Kind.FOLLOWUP_LIST, TEAM.node_id, payload, seal_to=[TEAM])
    assert len(frame.encode()) <= LORA_MTU, len(frame.encode())


def test_a_long_list_goes_in_parts_and_order_is_kept() -> None:
    outage = Outage("0000cafe", 1_800_000_000.0)
    bodies = list_bodies(_entries(MAX_ENTRIES + 5), outage)
    assert [(b["part"], b["parts"]) for b in bodies] == [(1, 2), (2, 2)]
    decoded = [decode_payload(Kind.FOLLOWUP_LIST, encode_payload(Kind.FOLLOWUP_LIST, b)) for b in bodies]
    ids = [c["id"] for d in decoded for c in d["citizens"]]  # type: ignore[index]
    assert ids == [f"{n:08x}" for n in range(MAX_ENTRIES + 5)]
    assert decoded[0]["citizens"][1]["minutes"] == 10  # type: ignore[index]


def test_bad_lists_are_refused() -> None:
    bad = {
        "outage": "0000cafe",
        "started": 0,
        "citizens": [{"id": "0a0b0c0d", "minutes": 1, "equipment": ["tv"]}],
    }
    with pytest.raises(ValueError, match=r"citizens\[0\]\.equipment"):
        encode_payload(Kind.FOLLOWUP_LIST, bad)
    short_entry = cbor2.dumps({1: b"\x00\x00\xca\xfe", 2: 0, 3: b"\x0a\x0b\x0c\x0d\x00\x01"})
    with pytest.raises(ProtocolError, match="packed entries"):
        decode_payload(Kind.FOLLOWUP_LIST, short_entry)
