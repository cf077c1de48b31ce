"""The exercise runner on a real engine and a manual clock: injects at their time, pause shifts the rest,
the journal records it all, and every frame the exercise makes is marked Exercise."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from hub.core.at_rest import KEY_FOLDER, DataKeys, Retention
from hub.core.clock import ManualClock
from hub.core.errors import ConfigError, UsageError
from hub.core.frame import BROADCAST, Kind, Status, decode_frame
from hub.core.identity import Identity
from hub.core.kinds import decode_payload
from hub.exercise.entries import State
from hub.exercise.record import ExerciseRecord
from hub.exercise.runner import ExerciseRunner
from hub.relay.hub import Hub
from hub.relay.roster import Role
from hub.relay.settings import PeerConfig
from hub.relay.store_at_rest import FrameVault
from hub.service.assembly import open_hub
from tests.inproc import hub_config, medium_name

ZONE = ZoneInfo("Europe/Copenhagen")
STAFF = Identity.generate("Kommune", "staff")
HOME = Identity.generate("Solbakken", "care-home")
OTHER = Identity.generate("Birkely", "care-home")

SCENARIO = """
name = "Strømsvigt"
duration = "2h"
[participants]
groups = ["plejehjem"]
[[injects]]
at = "0m"
kind = "message"
text = "Strømmen er gået i hele distrikt Syd"
[[injects]]
at = "10m"
kind = "rollcall"
text = "Kører nødstrømmen?"
deadline = "15m"
nodes = ["Solbakken"]
[[injects]]
at = "20m"
kind = "outage"
hub = "Solbakken"
link = "memory"
duration = "30m"
[[injects]]
at = "40m"
kind = "message"
text = "Brændstof kommer kl. 14"
priority = "urgent"
"""


@contextlib.asynccontextmanager
async def coordinator(tmp_path: Path) -> AsyncIterator[tuple[Hub, ExerciseRunner, ManualClock]]:
    """A staff hub (not running: what it sends stays queued in its store) with two care homes in the
    group "plejehjem", and a runner over a journal in its data folder."""
    clock = ManualClock(1_800_000_000)
    medium = medium_name()
    peers = tuple(PeerConfig(i.node_id, i.name, {"memory": i.name}, ("plejehjem",)) for i in (HOME, OTHER))
    config = hub_config(
        tmp_path, "kommune", medium, role=Role.STAFF, peers=peers, default_route=(HOME.node_id,)
    )
    async with open_hub(config, STAFF, clock) as hub:
        hub.roster.add(HOME.card)
        hub.roster.add(OTHER.card)
        record = await ExerciseRecord.open(tmp_path / "exercises.db", clock)
        try:
            yield hub, ExerciseRunner(hub, record, ZONE), clock
        finally:
            await record.aclose()


async def frames(hub: Hub, ids: list[str]) -> list[tuple[Kind, Status, bytes]]:
    out = []
    for message_id in ids:
        stored = await hub.store.message(bytes.fromhex(message_id))
        assert stored is not None
        frame = decode_frame(stored.wire)
        out.append((frame.kind, frame.status, frame.recipient))
    return out


async def test_injects_go_out_at_their_time_marked_exercise_and_are_journaled(tmp_path: Path) -> None:
    async with coordinator(tmp_path) as (hub, runner, clock):
        exercise = await runner.start(SCENARIO, by="hansen")
        assert hub.exercise.active is not None and hub.exercise.active.id == exercise.id
        (first,) = await runner.record.injects(exercise.id)  # the 0m inject went out at the start
        assert sorted(first.recipients) == sorted([HOME.node_id.hex(), OTHER.node_id.hex()])
        assert {f[:2] for f in await frames(hub, list(first.message_ids))} == {(Kind.TEXT, Status.EXERCISE)}

        clock.advance(9 * 60)
        assert await runner.step() == 0
        clock.advance(60)
        assert await runner.step() == 1  # the roll-call, to Solbakken only
        clock.advance(10 * 60)
        assert await runner.step() == 1  # the outage: Solbakken's memory link down, here too
        assert hub.links.state("memory", HOME.node_id).label == "down"
        assert hub.links.state("memory", OTHER.node_id).label == "up"

        await runner.pause(by="hansen")
        clock.advance(30 * 60)  # 20 min past the last inject's time, but paused: nothing goes
        assert await runner.step() == 0
        await runner.resume(by="hansen")
        assert await runner.step() == 0  # the rest moved 30 min later: due at 70 min now
        clock.advance(20 * 60)
        assert await runner.step() == 1

        ended = await runner.end(by="hansen")
        assert ended.state == State.ENDED and hub.exercise.active is None
        assert hub.links.state("memory", HOME.node_id).label == "up"  # the end lifted the outage

        injects = await runner.record.injects(exercise.id)
        assert [i.number for i in injects] == [1, 2, 3, 4]
        rollcall = injects[1]
        assert rollcall.recipients == (HOME.node_id.hex(),)
        assert await frames(hub, list(rollcall.message_ids)) == [
            (Kind.ROLLCALL, Status.EXERCISE, HOME.node_id)
        ]
        (outage,) = await runner.record.outages(exercise.id)
        assert (outage.hub, outage.link, outage.ends - outage.starts) == ("Solbakken", "memory", 30 * 60)
        assert injects[2].text == f"Simuleret udfald: memory hos Solbakken til kl. {local_clock(outage.ends)}"
        assert outage.lifted is None  # it had run its course (20-50 min) before the end
        everything = [i for x in injects for i in x.message_ids]
        assert {status for _, status, _ in await frames(hub, everything)} == {Status.EXERCISE}


async def test_an_outage_shows_its_end_as_the_local_clock_time(tmp_path: Path) -> None:
    async with coordinator(tmp_path) as (_, runner, clock):
        exercise = await runner.start(SCENARIO, by="hansen")
        ends = exercise.started + 50 * 60  # at 20m for 30m
        (outage,) = [u for u in runner.upcoming() if u["kind"] == "outage"]
        assert outage["text"] == f"Simuleret udfald: memory hos Solbakken til kl. {local_clock(ends)}"
        await runner.pause(by="hansen")
        clock.advance(7 * 60)
        await runner.resume(by="hansen")  # the pause moves the end too
        (outage,) = [u for u in runner.upcoming() if u["kind"] == "outage"]
        assert outage["text"].endswith(f"til kl. {local_clock(ends + 7 * 60)}")


def local_clock(unix: float) -> str:
    return datetime.fromtimestamp(unix, ZONE).strftime("%H:%M")


async def test_the_exercise_ends_by_itself_when_its_time_is_over(tmp_path: Path) -> None:
    async with coordinator(tmp_path) as (hub, runner, clock):
        exercise = await runner.start(SCENARIO, by="hansen")
        clock.advance(2 * 3600)
        await runner.step()
        assert runner.current is None and hub.exercise.active is None
        stored = await runner.record.exercise(exercise.id)
        assert stored is not None and stored.state == State.ENDED and stored.phases[-1].author == "hub"


async def test_a_bad_scenario_or_name_starts_nothing(tmp_path: Path) -> None:
    async with coordinator(tmp_path) as (hub, runner, _):
        with pytest.raises(ConfigError, match="duration"):
            await runner.start('name = "x"', by="hansen")
        with pytest.raises(UsageError, match="ingen node hedder 'Ukendt'"):
            await runner.start(SCENARIO.replace('hub = "Solbakken"', 'hub = "Ukendt"'), by="hansen")
        with pytest.raises(UsageError, match="ingen medlemmer"):
            await runner.start(SCENARIO.replace('["plejehjem"]', '["botilbud"]'), by="hansen")
        assert await runner.record.exercises() == [] and hub.exercise.active is None
        await runner.start(SCENARIO, by="hansen")
        with pytest.raises(UsageError, match="afslut den først"):
            await runner.start(SCENARIO, by="hansen")


async def test_a_restarted_coordinator_picks_up_where_it_was(tmp_path: Path) -> None:
    async with coordinator(tmp_path) as (hub, runner, clock):
        exercise = await runner.start(SCENARIO, by="hansen")
        clock.advance(15 * 60)
        await runner.step()
        await runner.pause(by="hansen")
        again = ExerciseRunner(hub, runner.record, ZONE)
        await again.restore()
        assert again.current is not None and again.current.id == exercise.id
        clock.advance(60 * 60)
        assert await again.step() == 0  # still paused
        await again.resume(by="hansen")
        clock.advance(5 * 60)  # 20 min of scenario time have passed: the outage is due
        assert await again.step() == 1
        assert [i.number for i in await again.record.injects(exercise.id)] == [1, 2, 3]


async def test_the_coordinator_asks_every_hub_for_its_own_account(tmp_path: Path) -> None:
    async with coordinator(tmp_path) as (hub, runner, _):
        exercise = await runner.start(SCENARIO, by="hansen")
        assert await runner.ask_for_summaries() == exercise.id
        await runner.end(by="hansen")
        assert await runner.ask_for_summaries(exercise.id) == exercise.id  # the one just over too
        with pytest.raises(UsageError, match="ingen øvelse"):
            await runner.ask_for_summaries("ffffffff")
        await hub.store.flush()
        vault = FrameVault(DataKeys(hub.config.data_dir / KEY_FOLDER), Retention())
        with contextlib.closing(sqlite3.connect(hub.config.data_dir / "store.db")) as db:
            rows = db.execute(
                "SELECT id, wire, key_id FROM messages WHERE kind = ? ORDER BY accepted_at, rowid",
                (int(Kind.EXERCISE_CONTROL),),
            ).fetchall()
        actions = []
        for message_id, stored, key_id in rows:
            wire = vault.open(bytes(message_id), key_id, bytes(stored))
            assert wire is not None
            frame = decode_frame(wire)
            body = decode_payload(Kind.EXERCISE_CONTROL, frame.payload)
            assert isinstance(body, dict) and body["exercise"] == exercise.id
            assert frame.status is Status.EXERCISE and frame.recipient == BROADCAST
            actions.append(body["action"])
        assert actions == ["start", "summary", "end", "summary"]
