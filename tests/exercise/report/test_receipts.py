"""Read receipts in the report cover every message of the exercise, however many: they are read from the
signed READ_RECEIPT frames in ``store.db``, not from the console's outbox (which keeps the newest 300).

Two in-process hubs: the staff sends more exercise messages than the outbox keeps; the care home reads
the very first and the last. A receipt signed by another hub than the recipient does not count."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from hub.console.outbox import KEEP
from hub.core.frame import Kind, Status
from hub.core.identity import Identity
from hub.core.kinds import encode_payload
from hub.exercise.report.collect import ExerciseFacts, HubFacts, collect
from hub.exercise.report.model import Targets
from hub.relay.hub import Hub
from hub.relay.roster import Role as NodeRole
from tests.inproc import eventually, hub_config, medium_name, peer, running

WAIT = 120.0
"""Seconds for a few hundred messages between in-process hubs: generous, for a loaded 2-core machine."""
SENT = KEEP + 10


async def read(reader: Hub, to: Identity, message_id: str, by: str, at: int) -> bytes:
    body = {"message": message_id, "read_at": at, "by": by}
    return await reader.submit(
        Kind.READ_RECEIPT, to.node_id, encode_payload(Kind.READ_RECEIPT, body), status=Status.EXERCISE
    )


async def play(folder: Path) -> tuple[list[str], dict[str, tuple[float | None, str | None]]]:
    medium = medium_name()
    staff_id = Identity.generate("Beredskabsstaben", "staff")
    care_id = Identity.generate("Plejecenter Lindely", "care-home")
    other_id = Identity.generate("Bofællesskabet Lyngen", "care-home")
    configs = {
        identity: hub_config(
            folder / identity.name, identity.name, medium,
            role=NodeRole.STAFF if identity is staff_id else NodeRole.CARE_HOME,
            peers=tuple(peer(o, o.name) for o in (staff_id, care_id, other_id) if o is not identity),
            default_route=() if identity is staff_id else (staff_id.node_id,),
        )
        for identity in (staff_id, care_id, other_id)
    }  # fmt: skip
    started = time.time() - 1
    async with (
        running(configs[staff_id], staff_id) as staff,
        running(configs[care_id], care_id) as care,
        running(configs[other_id], other_id) as other,
    ):
        for hub in (staff, care, other):
            for identity in (staff_id, care_id, other_id):
                if identity is not hub.identity:
                    hub.roster.add(identity.card)
        sent = []
        for number in range(SENT):
            text = encode_payload(Kind.TEXT, f"ØVELSE: besked {number}")
            message_id = await staff.submit(Kind.TEXT, care_id.node_id, text, status=Status.EXERCISE)
            sent.append(message_id.hex())
        await eventually(lambda: all(care.store.has(bytes.fromhex(m)) for m in sent), WAIT)
        first, last = sent[0], sent[-1]
        now = int(time.time())
        receipts = [
            await read(other, staff_id, sent[1], "Ikke modtageren", now),  # not its message: no count
            await read(care, staff_id, first, "Nattevagt Birgit", now),
            await read(care, staff_id, last, "", now + 1),  # no name given: the recipient read it
        ]
        await eventually(lambda: all(staff.store.has(r) for r in receipts), WAIT)
        await staff.store.flush()
        facts = ExerciseFacts(
            "0a0b0c0d", "Mange beskeder", started, None, (care_id.node_id.hex(),), Targets()
        )
        names = {care_id.node_id.hex(): care_id.name, other_id.node_id.hex(): other_id.name}
        hub = HubFacts(
            staff_id.name, staff.config.store_path, folder / "ingen-konsol.db", names, {"memory": "internet"},
            None, staff.open_payload,
        )  # fmt: skip
        report = collect(facts, hub, now=time.time() + 5)
        return sent, {m.id: (m.read_at, m.read_by) for m in report.messages}


def test_receipts_cover_more_messages_than_the_outbox_keeps(tmp_path: Path) -> None:
    sent, read_by_id = asyncio.run(play(tmp_path))
    assert set(read_by_id) == set(sent)
    first, second, last = sent[0], sent[1], sent[-1]
    assert read_by_id[first][1] == "Nattevagt Birgit" and read_by_id[first][0] is not None
    assert read_by_id[last][1] == "Plejecenter Lindely" and read_by_id[last][0] is not None
    assert read_by_id[second] == (None, None)
    assert sum(at is not None for at, _ in read_by_id.values()) == 2
