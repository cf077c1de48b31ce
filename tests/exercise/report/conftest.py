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

from hub.console.options import ConsoleOptions
from hub.core.clock import SystemClock
from hub.core.frame import Kind, Priority, Status
from hub.core.identity import Identity
from hub.core.kinds import encode_payload
from hub.exercise.entries import Participant
from hub.exercise.record import ExerciseRecord
from hub.exercise.report import ReportFiles, write_report
from hub.exercise.report.collect import HubFacts, collect
from hub.exercise.report.from_record import EXERCISES_DB, exercise_facts
from hub.exercise.report.model import ReportInput
from hub.relay.exercise_usage import USAGE_FILE
from hub.relay.health import LinkState
from hub.relay.roster import Role as NodeRole
from hub.relay.settings import LinkConfig, PeerConfig
from hub.relay.store import Store
from tests.console.conftest import Site, serve
from tests.inproc import eventually, hub_config, medium_name, running
from transports.memory import MemoryMedium

LINKS = ("memory", "backup")
LINK_KINDS = {"memory": "internet", "backup": "lora"}
"""What the report calls them: ``backup`` is slow (``BACKUP_RATE``), as a radio is."""
BACKUP_RATE = 20_000.0
"""Bytes per second on the ``backup`` medium: every frame holds it for a few milliseconds."""
INJECT = "Strømmen er gået i hele distrikt Syd"
ROLLCALL_REQUEST = "0a1b2c3d"
SCENARIO = (Path(__file__).parent / "scenario.toml").read_text(encoding="utf-8")


@dataclass
class Played:
    folder: Path
    exercise_id: str
    staff_dir: Path
    care_name: str
    care_id: str
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


WAIT = 60.0
"""Seconds to wait for a message between the hubs: generous, for a loaded 2-core machine."""


def _statuses(site: Site) -> int:
    """The STATUS messages a console has received."""
    return sum(m["kind"] == "status" for m in site.console.messages)


def _asked(site: Site) -> object:
    """The request id of the roll-call open at an institution's console, if any."""
    call = site.console.open_rollcall()
    return None if call is None else call["body"]["request"]


