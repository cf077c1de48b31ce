"""What the exercise journal (``hub.exercise.record``) holds, as the runner, the console and the report
read it: an exercise with its participants and phases, each inject as sent, each simulated outage, and
the observers' notes. Plain values; times are Unix seconds."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class State(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    ENDED = "ended"


STATE_DA = {State.RUNNING: "i gang", State.PAUSED: "på pause", State.ENDED: "afsluttet"}
CHANGE_DA = {State.RUNNING: "fortsætte", State.PAUSED: "sættes på pause", State.ENDED: "afsluttes"}


@dataclass(frozen=True, slots=True)
class Participant:
    node: str
    """Node id, hex."""
    name: str


@dataclass(frozen=True, slots=True)
class Phase:
    """A change of state: the start (running), each pause and resume, and the end."""

    time: int
    state: State
    author: str


@dataclass(frozen=True, slots=True)
class Exercise:
    id: str
    name: str
    scenario: str
    """The scenario's TOML text as started (``hub.exercise.scenario.parse`` reads it)."""
    coordinator: str
    started: int
    planned_end: int
    ended: int | None
    participants: tuple[Participant, ...]
    phases: tuple[Phase, ...]

    @property
    def state(self) -> State:
        return self.phases[-1].state if self.phases else State.RUNNING

    def paused_seconds(self, now: float) -> int:
        """How long the exercise has been paused in all, up to ``now`` (or its end)."""
        total = 0
        since: int | None = None
        for phase in self.phases:
            paused = phase.state == State.PAUSED
            if paused and since is None:
                since = phase.time
            elif not paused and since is not None:
                total, since = total + phase.time - since, None
        return total + (int(now) - since if since is not None else 0)


@dataclass(frozen=True, slots=True)
class InjectSent:
    number: int
    kind: str
    text: str
    due: int
    sent: int
    message_ids: tuple[str, ...]
    recipients: tuple[str, ...]
    """Node ids (hex) it went to; empty for an outage."""


@dataclass(frozen=True, slots=True)
class OutageApplied:
    number: int
    hub: str
    link: str
    starts: int
    ends: int
    lifted: int | None
    """When it was undone early (by the end of the exercise); None if it ran to ``ends``."""


@dataclass(frozen=True, slots=True)
class Note:
    time: int
    author: str
    text: str
