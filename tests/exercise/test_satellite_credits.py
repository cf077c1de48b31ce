"""Satellite credits and exercises, on two real engines whose only link is satellite: the coordinator's hub
has an Iridium 9603 (the simulator on a real pty) and the care home the provider's webhook (the simulated
provider cloud between them).

By default an exercise's frames never spend credit: they wait, the link's refusals go on the exercise's
account, and the after-action report says so, while a real urgent message meanwhile goes out over the
satellite. A scenario with ``allow_satellite = true`` lets its urgent frames use the link, and the credits
they cost are metered to the exercise: the report shows exactly what the provider billed for the frames
marked Exercise that the modem sent."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from hub.core.at_rest import KEY_FOLDER, DataKeys, Retention
from hub.core.clock import SystemClock
from hub.core.frame import Kind, Priority, Status, decode_frame
from hub.core.identity import Identity
from hub.exercise.record import ExerciseRecord
from hub.exercise.report import ReportFiles, write_report
from hub.exercise.report.collect import HubFacts, collect
from hub.exercise.report.from_record import EXERCISES_DB, exercise_facts
from hub.exercise.report.model import ReportInput, Usage
from hub.exercise.runner import ExerciseRunner
from hub.relay.exercise_usage import USAGE_FILE
from hub.relay.hub import Hub
from hub.relay.roster import Role
from hub.relay.settings import LinkConfig, PeerConfig
from hub.relay.store_at_rest import FrameVault
from simulators.iridium_cloud import IridiumCloud, credits_for
from tests.inproc import eventually, hub_config, running
from tests.satellite_provider import Provider, provider

ZONE = ZoneInfo("Europe/Copenhagen")
IMEI = "300234010753371"
WAIT = 60.0
"""Seconds to wait for the link: generous, for a loaded 2-core machine."""

SCENARIO = """
name = "Satellitøvelse"
duration = "1h"
{allow}
[participants]
nodes = ["Plejehjemmet Solbakken"]

[targets]
satellite_credits = 40