async def play(folder: Path) -> Played:
    media = {name: medium_name() for name in LINKS}
    MemoryMedium.named(media["backup"], rate=BACKUP_RATE)  # a slow radio: its time on air is metered
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
    staff_id.save(folder / "staff" / "identity.key")  # for 'beredt exercise report' on this data folder
    record = await ExerciseRecord.open(folder / "staff" / EXERCISES_DB, SystemClock())
    async with running(staff_config, staff_id) as staff_hub, running(care_config, care_id) as care_hub:
        staff_hub.roster.add(care_id.card)
        staff_hub.roster.save()  # as 'beredt roster add' does: the report command reads it
        care_hub.roster.add(staff_id.card)
        async with serve(staff_hub, options) as staff, serve(care_hub, options) as care:
            to = care_id.node_id
            # both links up before the exercise begins: on a loaded machine a start-up probe can find the
            # care home not yet listening, and the first message would take the other link
            health = staff_hub.links.health
            await eventually(lambda: all(health.state(n, to.hex()) is LinkState.UP for n in LINKS), WAIT)
            await asyncio.sleep(0.5)  # the links' start-up changes are stamped before the exercise's start
            exercise = await record.begin(
                "Strømsvigt i distrikt Syd", SCENARIO, [Participant(to.hex(), care_id.name)],
                coordinator="leder", planned_end=time.time() + 3600,
            )  # fmt: skip
            # both hubs take part, as the start control makes them: what a person sends is the exercise's
            # unless they choose real
            start = {"exercise": exercise.id, "action": "start", "name": exercise.name,
                     "until": time.time() + 3600}  # fmt: skip
            for hub in (staff_hub, care_hub):
                hub.exercise.act(start, staff_id.node_id.hex())
            first = await staff.console.send(Kind.TEXT, to, INJECT, author="leder", status=Status.EXERCISE)
            await record.inject_sent(exercise.id, number=1, kind="message", text=INJECT, due=time.time(),
                                     message_ids=[first], recipients=[to.hex()])  # fmt: skip
            await eventually(lambda: any(m["id"] == first for m in care.console.messages), WAIT)
            await care.console.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")
            # at the staff before anything else happens: a status still under way would be counted below
            # as the answer to the inject's roll-call, and arrive over whichever link is left by then
            await eventually(lambda: _statuses(staff) == 1, WAIT)
            await care.console.confirm_read(first, author="lindely", by="Nattevagt Birgit")
            await eventually(lambda: first in staff.console.outbox.receipts, WAIT)
            await record.note(
                exercise.id, author="observatør Jensen", text="Nattevagten fandt tabletten hurtigt."
            )

            # the staff hub takes part: its console's roll-call is the exercise's, answered by an exercise
            # status (the care home answers an exercise roll-call so), and the report counts it
            drill = await staff.console.start_rollcall("Meld status", 30, [], author="leder")
            await eventually(lambda: care.console.open_rollcall() is not None, WAIT)
            await care.console.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")
            await eventually(lambda: _answered(staff, drill), WAIT)
            # a real roll-call meanwhile is real: answered by a real status, and not in the report
            real = await staff.console.start_rollcall("Reel: meld status", 30, [], author="leder",
                                                      status=Status.ACTUAL)  # fmt: skip
            await eventually(
                lambda: (care.console.open_rollcall() or {}).get("body", {}).get("request") == real, WAIT
            )
            await care.console.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely",
                                            cap_status=Status.ACTUAL)  # fmt: skip
            await eventually(lambda: _answered(staff, real), WAIT)

            # inject 2 as the exercise runner sends a roll-call: straight through the hub, marked Exercise
            asked = {
                "request": ROLLCALL_REQUEST,
                "question": "ØVELSE: Har I varme?",
                "deadline": int(time.time()) + 600,
            }
            rollcall = await staff_hub.submit(Kind.ROLLCALL, to, encode_payload(Kind.ROLLCALL, asked),
                                              status=Status.EXERCISE)  # fmt: skip
            await record.inject_sent(exercise.id, number=2, kind="rollcall", text="Har I varme?",
                                     due=time.time(), message_ids=[rollcall.hex()],
                                     recipients=[to.hex()])  # fmt: skip
            await eventually(
                lambda: (
                    (care.console.open_rollcall() or {}).get("body", {}).get("request") == ROLLCALL_REQUEST
                ),
                WAIT,
            )
            statuses = _statuses(staff)
            await care.console.quick_status({"facility": "Normal"}, Priority.NORMAL, author="lindely")
            await eventually(lambda: _statuses(staff) > statuses, WAIT)

            MemoryMedium.named(media["memory"]).unplug("staff")
            await record.outage_applied(exercise.id, number=3, hub=staff_id.name, link="memory",
                                        starts=time.time(), ends=time.time() + 1800)  # fmt: skip
            second = await staff.console.send(Kind.TEXT, to, "Vandtrykket falder", author="leder",
                                              priority=Priority.URGENT, status=Status.EXERCISE)  # fmt: skip
            await until_delivered(staff_hub.store, second)
            MemoryMedium.named(media["backup"]).unplug("staff")
            third = await staff.console.send(Kind.TEXT, to, "Kan I modtage evakuerede?", author="leder",
                                             status=Status.EXERCISE)  # fmt: skip
            await staff.console.send(Kind.TEXT, to, "Ikke en del af øvelsen", author="leder")
            await staff_hub.store.flush()
            staff_hub.exercise.usage.save_if_changed()  # as the hub does each second
            await record.end(exercise.id, by="leder")
            facts, participants = await exercise_facts(record, exercise.id)
            await record.aclose()
            hub_facts = HubFacts(
                "Beredskabsstaben", folder / "staff" / "store.db", folder / "staff" / "console.db",
                participants, LINK_KINDS, folder / "staff" / USAGE_FILE,
                staff_hub.open_payload,
            )  # fmt: skip
            report = collect(facts, hub_facts, now=time.time())
            files = write_report(report, folder / "rapport")
            sent = [first, second, third]
            return Played(folder, exercise.id, folder / "staff", care_id.name, to.hex(), sent, report, files)


@pytest.fixture(scope="package")
def played(tmp_path_factory: pytest.TempPathFactory) -> Played:
    """Played once for these tests (the hubs are closed again); they read the files it left."""
    return asyncio.run(play(tmp_path_factory.mktemp("exercise")))


def _answered(site: Site, request: str) -> bool:
    """The roll-call ``request`` is answered by every institution (or closed into the archive so)."""
    call = site.console.rollcalls.get(request)
    return call is None or call.done
