"""The words a person reads in the CLI's tables for the states the API names in English (the same words
as the console's Danish)."""

from __future__ import annotations

STATE_DANISH = {
    # links
    "up": "oppe",
    "degraded": "svækket",
    "down": "nede",
    "not yet used": "ikke brugt endnu",
    # a message, and its delivery to the next hop
    "active": "undervejs",
    "delivered": "leveret",
    "expired": "udløbet",
    "evicted": "smidt ud (lageret fuldt)",
    "queued": "i kø",
    "sending": "sendes",
    "sent": "sendt",
    "hop-acked": "modtaget af næste hop",
    "done": "afsluttet (alle hop har kvitteret)",
    "replaced": "erstattet (sendt igen til en ny nøgle)",
    "revoked": "ikke leveret: modtageren er tilbagekaldt af kommunen",
    # roll-call answers
    "pending": "afventer",
    "answered": "svaret",
    "overdue": "forsinket",
    "escalated": "ingen kontakt – send nogen",
    # the board's assessment
    "critical": "KRITISK",
    "help": "brug for hjælp",
    "unknown": "ukendt",
    "ok": "OK",
}


def danish(state: str) -> str:
    """The Danish word for an API state; a state without one is shown as the API names it."""
    return STATE_DANISH.get(state, state)
