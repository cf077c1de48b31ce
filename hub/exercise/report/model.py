"""Everything the after-action report shows, as plain typed data: ``ReportInput``.

``collect`` fills it from the exercise record and the hub's two databases; the renderers (HTML, PDF, CSV)
read nothing else. Times are Unix seconds (UTC); the renderers show them in the report's time zone.
Durations are seconds. ``None`` means "did not happen" (no answer, no acknowledgement), never zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Targets:
    """What the scenario asked for; ``None``: the scenario set no target for it."""

    rollcall_answer: float | None = None
    """Seconds within which every institution should answer a roll-call."""
    first_status: float | None = None
    """Seconds from an inject to the first status from each institution it went to."""
    delivery: float | None = None
    """Seconds from sending to the recipient's end-to-end acknowledgement."""
    read_receipt: float | None = None
    """Seconds from sending to "read and understood"."""
    satellite_credits: int | None = None
    """The most satellite credits the exercise may spend."""
    lora_airtime: float | None = None
    """The most LoRa airtime (seconds) the exercise may spend."""


@dataclass(frozen=True, slots=True)
class RollCallAnswer:
    """One institution asked in one roll-call."""

    institution: str
    answered_at: float | None
    link: str | None
    """The link the answer came over."""
    links_tried: tuple[str, ...]
    escalated: bool
    """Every link was tried without an answer in time: someone was to be sent there."""


@dataclass(frozen=True, slots=True)
class RollCallResult:
    request: str
    question: str
    started: float
    answers: tuple[RollCallAnswer, ...]


@dataclass(frozen=True, slots=True)
class Inject:
    """One inject of the scenario as it was sent, and the first status each recipient sent after it."""

    label: str
    kind: str
    sent_at: float
    recipients: tuple[str, ...]
    first_status: dict[str, float | None]
    """Institution -> time of its first status after the inject (None: none came before the end)."""
    deadline: float | None = None
    """The inject's own deadline for an answer (seconds); None: the scenario's ``first_status`` applies."""


@dataclass(frozen=True, slots=True)
class Carried:
    """One next hop of a sent message: which link took it and when the hop acknowledged it."""

    hop: str
    link: str | None
    state: str
    attempts: int
    settled_at: float | None
    """When the hop acknowledged it (None while it was still open or when it expired)."""


@dataclass(frozen=True, slots=True)
class SentMessage:
    id: str
    to: str
    kind: str
    priority: str
    size: int
    sent_at: float
    delivered_at: float | None
    """The recipient's signed end-to-end acknowledgement."""
    read_at: float | None
    read_by: str | None
    hops: tuple[Carried, ...]

    @property
    def link(self) -> str | None:
        """The link that carried it towards its recipient (the first hop that acknowledged it)."""
        for hop in self.hops:
            if hop.link is not None and hop.settled_at is not None:
                return hop.link
        return next((h.link for h in self.hops if h.link is not None), None)

    @property
    def failed(self) -> bool:
        return bool(self.hops) and all(h.state in ("expired", "evicted") for h in self.hops)


@dataclass(frozen=True, slots=True)
class Heard:
    """A status an institution sent during the exercise, and the link it arrived over."""

    institution: str
    at: float
    link: str | None


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """A link's health changed (as the log book recorded it), or an exercise outage began or ended."""

    at: float
    link: str
    peer: str | None
    state: str
    """``up``, ``degraded`` or ``down``."""
    text: str
    """The change in Danish (``oppe → nede``)."""
    simulated: bool = False
    reason: str = ""
    """Why, in Danish from the reason's code (``svarede ikke på prøve``), empty for a simulated outage."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What one link of this hub carried for the exercise: its messages (with sends and bytes) and what
    it spent on every frame of the exercise (acknowledgements too), metered."""

    link: str
    kind: str
    messages: int
    attempts: int
    bytes: int
    airtime: float | None = None
    """Seconds on air (LoRa) spent on the exercise's frames, as the link metered them."""
    credits: int | None = None
    """Satellite credits spent on the exercise's frames, as the link metered them."""
    refused: int = 0
    """The exercise's frames kept off this paid link because the scenario does not allow it, metered."""


@dataclass(frozen=True, slots=True)
class Reported:
    """What a hub in the exercise reported of its own links (its signed EXERCISE_SUMMARY): the links its
    exercise messages left it by, what each link carried and spent, and every change of their health."""

    hub: str
    since: float
    """From when it counts: when that hub learnt of the start (its own clock)."""
    until: float
    """Up to when it counts."""
    final: bool
    """Sent when the exercise was over there (else while it ran, on request)."""
    usage: tuple[Usage, ...] = ()
    link_events: tuple[LinkEvent, ...] = ()
    left_out: int = 0
    """Link changes beyond those the summary could carry."""


@dataclass(frozen=True, slots=True)
class Note:
    at: float
    author: str
    text: str


@dataclass(frozen=True, slots=True)
class ReportInput:
    exercise_id: str
    name: str
    hub: str
    """The name of the hub the exercise was run from."""
    started: float
    ended: float | None
    timezone: str
    targets: Targets
    institutions: tuple[str, ...]
    """Every participating institution by name, in the order the report lists them."""
    rollcalls: tuple[RollCallResult, ...] = ()
    injects: tuple[Inject, ...] = ()
    messages: tuple[SentMessage, ...] = ()
    heard: tuple[Heard, ...] = ()
    link_events: tuple[LinkEvent, ...] = ()
    usage: tuple[Usage, ...] = ()
    notes: tuple[Note, ...] = ()
    reported: tuple[Reported, ...] = ()
    """Each hub's own account of its links, as it reported it to this hub."""
    unreported: tuple[str, ...] = ()
    """Participating institutions whose account never arrived."""
    link_kinds: dict[str, str] = field(default_factory=dict)
    """Link name -> its kind (internet, mqtt, lora, sine, satellite), from the hub's configuration."""
    gaps: tuple[str, ...] = field(default=())
    """What the report could not know and why (Danish, shown in the report)."""
