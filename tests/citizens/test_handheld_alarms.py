"""Personal alarms at the municipality's hub: matched to the handheld's citizen, or flagged, never lost."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from hub.citizens.handheld_alarms import HandheldAlarms, PersonalAlarmRow
from hub.core.handhelds import FILE_NAME
from hub.core.identity import Identity
from hub.core.transport import PersonalAlarm
from tests.inproc import eventually, hub_config, medium_name, running

KEY, OTHER_KEY = b"\x11" * 32, b"\x22" * 32


async def test_alarms_are_matched_flagged_acknowledged_and_survive_a_restart(tmp_path: Path) -> None:
    listed = base64.b64encode(KEY).decode()
    (tmp_path / FILE_NAME).write_text(
        f'[[handheld]]\nnode = "!000000d1"\npublic_key = "{listed}"\ncitizen = "C-0042"\n'
        f'[[handheld]]\nnode = "!000000d2"\npublic_key = "{listed}"\ncitizen = "C-0043"\n'
    )
    identity = Identity.generate("Aarhus krisestab", "staff")
    config = hub_config(tmp_path, "Aarhus krisestab", medium_name())
    async with running(config, identity) as hub:
        alarms = await HandheldAlarms.open(hub)
        raised: list[PersonalAlarmRow] = []

        async def collect(row: PersonalAlarmRow) -> None:
            raised.append(row)

        alarms.on_alarm(collect)
        task = asyncio.create_task(alarms.run())
        await asyncio.sleep(0)  # subscribed before the first alarm is kept
        # The hub's own radio heard them: they land in its own inbox, signed and sealed.
        await hub.personal_alarms.forward("lora", PersonalAlarm(0xD1, KEY, "Jeg er faldet", "text"))
        await hub.personal_alarms.forward("lora", PersonalAlarm(0xD2, OTHER_KEY, "", "alert"))
        # A radio hub whose report_to has no route keeps the alarm itself rather than lose it.
        hub.personal_alarms.report_to = b"\x01" * 8
        await hub.personal_alarms.forward("lora", PersonalAlarm(0xD9, KEY, "hjælp", "text"))
        hub.personal_alarms.report_to = hub.node_id
        await eventually(lambda: len(raised) == 3, 10)
        by_handheld = {row.handheld: row for row in raised}
        assert (by_handheld["!000000d1"].citizen, by_handheld["!000000d1"].match) == ("C-0042", "registered")
        assert (by_handheld["!000000d2"].citizen, by_handheld["!000000d2"].match) == (None, "key_differs")
        assert (by_handheld["!000000d9"].citizen, by_handheld["!000000d9"].match) == (None, "unregistered")
        first = by_handheld["!000000d1"].id
        stored = await hub.store.message(bytes.fromhex(first))
        assert stored is not None
        print(f"sealed CITIZEN_ALARM with a 13-byte text: {len(stored.wire)} bytes signed (LoRa MTU 216)")
        assert len(stored.wire) <= 200  # one LoRa packet
        assert alarms.acknowledge(first, "hansen") and not alarms.acknowledge(first, "hansen")
        assert [row["id"] for row in alarms.rows()][-1] == first  # handled ones go to the bottom
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # After a restart the alarms are read again from the inbox, the acknowledgement kept.
        again = await HandheldAlarms.open(hub)
        rows = {row["id"]: row for row in again.rows()}
        assert len(rows) == 3 and rows[first]["acknowledged_by"] == "hansen"
        assert sum(row["acknowledged_at"] is None for row in rows.values()) == 2
