"""A small exercise really played between two in-process hubs with consoles, and its report.

The coordinator's hub (staff) and one institution (a care home) share two memory links, ``memory`` and
``backup``. The staff sends two exercise messages (the second while ``memory`` is unplugged, so it fails
over to ``backup``) and a third while both are unplugged (it stays unconfirmed); the care home answers
with a status, confirms the first message as read and answers a roll-call. The report is then collected
from the hubs' real ``store.db`` and ``console.db`` and written to a folder.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.console.service import ConsoleOptions
from hub.core.frame import Kind, Priority, Status
from hub.core.identity import Identity
from hub.exercise.report import ReportFiles, write_report
from hub.exercise.report.collect import ExerciseFacts, HubFacts, InjectSent, Outage, collect
from hub.exercise.report.model import Note, ReportInput, Targets
from hub.relay.roster import Role as NodeRole
from hub.relay.settings import LinkConfig, PeerConfig
from hub.relay.store import Store
from tests.console.conftest import serve
from tests.inproc import eventually, hub_config, medium_name, running
from transports.memory import MemoryMedium

LINKS = ("memory", "backup")
INJECT = "Strømmen er gået i hele distrikt Syd"


@dataclass
class Played:
    folder: Path
    staff_dir: Path
    care_name: str
    care_id: str
    started: float
    sent: list[str]
    report: ReportInput
    files: ReportFiles


def _links(media: dict[str, str], address: str) -> tuple[LinkConfig, ...]:
    return tuple(
        LinkConfig(n, "memory", {"kind": "memory", "medium": media[n], "address": address}) for n in LINKS
    )


async def until_delivered(store: Store, message_id: str, timeout: float = 30.0) -> None:
    """Wait for the recipient's end-to-end ack of ``message_id`` as the store recorded it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = await store.message(bytes.fromhex(message_id))
        if stored is not None and stored.e2e_acked_at is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"message {message_id} was not delivered in time")


async def play(folder: Path) -> Played:
    media = {name: medium_name() for name in LINKS}
    staff_id = Identity.generate("Beredskabsstaben", "staff")
    care_id = Identity.generate("Plejecenter Lindely", "care-home")
    for name in ("staff", "care"):
        (folder / name).mkdir()
    staff_config = hub_config(
        folder / "staff", "staff", "", role=NodeRole.STAFF, links=_links(media, "staff"),
        peers=(PeerConfig(care_id.node_id, care_id.name, dict.fromkeys(LINKS, "care")),),
        default_route=(care_id.node_id,),
    )  # fmt: skip
    care_config = hub_config(
        folder / "care", "care", "", role=NodeRole.CARE_HOME, links=_links(media, "care"),
        peers=(PeerConfig(staff_id.node_id, staff_id.name, dict.fromkeys(LINKS, "staff")),),
        default_route=(staff_id.node_id,),
    )  # fmt: skip
    options = ConsoleOptions(tick_interval=0.1)
    started = time.time() - 1
    async with running(staff_config, staff_id) as staff_hub, running(care_config, care_id) as care_hub:
        staff_hub.roster.add(care_id.card)
        care_hub.roster.add(staff_id.card)
        async with serve(staff_hub, options) as staff, serve(care_hub, options) as care:
            to = care_id.node_id
            first = await staff.console.send(Kind.TEXT, to, INJECT, author="leder", status=Status.EXERCISE)
            inject_at = time.time()
            await eventually(lambda: any(m["id"] == first for m in care.console.messages))
            await care.console.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")
            await care.console.confirm_read(first, author="lindely", by="Nattevagt Birgit")
            await eventually(lambda: first in staff.console.outbox.receipts, timeout=30)

            request = await staff.console.start_rollcall("Meld status", 30, [], author="leder")
            await eventually(lambda: care.console.open_rollcall() is not None, timeout=30)
            await care.console.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")
            await eventually(lambda: staff.console.board_rows()[0]["rollcall"] == "answered", timeout=30)

            MemoryMedium.named(media["memory"]).unplug("staff")
            outage_at = time.time()
            second = await staff.console.send(Kind.TEXT, to, "Vandtrykket falder", author="leder",
                                              priority=Priority.URGENT, status=Status.EXERCISE)  # fmt: skip
            await until_delivered(staff_hub.store, second)
            MemoryMedium.named(media["backup"]).unplug("staff")
            third = await staff.console.send(Kind.TEXT, to, "Kan I modtage evakuerede?", author="leder",
                                             status=Status.EXERCISE)  # fmt: skip
            real = await staff.console.send(Kind.TEXT, to, "Ikke en del af øvelsen", author="leder")
            del request, real
            await staff_hub.store.flush()
            await care_hub.store.flush()
            ended = time.time() + 1
            exercise = ExerciseFacts(
                "ov-1", "Strømsvigt i distrikt Syd", started, ended, (to.hex(),),
                Targets(rollcall_answer=600, first_status=300, delivery=60, read_receipt=900,
                        satellite_credits=10, lora_airtime=60),
                injects=(InjectSent(INJECT, "message", inject_at, (to.hex(),)),),
                outages=(Outage("memory", None, outage_at, None),),
                notes=(Note(inject_at + 2, "observatør Jensen", "Nattevagten fandt tabletten hurtigt."),),
            )  # fmt: skip
            hub_facts = HubFacts(
                "Beredskabsstaben", folder / "staff" / "store.db", folder / "staff" / "console.db",
                {care_id.node_id.hex(): care_id.name}, dict.fromkeys(LINKS, "memory"), {},
            )  # fmt: skip
            report = collect(exercise, hub_facts, now=time.time())
            files = write_report(report, folder / "rapport")
            return Played(folder, folder / "staff", care_id.name, to.hex(), started, [first, second, third],
                         report, files)  # fmt: skip


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Played:
    """Played once per module (the hubs are closed again); the tests read the files it left."""
    return asyncio.run(play(tmp_path_factory.mktemp("exercise")))
