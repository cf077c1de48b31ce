"""The exercise's own facts for the report, read from its journal (``hub.exercise.record``).

The targets come from the scenario text the exercise was started with, so the report measures against
what actually ran. An inject's own ``deadline`` is its target for the first status after it; without one
the scenario's ``first_status`` applies. A simulated outage ends where it was lifted, or at its planned
end.
"""

from __future__ import annotations

from collections.abc import Mapping

from hub.core.errors import UsageError
from hub.core.frame import Frame
from hub.core.identity import Identity
from hub.core.seal import Context, SealingKey
from hub.exercise import scenario
from hub.exercise.record import ExerciseRecord
from hub.exercise.report.collect import ExerciseFacts, HubFacts, InjectSent, Outage
from hub.exercise.report.model import Note, Targets
from hub.exercise.report.rollcalls import Opener
from hub.relay.exercise_usage import USAGE_FILE
from hub.relay.roster import Roster
from hub.relay.settings import RelaySettings

EXERCISES_DB = "exercises.db"
"""The journal's file in the hub's data folder."""
CONSOLE_DB = "console.db"
"""The console's database in the hub's data folder (``hub.console.service.CONSOLE_DB``)."""


def hub_facts(settings: RelaySettings, names: Mapping[str, str], open_payload: Opener) -> HubFacts:
    """What the report needs of the hub whose files it reads: its name, databases, links and key."""
    kinds = {link.name: link.kind for link in settings.links}
    console, usage = settings.data_dir / CONSOLE_DB, settings.data_dir / USAGE_FILE
    return HubFacts(settings.name, settings.store_path, console, dict(names), kinds, usage, open_payload)


def payload_opener(identity: Identity, roster: Roster) -> Opener:
    """Opens frames sealed to this hub as the running hub does (``Hub.open_payload``), for the CLI."""
    sealing = SealingKey(identity.sealing_private, identity.node_id)
    keys = {entry.node_id: entry.card.sealing_key for entry in roster}

    def open_payload(frame: Frame) -> bytes:
        return sealing.open(frame.payload, Context.of(frame), keys) if frame.sealed else frame.payload

    return open_payload


async def exercise_facts(record: ExerciseRecord, exercise_id: str) -> tuple[ExerciseFacts, dict[str, str]]:
    """The facts of exercise ``exercise_id`` and its participants' names by node id (hex)."""
    exercise = await record.exercise(exercise_id)
    if exercise is None:
        known = ", ".join(f"{e.id} ({e.name})" for e in await record.exercises()) or "ingen endnu"
        raise UsageError(f"ingen øvelse {exercise_id!r} i journalen; øvelser: {known}")
    planned = scenario.parse(exercise.scenario)
    deadlines = {inject.number: inject.deadline for inject in planned.injects}
    aims = planned.targets
    targets = Targets(
        aims.rollcall_answer, aims.first_status, aims.delivery, aims.read_receipt, aims.satellite_credits,
        aims.lora_airtime,
    )  # fmt: skip
    injects = tuple(
        InjectSent(
            sent.text, sent.kind, sent.sent, sent.recipients, deadlines.get(sent.number), sent.message_ids
        )
        for sent in await record.injects(exercise_id)
        if sent.kind != scenario.InjectKind.OUTAGE
    )
    names = {p.node: p.name for p in exercise.participants}
    by_name = {p.name: p.node for p in exercise.participants}
    outages = tuple(
        Outage(o.link, by_name.get(o.hub, o.hub), o.starts, o.lifted if o.lifted is not None else o.ends)
        for o in await record.outages(exercise_id)
    )
    notes = tuple(Note(n.time, n.author, n.text) for n in await record.notes(exercise_id))
    facts = ExerciseFacts(
        exercise.id, exercise.name, exercise.started, exercise.ended,
        tuple(p.node for p in exercise.participants), targets, injects, outages, notes,
    )  # fmt: skip
    return facts, names
