"""The telecom-collapse scenario: five real hubs lose the internet, the broker and parts of the mesh,
one care home is left with SINE and satellite, the staff hub's SINE radio goes mute, then everything
comes back.

The short run (one round of traffic per stage) is CI's proof of the product's promise; the soak runs
play five rounds per stage, and the same collapse with silent faults (packets vanish, the broker
acknowledges and delivers nothing), where nothing tells the hubs and they must notice by waiting.
All run the same ``drill`` harness that ``beredt simulate`` uses, with real ``beredt run``
processes, a real Mosquitto, the real meshtastic library against fake radios on a simulated mesh,
and the SINE and Iridium drivers against their simulators over ptys.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drill.runner import Drill
from drill.script import Scenario
from drill.stages import SILENT_STAGES, STAGES, Stage, StageResult, table
from hub.cli.simulate import LONG_ROUNDS


@pytest.fixture
async def drill(tmp_path: Path) -> AsyncIterator[Drill]:
    async with Drill(tmp_path / "drill") as world:
        yield world


def explain(drill: Drill, results: list[StageResult]) -> str:
    """The table, every problem and the hubs' last log lines, for a failing assertion."""
    lines = [table(results)]
    lines += [f"stage {r.stage.number}: {p}" for r in results for p in r.problems]
    for key, runner in drill.hubs.items():
        lines += [f"--- {key} ({runner.log_path})", runner.log_tail(25)]
    return "\n".join(lines)


async def play(drill: Drill, rounds: int, stages: tuple[Stage, ...] = STAGES) -> list[StageResult]:
    results = await Scenario(drill, rounds=rounds, log=print, stages=stages).run()
    print(table(results))
    assert [r.stage.number for r in results] == [s.number for s in stages]
    assert not [p for r in results for p in r.problems], explain(drill, results)
    return results


def assert_promises(drill: Drill, results: list[StageResult]) -> None:
    by_stage = {r.stage.number: r for r in results}
    for result in results:
        assert result.sent, f"stage {result.stage.number} sent nothing"
        assert result.duplicates == 0 and result.lost == 0, explain(drill, results)
        assert result.first_via == result.stage.expect, explain(drill, results)
    # Faults are seen within the budget at the staff hub, and the first sitrep after each fault
    # arrives over the next link in time.
    for number in (2, 3, 4, 5, 6):
        result = by_stage[number]
        assert result.detected is not None and result.detected <= 3.0, explain(drill, results)
        assert result.first_delivery is not None and result.first_delivery <= 5.0, explain(drill, results)
    # Routine notes wait while only metered and paid links are left, and arrive after the restore.
    for number in (3, 4, 5, 6):
        assert by_stage[number].links["(waiting)"] >= 2, explain(drill, results)
    # Only stage 5's life-safety call may buy satellite time; routine traffic never did.
    assert by_stage[5].satellite_credits > 0
    assert all(r.satellite_credits == 0 for r in results if r.stage.number < 5)
    assert by_stage[5].links["satellite"] + by_stage[5].links["sine"] >= 1
    # With the staff hub's SINE terminal mute, the mesh to the relay (and the relay's SINE) carries
    # what the staff hub sends home1 (only notes streamed just before the fault may still take SINE).
    assert by_stage[6].links["lora@relay"] >= 1, explain(drill, results)
    # Stage 4's watched care home is served through the relay hub; once every hub sees the internet
    # again after the restore, everything sent goes over it.
    assert by_stage[4].links["lora@relay"] >= 1
    restored = by_stage[7]
    after_heal = [s for s in restored.sent if s.id not in restored.before_heal]
    assert len(after_heal) >= 15 and restored.links["internet"] >= len(after_heal), explain(drill, results)


@pytest.mark.timeout(240)
async def test_telecom_collapse_short(drill: Drill) -> None:
    results = await play(drill, rounds=1)
    assert_promises(drill, results)


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_telecom_collapse_soak(drill: Drill) -> None:
    results = await play(drill, rounds=LONG_ROUNDS)
    assert_promises(drill, results)


@pytest.mark.soak
@pytest.mark.timeout(300)
async def test_telecom_collapse_with_silent_faults(drill: Drill) -> None:
    results = await play(drill, rounds=1, stages=SILENT_STAGES)
    assert_promises(drill, results)
