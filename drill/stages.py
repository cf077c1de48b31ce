"""The telecom-collapse stages: what the world looks like in each, what is watched, what is recorded.

A stage is a whole world state (internet on or off, broker alive or dead, who hears whom on the mesh,
whether the dead links died loudly or silently, whether the staff hub's SINE radio is mute),
the care home the staff hub's first sitrep goes to right after the fault, the link whose state the
staff hub should report, and the link that sitrep should take. ``StageResult`` holds what a run
measured; ``table`` prints a run stage by stage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

DETECTION_BUDGET = 3.0
FIRST_DELIVERY_BUDGET = 5.0

FULL_MESH = None
_HOME3_BEHIND_RELAY = (
    ("staff", "relay"), ("staff", "home1"), ("staff", "home2"), ("relay", "home1"), ("relay", "home2"),
    ("home1", "home2"), ("relay", "home3"),
)  # fmt: skip
_HOME1_OFF_THE_MESH = (("staff", "relay"), ("staff", "home2"), ("relay", "home2"), ("relay", "home3"))


@dataclass(frozen=True, slots=True)
class World:
    internet: bool
    broker: bool
    mesh: tuple[tuple[str, str], ...] | None
    """Pairs of sites whose radios hear each other; None: everybody hears everybody."""
    silent: bool = False
    """How the internet and the broker fail: False, loudly (connections refused and reset, the broker
    process killed); True, silently (internet connections open and hang with nothing passing; the
    broker acknowledges every publication and delivers none). Nothing is refused either way."""
    sine_mute: bool = False
    """The staff hub's SINE terminal stays plugged in and answers nothing (a hung firmware): no error,
    no echo, no report. The hub must notice from its own command deadlines."""

    @property
    def free_link(self) -> bool:
        """Whether a link that routine traffic may use (internet, MQTT) is up."""
        return self.internet or self.broker


@dataclass(frozen=True, slots=True)
class Stage:
    number: int
    title: str
    world: World
    watched: str
    """The care home the staff hub's first sitrep goes to after the fault."""
    link: str | None
    """The link whose state the stage watches at the staff hub (to ``watched``)."""
    target: str
    """The state that link should reach: ``down`` after a fault, ``up`` after the restore."""
    expect: str
    """Link (and next hop, if not the recipient) the first sitrep should take."""


def stages(*, silent: bool = False) -> tuple[Stage, ...]:
    """The telecom collapse; ``silent``: the internet and the broker fail without a word (see World)."""
    internet = "internet goes silent (packets vanish)" if silent else "internet cut"
    broker = "MQTT broker goes silent (acknowledges, delivers nothing)" if silent else "MQTT broker killed"
    return (
        Stage(1, "all links up", World(True, True, FULL_MESH), "home2", None, "up", "internet"),
        Stage(2, internet, World(False, True, FULL_MESH, silent), "home2", "internet", "down", "mqtt"),
        Stage(3, broker, World(False, False, FULL_MESH, silent), "home2", "mqtt", "down", "lora"),
        Stage(
            4,
            "mesh partitioned: home3 only via the relay",
            World(False, False, _HOME3_BEHIND_RELAY, silent),
            "home3",
            "lora",
            "down",
            "lora@relay",
        ),
        Stage(
            5,
            "home1 left with SINE and satellite",
            World(False, False, _HOME1_OFF_THE_MESH, silent),
            "home1",
            "lora",
            "down",
            "sine",
        ),
        Stage(
            6,
            "the staff hub's SINE radio goes mute (plugged in, answers nothing)",
            World(False, False, _HOME1_OFF_THE_MESH, silent, sine_mute=True),
            "home1",
            "sine",
            "down",
            "lora@relay",
        ),
        Stage(7, "everything restored", World(True, True, FULL_MESH), "home2", "internet", "up", "internet"),
    )


STAGES = stages()
SILENT_STAGES = stages(silent=True)


@dataclass(frozen=True, slots=True)
class Sent:
    id: str
    sender: str
    recipient: str
    kind: str
    priority: str
    stage: int


@dataclass(slots=True)
class StageResult:
    stage: Stage
    noticed: float | None = None
    """Seconds from the fault until the watched link left ``up`` (or, after a restore, came back)."""
    detected: float | None = None
    """Seconds from the fault until the watched link reached the target state in ``/v1/links``."""
    first_delivery: float | None = None
    first_via: str | None = None
    sent: list[Sent] = field(default_factory=list)
    delivered: int = 0
    duplicates: int = 0
    lost: int = 0
    links: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    before_heal: set[str] = field(default_factory=set)
    """After a restore: messages sent before every hub saw the link back (they rightly took others)."""
    satellite_credits: int = 0
    """Credits the Iridium provider charged during the stage."""
    seconds: float = 0.0


def table(results: Iterable[StageResult]) -> str:
    """The stage-by-stage table ``beredt simulate`` prints."""
    header = ("stage", "fault", "noticed s", "detected s", "1st delivery s", "via", "sent", "deliv", "dup",
              "lost", "sat credits", "links used")  # fmt: skip
    rows = [header]
    for r in results:
        rows.append((
            str(r.stage.number), r.stage.title, _seconds(r.noticed), _seconds(r.detected),
            _seconds(r.first_delivery), r.first_via or "-", str(len(r.sent)), str(r.delivered),
            str(r.duplicates), str(r.lost), str(r.satellite_credits),
            ", ".join(f"{k} {v}" for k, v in sorted(r.links.items())),
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
