"""The roll-call board: who has answered "how are you?", who is late, and whom to send someone to.

Pure logic with an injected clock: no I/O, no sending. A coordinator starts a roll-call (a short request
id, a question, a deadline) to a set of institutions, each with its links in the order to try them. Per
institution the state machine below runs; ``tick()`` moves everything that is past its deadline and
returns the *decisions* for the hub to carry out and log: ``Resend`` over the next link with a fresh
window, and, once every link has been tried, ``Escalate`` ("no contact: send someone"). An answer is a
STATUS carrying the roll-call's request id; it is matched by that id alone, whichever link carried it
and however late, and a second copy of the same answer over another link changes nothing.

    state      event                     next state   decision
    pending    answer                    answered
    pending    deadline, links left      overdue      Resend(next link)
    pending    deadline, no links left   escalated    Escalate
    overdue    answer                    answered
    overdue    deadline, links left      overdue      Resend(next link)
    overdue    deadline, no links left   escalated    Escalate
    escalated  answer                    answered     (a late answer still counts; the board shows it)
    answered   anything                  answered     (duplicates over other links are ignored)

A roll-call is *finished* when every institution has answered, or when none is waiting any more (each
answered or escalated) and ``late_window`` has passed since its last deadline; the hub then closes it:
it leaves this board (which so holds only live roll-calls, however many were run) and stays in the
archive. An answer to a closed roll-call still updates the status board, just not the roll-call.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.core.clock import Clock


class TargetState(enum.StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    OVERDUE = "overdue"
    ESCALATED = "escalated"


_ALLOWED = {
    TargetState.PENDING: {TargetState.ANSWERED, TargetState.OVERDUE, TargetState.ESCALATED},
    TargetState.OVERDUE: {TargetState.ANSWERED, TargetState.OVERDUE, TargetState.ESCALATED},
    TargetState.ESCALATED: {TargetState.ANSWERED},
    TargetState.ANSWERED: set(),
}


@dataclass(frozen=True, slots=True)
class Resend:
    """Send the roll-call again to ``institution`` over ``link`` (attempt number ``attempt``, from 1)."""

    request: str
    institution: str
    link: str
    attempt: int
    question: str
    deadline: int


@dataclass(frozen=True, slots=True)
class Escalate:
    """Every link has been tried without an answer: someone must go there."""

    request: str
    institution: str
    tried: tuple[str, ...]


Decision = Resend | Escalate


@dataclass(frozen=True, slots=True)
class Answer:
    """A matched answer; ``late`` if it came after the first deadline."""

    request: str
    institution: str
    link: str
    at: float
    late: bool
    body: Mapping[str, Any]


@dataclass(slots=True)
class Attempt:
    link: str
    at: float


@dataclass(slots=True)
class Target:
    institution: str
    links: tuple[str, ...]
    deadline: float
    state: TargetState = TargetState.PENDING
    attempts: list[Attempt] = field(default_factory=list)
    answer: Answer | None = None

    def move(self, new: TargetState) -> None:
        if new not in _ALLOWED[self.state]:
            raise ValueError(f"{self.institution}: a roll-call target cannot go from {self.state} to {new}")
        self.state = new


@dataclass(slots=True)
class RollCall:
    request: str
    question: str
    started: float
    deadline: float
    targets: dict[str, Target]
    exercise: bool = False
    """Sent marked Exercise: only statuses marked Exercise answer it, and it stays off the real board."""

    @property
    def done(self) -> bool:
        return all(t.state is TargetState.ANSWERED for t in self.targets.values())

    def finished(self, now: float, late_window: float) -> bool:
        """Done, or nobody is waiting any more and a late answer is no longer expected."""
        if self.done:
            return True
        waiting = (TargetState.PENDING, TargetState.OVERDUE)
        if any(t.state in waiting for t in self.targets.values()):
            return False
        return now >= max(t.deadline for t in self.targets.values()) + late_window


class RollCallBoard:
    """All roll-calls of this hub; ``resend_window`` is how long each resend waits before the next step."""

    def __init__(self, clock: Clock, *, resend_window: float = 600.0) -> None:
        if resend_window <= 0:
            raise ValueError("resend_window: must be positive")
        self._clock = clock
        self.resend_window = resend_window
        self._calls: dict[str, RollCall] = {}

    def new_request_id(self) -> str:
        while (request := secrets.token_hex(4)) in self._calls:
            pass
        return request

    def start(
        self,
        request: str,
        question: str,
        deadline: float,
        institutions: Mapping[str, Sequence[str]],
        *,
        exercise: bool = False,
    ) -> RollCall:
        """Register a roll-call just sent to each institution over the first of its links."""
        if request in self._calls:
            raise ValueError(f"request: statusrunden {request} findes allerede")
        if not institutions:
            raise ValueError("institutions: en statusrunde skal have mindst én institution")
        now = self._clock.time()
        if deadline <= now:
            raise ValueError("deadline: skal ligge i fremtiden")
        targets = {}
        for institution, links in institutions.items():
            if not links:
                raise ValueError(f"institutions.{institution}: ingen forbindelse at nå den over")
            target = Target(institution, tuple(links), deadline)
            target.attempts.append(Attempt(links[0], now))
            targets[institution] = target
        call = RollCall(request, question, now, deadline, targets, exercise)
        self._calls[request] = call
        return call

    def answer(
        self, institution: str, request: str, *, link: str, body: Mapping[str, Any] | None = None
    ) -> Answer | None:
        """Record an answer; None if it answers no roll-call of ours, is not addressed to that sender, or is a
        duplicate of one already recorded (the same status over a second link)."""
        call = self._calls.get(request)
        target = call.targets.get(institution) if call else None
        if call is None or target is None or target.state is TargetState.ANSWERED:
            return None
        now = self._clock.time()
        answer = Answer(request, institution, link, now, now >= call.deadline, dict(body or {}))
        target.move(TargetState.ANSWERED)
        target.answer = answer
        return answer

    def tick(self) -> list[Decision]:
        """Advance every target past its deadline; return what the hub must do, in a stable order."""
        now = self._clock.time()
        decisions: list[Decision] = []
        for call in self._calls.values():
            for target in call.targets.values():
                if target.state not in (TargetState.PENDING, TargetState.OVERDUE) or now < target.deadline:
                    continue
                tried = len(target.attempts)
                if tried < len(target.links):
                    link = target.links[tried]
                    target.move(TargetState.OVERDUE)
                    target.attempts.append(Attempt(link, now))
                    target.deadline = now + self.resend_window
                    decisions.append(
                        Resend(
                            call.request,
                            target.institution,
                            link,
                            tried + 1,
                            call.question,
                            int(target.deadline),
                        )
                    )
                else:
                    target.move(TargetState.ESCALATED)
                    decisions.append(Escalate(call.request, target.institution, target.links))
        return decisions

    def calls(self) -> list[RollCall]:
        """The open roll-calls."""
        return list(self._calls.values())

    def get(self, request: str) -> RollCall | None:
        return self._calls.get(request)

    def finished(self, late_window: float) -> list[str]:
        """The roll-calls to close now (see the module docstring)."""
        now = self._clock.time()
        return [c.request for c in self._calls.values() if c.finished(now, late_window)]

    def close(self, request: str) -> RollCall | None:
        """Forget a finished roll-call (the archive and the log book keep its history)."""
        return self._calls.pop(request, None)

    def __len__(self) -> int:
        return len(self._calls)

    def snapshot(self) -> list[dict[str, Any]]:
        """Everything needed to carry on after a restart, as JSON-ready data (deadlines are wall-clock)."""
        return [call_document(c) for c in self._calls.values()]

    def restore(self, snapshot: Sequence[Mapping[str, Any]]) -> None:
        """Load roll-calls saved by ``snapshot``; ``ValueError`` says what is wrong with a damaged one."""
        calls = {}
        try:
            for c in snapshot:
                request = str(c["request"])
                targets = [_restored_target(request, t) for t in c["targets"]]
                calls[request] = RollCall(
                    request, str(c["question"]), float(c["started"]), float(c["deadline"]),
                    {t.institution: t for t in targets}, bool(c.get("exercise", False)),
                )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"roll-call snapshot is damaged: {exc!r}") from exc
        self._calls.update(calls)

    def summary(self, limit: int | None = None) -> list[dict[str, Any]]:
        """JSON-ready view for the console, newest roll-call first (the newest ``limit``), worst targets
        first within each."""
        order = {
            TargetState.ESCALATED: 0,
            TargetState.OVERDUE: 1,
            TargetState.PENDING: 2,
            TargetState.ANSWERED: 3,
        }
        out = []
        for call in sorted(self._calls.values(), key=lambda c: -c.started)[:limit]:
            targets = sorted(call.targets.values(), key=lambda t: (order[t.state], t.institution))
            out.append(
                {
                    "request": call.request,
                    "question": call.question,
                    "started": int(call.started),
                    "deadline": int(call.deadline),
                    "exercise": call.exercise,
                    "counts": {s.value: sum(t.state is s for t in targets) for s in TargetState},
                    "targets": [_target_json(t) for t in targets],
                }
            )
        return out


def call_document(c: RollCall) -> dict[str, Any]:
    """One roll-call as JSON-ready data; ``RollCallBoard.restore`` reads a list of these."""
    return {
        "request": c.request,
        "question": c.question,
        "started": c.started,
        "deadline": c.deadline,
        "exercise": c.exercise,
        "targets": [target_document(t) for t in c.targets.values()],
    }


def target_document(t: Target) -> dict[str, Any]:
    """One target as JSON-ready data: what the console saves after each answer or decision."""
    a = t.answer
    return {
        "institution": t.institution,
        "links": list(t.links),
        "deadline": t.deadline,
        "state": t.state.value,
        "attempts": [[attempt.link, attempt.at] for attempt in t.attempts],
        "answer": None if a is None else {"link": a.link, "at": a.at, "late": a.late, "body": dict(a.body)},
    }


def _restored_target(request: str, t: Mapping[str, Any]) -> Target:
    institution, saved = str(t["institution"]), t["answer"]
    answer = None
    if saved is not None:
        answer = Answer(
            request,
            institution,
            str(saved["link"]),
            float(saved["at"]),
            bool(saved["late"]),
            dict(saved["body"]),
        )
    attempts = [Attempt(str(link), float(at)) for link, at in t["attempts"]]
    return Target(
        institution,
        tuple(map(str, t["links"])),
        float(t["deadline"]),
        TargetState(t["state"]),
        attempts,
        answer,
    )


def _target_json(target: Target) -> dict[str, Any]:
    answer = target.answer
    return {
        "institution": target.institution,
        "state": target.state.value,
        "deadline": int(target.deadline),
        "attempts": [{"link": a.link, "at": int(a.at)} for a in target.attempts],
        "answer": None
        if answer is None
        else {"link": answer.link, "at": int(answer.at), "late": answer.late, "body": dict(answer.body)},
    }