[[injects]]
at = "0s"
kind = "message"
text = "Mobilnettet er nede; meld ind over satellit"
priority = "urgent"
"""


@dataclass
class Sky:
    staff: Hub
    home: Hub
    cloud: IridiumCloud
    runner: ExerciseRunner
    folder: Path

    def exercise_frames_billed(self) -> int:
        """Credits the provider billed for the MO messages marked Exercise that the modem sent."""
        return sum(credits_for(len(data)) for _, data in self.cloud.mo_log if _exercise(data))

    async def report(self, exercise: str) -> tuple[ReportInput, ReportFiles]:
        await self.staff.store.flush()
        self.staff.exercise.usage.save_if_changed()  # as the hub does each second
        facts, names = await exercise_facts(self.runner.record, exercise)
        data = self.folder / "staff"
        hub = HubFacts(
            self.staff.identity.name, data / "store.db", data / "console.db", names, {"sat": "satellite"},
            data / USAGE_FILE, self.staff.open_payload,
        )  # fmt: skip
        report = collect(facts, hub, now=time.time())
        return report, write_report(report, self.folder / f"rapport-{exercise}")


def _exercise(data: bytes) -> bool:
    return decode_frame(data).status is Status.EXERCISE


@contextlib.asynccontextmanager
async def sky(folder: Path) -> AsyncIterator[Sky]:
    async with provider(folder, IMEI, 1, seed=3) as satellite, _hubs(folder, satellite) as hubs:
        yield hubs


@contextlib.asynccontextmanager
async def _hubs(folder: Path, satellite: Provider) -> AsyncIterator[Sky]:
    cloud, modem_link, webhook_link = satellite.cloud, satellite.modem_link, satellite.webhook_link
    staff_id = Identity.generate("Beredskabsstaben", "staff")
    home_id = Identity.generate("Plejehjemmet Solbakken", "care-home")
    for name in ("staff", "home"):
        (folder / name).mkdir()
    staff_config = hub_config(
        folder / "staff", "staff", "", role=Role.STAFF, links=(LinkConfig("sat", "satellite", modem_link),),
        peers=(PeerConfig(home_id.node_id, home_id.name, {"sat": "cloud"}),),
        default_route=(home_id.node_id,),
    )  # fmt: skip
    home_config = hub_config(
        folder / "home", "home", "", role=Role.CARE_HOME,
        links=(LinkConfig("sat", "satellite", webhook_link),),
        peers=(PeerConfig(staff_id.node_id, staff_id.name, {"sat": IMEI}),),
        default_route=(staff_id.node_id,),
    )  # fmt: skip
    record = await ExerciseRecord.open(folder / "staff" / EXERCISES_DB, SystemClock())
    try:
        async with running(staff_config, staff_id) as staff, running(home_config, home_id) as home:
            cloud.webhook_url = home.links.transports["sat"].receiver.url  # type: ignore[attr-defined]
            staff.roster.add(home_id.card)
            home.roster.add(staff_id.card)
            yield Sky(staff, home, cloud, ExerciseRunner(staff, record, ZONE), folder)
    finally:
        await record.aclose()


async def unsent_frames(hub: Hub) -> dict[Status, int]:
    """By CAP status, the urgent frames this hub made that its store says were never handed to a link (a
    frame of lower priority waits for a free link, real or not)."""
    await hub.store.flush()
    vault = FrameVault(DataKeys(hub.config.data_dir / KEY_FOLDER), Retention())
    out: dict[Status, int] = {}
    with contextlib.closing(sqlite3.connect(hub.config.data_dir / "store.db")) as db:
        for message_id, stored, key_id in db.execute(
            "SELECT m.id, m.wire, m.key_id FROM messages m JOIN deliveries d ON d.message_row = m.row"
            " WHERE m.local = 1 AND d.attempts = 0"
        ).fetchall():
            wire = vault.open(bytes(message_id), key_id, bytes(stored))
            assert wire is not None
            frame = decode_frame(wire)
            if frame.priority >= Priority.URGENT:
                out[frame.status] = out.get(frame.status, 0) + 1
    return out


async def until_acknowledged(hub: Hub, message_id: str) -> None:
    deadline = time.monotonic() + WAIT
    while (stored := await hub.store.message(bytes.fromhex(message_id))) is None or not stored.e2e_acked_at:
        assert time.monotonic() < deadline, f"{message_id} was not acknowledged in time"
        await asyncio.sleep(0.05)


async def until_all_sent(hub: Hub) -> None:
    deadline = time.monotonic() + WAIT
    while (unsent := await unsent_frames(hub)) != {}:
        assert time.monotonic() < deadline, f"never handed to a link: {unsent}"
        await asyncio.sleep(0.2)


def satellite(report: ReportInput) -> Usage:
    (usage,) = [u for u in report.usage if u.link == "sat"]
    return usage


async def test_an_exercise_frame_is_refused_the_satellite_by_default_and_the_report_says_so(
    tmp_path: Path,
) -> None:
    async with sky(tmp_path) as world:
        exercise = await world.runner.start(SCENARIO.format(allow=""), by="leder")
        tally = world.staff.exercise.usage.tallies[exercise.id]
        # the start control and the urgent inject: real traffic of their priority would take the link
        await eventually(lambda: "sat" in tally and tally["sat"].refused == 2, WAIT)
        real = await world.staff.submit(Kind.TEXT, world.home.node_id, b"Rigtig: vandet stiger",
                                        priority=Priority.URGENT)  # fmt: skip
        await eventually(lambda: any(decode_frame(data).id == real for _, data in world.cloud.mo_log), WAIT)
        assert world.exercise_frames_billed() == 0 and tally["sat"].credits == 0
        report, files = await world.report(exercise.id)
        # what was refused is what waits unsent in the store: the frames marked Exercise, and only those
        unsent = await unsent_frames(world.staff)
        assert unsent == {Status.EXERCISE: 2}
        usage = satellite(report)
        assert (usage.refused, usage.credits) == (2, 0)
        page = files.html.read_text(encoding="utf-8")
        assert "2 af øvelsens rammer fik ikke lov at bruge" in page


async def test_a_scenario_that_allows_the_satellite_has_its_credits_metered_and_reported(
    tmp_path: Path,
) -> None:
    async with sky(tmp_path) as world:
        exercise = await world.runner.start(SCENARIO.format(allow="allow_satellite = true"), by="leder")
        # the start control, the inject and the end go out over the satellite, billed by the provider
        (inject,) = await world.runner.record.injects(exercise.id)
        await until_acknowledged(world.staff, inject.message_ids[0])  # its acknowledgements in the exercise
        await world.runner.end(by="leder")
        await eventually(lambda: sum(_exercise(data) for _, data in world.cloud.mo_log) >= 3, WAIT)
        tally = world.staff.exercise.usage.tallies[exercise.id]["sat"]
        await eventually(lambda: tally.credits == world.exercise_frames_billed(), WAIT)
        billed = world.exercise_frames_billed()
        assert billed >= 3 and tally.refused == 0
        await until_all_sent(world.staff)  # the store records a send once the link has taken it
        report, files = await world.report(exercise.id)
        assert satellite(report).credits == billed
        page = files.html.read_text(encoding="utf-8")
        assert "Satellitkreditter brugt (målt)" in page and "fik ikke lov at bruge" not in page
