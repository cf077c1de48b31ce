"""Why a link's health changed: a stable code (with its few parameters) that the console, the CLI and the
after-action report word in the reader's language, and the transport's own English detail, which only
the hub's log and the API's ``reason`` text carry (a person never reads raw library text such as an
aiohttp error)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Why(enum.StrEnum):
    NOT_USED = "not_used"
    PROBE_ANSWERED = "probe_answered"
    PROBE_FAILED = "probe_failed"
    PROBE_SILENT = "probe_silent"
    FRAME_SENT = "frame_sent"
    SEND_FAILED = "send_failed"
    HOP_ACK = "hop_ack"
    NO_HOP_ACK = "no_hop_ack"
    PROBATION = "probation"
    LINK_UP = "link_up"
    LINK_DOWN = "link_down"
    SIMULATED = "simulated"
    SIMULATED_LIFTED = "simulated_lifted"


ENGLISH = {
    Why.NOT_USED: "not yet used",
    Why.PROBE_ANSWERED: "probe answered",
    Why.PROBE_FAILED: "probe failed",
    Why.PROBE_SILENT: "probe failed: no answer within {seconds} s",
    Why.FRAME_SENT: "frame sent",
    Why.SEND_FAILED: "send failed",
    Why.HOP_ACK: "hop ack",
    Why.NO_HOP_ACK: "no hop ack within the deadline",
    Why.PROBATION: "answered; on probation",
    Why.LINK_UP: "link reported up",
    Why.LINK_DOWN: "link reported down",
    Why.SIMULATED: "exercise {exercise}: simulated outage",
    Why.SIMULATED_LIFTED: "simulated outage lifted",
}

DANISH = {
    Why.NOT_USED: "ikke brugt endnu",
    Why.PROBE_ANSWERED: "svarede på prøve",
    Why.PROBE_FAILED: "svarede ikke på prøve",
    Why.PROBE_SILENT: "intet svar på prøve inden for {seconds} s",
    Why.FRAME_SENT: "sendte en besked",
    Why.SEND_FAILED: "afsendelse mislykkedes",
    Why.HOP_ACK: "næste hop kvitterede",
    Why.NO_HOP_ACK: "næste hop kvitterede ikke i tide",
    Why.PROBATION: "på prøve efter fejl",
    Why.LINK_UP: "forbindelsen meldt oppe",
    Why.LINK_DOWN: "forbindelsen meldt nede",
    Why.SIMULATED: "ØVELSE {exercise}: simuleret udfald",
    Why.SIMULATED_LIFTED: "øvelsens simulerede udfald ophævet",
}


def link_reason(code: str | None, params: dict[str, str] | None = None) -> str:
    """A link health reason in the staff's words, from its code; the transport's own text stays in the
    hub's log."""
    try:
        return DANISH[Why(code or "")].format_map(params or {})
    except (ValueError, KeyError):
        return "detaljer i hubbens log"


@dataclass(frozen=True, slots=True)
class Reason:
    code: Why
    detail: str = ""
    """The transport's own words (English), for the log only."""
    params: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        text = ENGLISH[self.code].format(**self.params)
        return f"{text}: {self.detail}" if self.detail else text

    def as_json(self) -> dict[str, object]:
        """The English text, and the code and parameters the console and the CLI put into words."""
        return {"reason": str(self), "reason_code": self.code.value, "reason_params": dict(self.params)}


NOT_USED = Reason(Why.NOT_USED)
