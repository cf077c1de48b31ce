"""A sample exercise played for real between in-process hubs, and its after-action report.

``python -m tests.exercise.report.sample OUT`` plays "Strømsvigt i distrikt Syd": the staff hub and three
institutions, each reachable over two in-memory links named ``internet`` and ``lora`` (the report labels
them as those kinds; the memory links carry the frames as a real link would, and ``lora`` is as slow as a
LoRa radio, so the report's metered airtime is that medium's time on air for the exercise's frames). Every
message, status, receipt, roll-call and link change is real: sent, stored, acknowledged and recorded by
the hubs and consoles; every hub takes part through the signed start and end controls, so each
institution reports its own links at the end. Only the hours between the injects are skipped, by moving
the shared wall clock forward (the hubs' timers run on the monotonic clock, so nothing else notices). The
report goes to OUT; the pages shown in docs/exercises.md were rendered from it with ``pdftoppm -r 90``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

from hub.console.options import ConsoleOptions
from hub.console.rollcall import TargetState
from hub.core.clock import SystemClock
from hub.core.frame import Kind, Priority, Status
from hub.core.identity import Identity
from hub.exercise.entries import Participant
from hub.exercise.record import ExerciseRecord
from hub.exercise.report import ReportFiles, write_report
from hub.exercise.report.collect import HubFacts, collect
from hub.exercise.report.from_record import EXERCISES_DB, exercise_facts
from hub.relay.exercise_usage import USAGE_FILE
from hub.relay.health import LinkState
from hub.relay.hub import Hub
from hub.relay.roster import Role as NodeRole
from hub.relay.settings import LinkConfig, PeerConfig
from hub.service.assembly import open_hub
from tests.console.conftest import Site, serve
from tests.inproc import eventually, hub_config, medium_name
from transports.memory import MemoryMedium

LINKS = ("internet", "lora")
LORA_RATE = 134.0
"""Bytes per second on the ``lora`` medium: about Meshtastic's LONG_FAST (1.07 kbit/s)."""
HOMES = ("Plejecenter Solbakken", "Plejecenter Lindely", "Bofællesskabet Nordly")
SCENARIO = """\
name = "Strømsvigt i distrikt Syd"
duration = "3h"

[participants]
nodes = ["Plejecenter Solbakken", "Plejecenter Lindely", "Bofællesskabet Nordly"]

[targets]
rollcall_answer = "10m"
first_status = "15m"
delivery = "2m"
read_receipt = "20m"
lora_airtime = "1m"

[[injects]]
at = "0m"
kind = "message"
text = "Strømmen er gået i hele distrikt Syd. Meld status om nødstrøm."
deadline = "15m"

[[injects]]
at = "30m"
kind = "rollcall"
text = "Hvordan er situationen? Har I nødstrøm og varme?"
deadline = "10m"

[[injects]]
at = "1h"
kind = "outage"
hub = "Bofællesskabet Nordly"
link = "internet"
duration = "1h"

[[injects]]
at = "1h10m"
kind = "message"
text = "Vandtrykket falder i distrikt Syd: begræns forbruget."
deadline = "15m"
"""


@contextlib.asynccontextmanager
async def _hub(folder: Path, identity: Identity, peers: list[Identity], clock: SystemClock,
               media: dict[str, str]) -> AsyncIterator[Hub]:  # fmt: skip
    links = tuple(LinkConfig(n, "memory", {"kind": "memory", "medium": media[n], "address": identity.name})
                  for n in LINKS)  # fmt: skip
    role = NodeRole.STAFF if identity.role == "staff" else NodeRole.CARE_HOME
    config = hub_config(
        folder, identity.name, "", role=role, links=links,
        peers=tuple(PeerConfig(p.node_id, p.name, dict.fromkeys(LINKS, p.name)) for p in peers),
    )  # fmt: skip
    async with open_hub(config, identity, clock) as hub:
        task = asyncio.create_task(hub.run())
        await hub.ready.wait()
        for peer in peers:
            hub.roster.add(peer.card)
        try:
            yield hub
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def summaries(hub: Hub) -> int:
    """The institutions whose account of their links (EXERCISE_SUMMARY) the hub has stored."""
    with contextlib.closing(sqlite3.connect(hub.config.data_dir / "store.db")) as db:
        query = "SELECT count(DISTINCT sender) FROM messages WHERE kind = ? AND local = 0"
        (count,) = db.execute(query, (int(Kind.EXERCISE_SUMMARY),)).fetchone()
    return int(count)


def _nordly_is(staff: Site, request: str, home: Site, state: TargetState) -> bool:
    """Whether ``home``'s part in the staff's roll-call ``request`` has reached ``state``."""
    call = staff.console.rollcalls.get(request)
    return call is not None and call.targets[home.hub.identity.node_id.hex()].state is state


def _received(home: Site, message_id: str) -> bool:
    return any(m["id"] == message_id for m in home.console.messages)


def _asked(home: Site) -> bool:
    return home.console.open_rollcall() is not None


def _delivered(staff: Site, message_id: str) -> bool:
    sent = staff.console.outbox.get(message_id)
    return sent is not None and sent.delivered_at is not None


async def play(folder: Path) -> ReportFiles:
    clock = SystemClock()
    media = {name: medium_name() for name in LINKS}
    MemoryMedium.named(media["lora"], rate=LORA_RATE)
    staff_id = Identity.generate("Beredskabsstaben", "staff")
    home_ids = [Identity.generate(name, "care-home") for name in HOMES]
    for identity in (staff_id, *home_ids):
        (folder / identity.name).mkdir(parents=True)
    options = ConsoleOptions(tick_interval=0.1, resend_window=600, clock=clock)
    record = await ExerciseRecord.open(folder / staff_id.name / EXERCISES_DB, clock)

    def skip(minutes: float) -> None:
        clock.offset += minutes * 60

    async with contextlib.AsyncExitStack() as stack:
        staff_hub = await stack.enter_async_context(
            _hub(folder / staff_id.name, staff_id, home_ids, clock, media)
        )
        staff = await stack.enter_async_context(serve(staff_hub, options))
        homes: list[Site] = []
        for identity in home_ids:
            hub = await stack.enter_async_context(
                _hub(folder / identity.name, identity, [staff_id], clock, media)
            )
            homes.append(await stack.enter_async_context(serve(hub, options)))
        solbakken, lindely, nordly = homes
        health = staff_hub.links.health
        await eventually(lambda: all(health.state(n, i.node_id.hex()) is LinkState.UP
                                     for n in LINKS for i in home_ids), 60)  # fmt: skip
        skip(0.5)  # the links' first health changes at start-up are not the exercise's
        exercise = await record.begin(
            "Strømsvigt i distrikt Syd", SCENARIO, [Participant(i.node_id.hex(), i.name) for i in home_ids],
            coordinator="vagtleder", planned_end=clock.time() + 3 * 3600,
        )  # fmt: skip
        # every hub takes part, as the signed start control makes it: the links meter the exercise, and
        # each institution reports its own links at the end
        start = {
            "exercise": exercise.id,
            "action": "start",
            "name": exercise.name,
            "until": int(clock.time()) + 3 * 3600,
        }
        await staff_hub.send_exercise_control(start)
        for home in homes:
            await eventually(home.hub.exercise.taking_part, 30)

        async def inject(number: int, text: str) -> list[str]:
            ids = [await staff.console.send(Kind.TEXT, i.node_id, text, author="vagtleder",
                                            priority=Priority.URGENT, status=Status.EXERCISE)
                   for i in home_ids]  # fmt: skip
            to = [i.node_id.hex() for i in home_ids]
            await record.inject_sent(exercise.id, number=number, kind="message", text=text,
                                     due=clock.time(), message_ids=ids, recipients=to)  # fmt: skip
            for home, message_id in zip(homes, ids, strict=True):  # through before the clock moves on
                await eventually(partial(_received, home, message_id), 30)
                await eventually(partial(_delivered, staff, message_id), 30)
            return ids

        async def note(author: str, text: str) -> None:
            await record.note(exercise.id, author=author, text=text)

        def heard_from(home: Site) -> int:
            node = home.hub.identity.node_id.hex()
            return sum(m["from"] == node and m["kind"] == "status" for m in staff.console.messages)

        async def status(home: Site, facility: str) -> None:
            """Send a status (marked Exercise: the home takes part) and wait until the staff's console has
            it (before the clock moves on)."""
            before = heard_from(home)
            await home.console.quick_status({"facility": facility}, Priority.NORMAL, author="nattevagt")
            await eventually(lambda: heard_from(home) > before, 30)

        async def read(home: Site, message_id: str) -> None:
            await home.console.confirm_read(message_id, author="nattevagt", by="Nattevagten")
            await eventually(lambda: message_id in staff.console.outbox.receipts, 30)

        first = await inject(1, "ØVELSE: Strømmen er gået i hele distrikt Syd. Meld status om nødstrøm.")
        skip(3)
        await status(solbakken, "Compromised")
        await read(solbakken, first[0])
        skip(6)
        await status(lindely, "Compromised")
        skip(5)
        await read(lindely, first[1])
        await note("Observatør Jensen", "Nordly har ingen på vagt ved tabletten; staben ringede forgæves.")
        skip(12)
        await status(nordly, "Normal")
        skip(4)

        # the staff hub takes part: its console's roll-call is the exercise's, answered by exercise statuses
        asked = await staff.console.start_rollcall("Hvordan er situationen? Har I nødstrøm og varme?", 10,
                                                   [], author="vagtleder")  # fmt: skip
        for home in homes:
            await eventually(partial(_asked, home), 30)
        skip(2)
        await status(solbakken, "Compromised")
        skip(6)
        await status(lindely, "Evacuating")
        await note(
            "Observatør Hansen", "Lindely evakuerer én fløj: nødstrømmen startede ikke; tekniker sendt."
        )
        skip(3)  # past the deadline: the staff hub asks Nordly again over LoRa, then sends someone
        await eventually(lambda: _nordly_is(staff, asked, nordly, TargetState.OVERDUE), 30)
        skip(11)
        await eventually(lambda: _nordly_is(staff, asked, nordly, TargetState.ESCALATED), 30)

        skip(20)
        MemoryMedium.named(media["internet"]).unplug(nordly.hub.identity.name)
        await record.outage_applied(exercise.id, number=3, hub=nordly.hub.identity.name, link="internet",
                                    starts=clock.time(), ends=clock.time() + 3600)  # fmt: skip
        skip(10)
        second = await inject(4, "ØVELSE: Vandtrykket falder i distrikt Syd: begræns forbruget.")
        skip(4)
        await status(solbakken, "Compromised")
        await read(solbakken, second[0])
        skip(9)
        await status(nordly, "Compromised")
        await read(nordly, second[2])
        await note("Observatør Jensen", "Nordly svarede over LoRa, efter at internettet var faldet ud.")
        skip(20)
        await status(lindely, "Compromised")
        await record.end(exercise.id, by="vagtleder")
        await staff_hub.send_exercise_control({"exercise": exercise.id, "action": "end"})
        await eventually(lambda: summaries(staff_hub) == len(homes), 30)
        await staff_hub.store.flush()
        facts, participants = await exercise_facts(record, exercise.id)
        names = {entry.node_id.hex(): entry.name for entry in staff_hub.roster} | participants  # as the CLI
        await record.aclose()
        staff_dir = folder / staff_id.name
        staff_hub.exercise.usage.save_if_changed()  # as the hub does each second
        hub_facts = HubFacts(staff_id.name, staff_dir / "store.db", staff_dir / "console.db", names,
                             {"internet": "internet", "lora": "lora"}, staff_dir / USAGE_FILE,
                             staff_hub.open_payload)  # fmt: skip
        return write_report(collect(facts, hub_facts, now=clock.time()), folder / "rapport")


if __name__ == "__main__":
    files = asyncio.run(play(Path(sys.argv[1])))
    print(files.pdf, f"({time.process_time():.1f} s CPU)")
