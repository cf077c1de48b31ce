"""The schemas of Beredt's structured message kinds, shaped after the OASIS EDXL and CAP standards.

SITREP follows EDXL-SitRep (report number, Initial/Update/Final, incident, period, casualty counts, next
contact). STATUS follows EDXL-HAVE's facility status and staffing/operations indicators and extends them
with what a Danish care home on a generator must report (power source, fuel hours, days of supplies,
residents, needs). ALERT carries the CAP 1.2 ``info`` fields Beredt sends between hubs, and for an
alert imported from outside CAP what keeps its meaning on the way on: scope and restriction, the
original's identifier, sender, sent and references, area geometry, parameters, event codes and the texts
of its other languages; ``hub.console.cap`` turns it into a full CAP document. RESOURCE_REQUEST and
COMMITMENT follow EDXL-RM's request/commit pair.

The size budget drives the limits: a fully filled STATUS with its free text at the limit, sealed to one
recipient as it is sent by default, still fits one LoRa packet (212 of Beredt's 216-byte LoRa MTU,
signed frame included; 195 public) and a minimal one fits a SINE SDS (140 bytes). Wire keys
and enum orders are append-only (see ``hub.core.kinds.fields``).
"""

from __future__ import annotations

from hub.core.kinds.fields import (
    Choice,
    Entry,
    Flags,
    HexId,
    HexIdList,
    Items,
    Pairs,
    Schema,
    Text,
    TextList,
    Time,
    UInt,
)

MESSAGE_ID = HexId(16)
REQUEST_ID = HexId(4)  # roll-calls and resource requests: 8 hex digits, cheap enough for every answer
STATUS_TEXT_MAX = 48  # bytes; keeps a full status inside one LoRa packet

SEVERITY = Choice(("Unknown", "Minor", "Moderate", "Severe", "Extreme"))
URGENCY = Choice(("Unknown", "Past", "Future", "Expected", "Immediate"))
CERTAINTY = Choice(("Unknown", "Unlikely", "Possible", "Likely", "Observed"))
MSG_TYPE = Choice(("Alert", "Update", "Cancel", "Ack", "Error"))
CATEGORY = Choice(
    (
        "Other",
        "Geo",
        "Met",
        "Safety",
        "Security",
        "Rescue",
        "Fire",
        "Health",
        "Env",
        "Transport",
        "Infra",
        "CBRNE",
    )
)
PHASE = Choice(("Initial", "Update", "Final"))
FACILITY = Choice(("Normal", "Compromised", "Evacuating", "Closed"))
ADEQUACY = Choice(("Adequate", "Insufficient"))
POWER = Choice(("mains", "generator", "battery", "none"))
NEEDS = Flags(("oxygen", "dialysis", "heat", "water", "food", "medicine", "transport", "staff"))
RESOURCE = Choice(("other", "diesel", "oxygen", "water", "staff", "transport"))

CASUALTIES = Schema(
    "casualties",
    (
        Entry(1, "fatalities", UInt()),
        Entry(2, "hospitalised", UInt()),
        Entry(3, "injured", UInt()),
        Entry(4, "missing", UInt()),
        Entry(5, "evacuated", UInt(0xFFFFFF)),
        Entry(6, "sheltering", UInt(0xFFFFFF)),
    ),
)

SITREP = Schema(
    "sitrep",
    (
        Entry(1, "number", UInt(), required=True),
        Entry(2, "phase", PHASE, required=True),
        Entry(3, "incident", Text(40)),
        Entry(4, "period_from", Time()),
        Entry(5, "period_to", Time()),
        Entry(6, "summary", Text(1500), required=True),
        Entry(7, "severity", SEVERITY),
        Entry(8, "casualties", CASUALTIES),
        Entry(9, "actions", TextList(20, Text(200))),
        Entry(10, "next_contact", Time()),
    ),
)

RESIDENTS = Schema(
    "residents",
    (
        Entry(1, "total", UInt(9999)),
        Entry(2, "present", UInt(9999)),
        Entry(3, "power_dependent", UInt(9999)),
        Entry(4, "needing_help", UInt(9999)),
    ),
)

STATUS = Schema(
    "status",
    (
        Entry(1, "facility", FACILITY, required=True),
        Entry(2, "staffing", ADEQUACY),
        Entry(3, "operations", ADEQUACY),
        Entry(4, "power", POWER),
        Entry(5, "fuel_hours", UInt(9999)),
        Entry(6, "water_days", UInt(99)),
        Entry(7, "food_days", UInt(99)),
        Entry(8, "medicine_days", UInt(99)),
        Entry(9, "residents", RESIDENTS),
        Entry(10, "needs", NEEDS),
        Entry(11, "text", Text(STATUS_TEXT_MAX)),
        Entry(12, "rollcall", REQUEST_ID),
    ),
)

ROLLCALL = Schema(
    "rollcall",
    (
        Entry(1, "request", REQUEST_ID, required=True),
        Entry(2, "deadline", Time(), required=True),
        Entry(3, "question", Text(200)),
    ),
)

SCOPE = Choice(("Public", "Restricted", "Private"))
RESPONSE = Flags(
    ("Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None")
)
GEOCODES = Pairs(32, Text(100), Text(100))

# An imported alert's pointer to the CAP message it came from; references are kept verbatim
# ("sender,identifier,sent") so an outside Update or Cancel still names what it updates or cancels.
# The first info's senderName and web live here too: they describe the original, not the relay.
CAP_ORIGIN = Schema(
    "origin",
    (
        Entry(1, "identifier", Text(200), required=True),
        Entry(2, "sender", Text(200), required=True),
        Entry(3, "sent", Time(), required=True),
        Entry(4, "references", TextList(16, Text(500))),
        Entry(5, "sender_name", Text(80)),
        Entry(6, "web", Text(200)),
    ),
)

# CAP polygons and circles travel as their CAP text: exact, and no bigger than a number encoding for
# the two to four decimals senders actually use.
CAP_AREA = Schema(
    "area",
    (
        Entry(1, "desc", Text(200), required=True),
        Entry(2, "polygons", TextList(8, Text(2000))),
        Entry(3, "circles", TextList(8, Text(60))),
        Entry(4, "geocodes", GEOCODES),
    ),
)

# Another <info> of the same alert in another language: only what is worded differently; everything
# else (category, urgency, times, geometry, codes) is the first info's.
CAP_TRANSLATION = Schema(
    "translation",
    (
        Entry(1, "language", Text(35), required=True),
        Entry(2, "event", Text(80)),
        Entry(3, "headline", Text(160)),
        Entry(4, "description", Text(2000)),
        Entry(5, "instruction", Text(1000)),
        Entry(6, "area_descs", TextList(16, Text(200))),
        Entry(7, "parameters", Pairs(32, Text(100), Text(500))),
        Entry(8, "sender_name", Text(80)),
        Entry(9, "web", Text(200)),
    ),
)

ALERT = Schema(
    "alert",
    (
        Entry(1, "event", Text(80), required=True),
        Entry(2, "urgency", URGENCY, required=True),
        Entry(3, "severity", SEVERITY, required=True),
        Entry(4, "certainty", CERTAINTY, required=True),
        Entry(5, "headline", Text(160)),
        Entry(6, "description", Text(2000)),
        Entry(7, "area", Text(200)),
        Entry(8, "instruction", Text(1000)),
        Entry(9, "msg_type", MSG_TYPE),
        Entry(10, "references", HexIdList(16, MESSAGE_ID)),
        Entry(11, "category", CATEGORY),
        Entry(12, "expires", Time()),
        Entry(13, "language", Text(35)),
        Entry(14, "scope", SCOPE),
        Entry(15, "restriction", Text(200)),
        Entry(16, "origin", CAP_ORIGIN),
        Entry(17, "areas", Items(16, CAP_AREA)),
        Entry(18, "parameters", Pairs(32, Text(100), Text(500))),
        Entry(19, "event_codes", Pairs(16, Text(100), Text(100))),
        Entry(20, "response", RESPONSE),
        Entry(21, "onset", Time()),
        Entry(22, "effective", Time()),
        Entry(23, "translations", Items(4, CAP_TRANSLATION)),
    ),
)


def _resource(title: str, when: str) -> Schema:
    return Schema(
        title,
        (
            Entry(1, "request", REQUEST_ID, required=True),
            Entry(2, "resource", RESOURCE, required=True),
            Entry(3, "quantity", UInt(0xFFFFFFFF), required=True),
            Entry(4, "unit", Text(16)),
            Entry(5, when, Time()),
            Entry(6, "text", Text(200)),
        ),
    )


RESOURCE_REQUEST = _resource("resource_request", "needed_by")
COMMITMENT = _resource("commitment", "arrives_by")

READ_RECEIPT = Schema(
    "read_receipt",
    (
        Entry(1, "message", MESSAGE_ID, required=True),
        Entry(2, "read_at", Time()),
        Entry(3, "by", Text(60)),
    ),
)

# An exercise's control, from a coordinator's hub (staff) to every participating hub. It changes state
# (a simulated outage makes a hub treat a link as down), so it is signed like every frame, always carries
# CAP status Exercise, and acts only within the exercise it names.
EXERCISE_ACTION = Choice(("start", "pause", "resume", "end", "outage", "summary"))
# The head of the sender's log book hash chain, sent now and then to a hub that keeps it in its own log
# book: a sender's book rewritten later (a stolen Pi) no longer matches what the witness holds.
LOGBOOK_HEAD = Schema(
    "logbook_head",
    (
        Entry(1, "seq", UInt(high=2**53), required=True),
        Entry(2, "hash", HexId(32), required=True),
        Entry(3, "at", Time(), required=True),
    ),
)

EXERCISE_CONTROL = Schema(
    "exercise_control",
    (
        Entry(1, "exercise", REQUEST_ID, required=True),
        Entry(2, "action", EXERCISE_ACTION, required=True),
        Entry(3, "name", Text(80)),
        Entry(4, "until", Time()),
        Entry(5, "node", HexId(8)),
        Entry(6, "link", Text(32)),
        Entry(7, "paid", UInt(high=1)),
    ),
)

# A participating hub's own account of an exercise, to the coordinator's hub: every change of its links'
# health (the coordinator sees only the last hop) and what each link carried and spent for the exercise.
# Sent at the exercise's end and when the coordinator asks (EXERCISE_CONTROL "summary"); carries CAP
# status Exercise and nothing about people.
MAX_SUMMARY_CHANGES = 40
"""Link changes one summary carries (the earliest); how many more there were goes in ``left_out``."""
LINK_HEALTH = Choice(("up", "degraded", "down"))
LINK_CHANGE = Schema(
    "link_change",
    (
        Entry(1, "at", Time(), required=True),
        Entry(2, "link", Text(32), required=True),
        Entry(3, "peer", HexId(8)),
        Entry(4, "old", LINK_HEALTH, required=True),
        Entry(5, "new", LINK_HEALTH, required=True),
        Entry(6, "reason", Text(40)),
    ),
)
LINK_USE = Schema(
    "link_use",
    (
        Entry(1, "link", Text(32), required=True),
        Entry(2, "messages", UInt(high=2**32)),
        Entry(3, "sends", UInt(high=2**32)),
        Entry(4, "bytes", UInt(high=2**53)),
        Entry(5, "airtime_ms", UInt(high=2**53)),
        Entry(6, "credits", UInt(high=2**32)),
        Entry(7, "refused", UInt(high=2**32)),
    ),
)
EXERCISE_SUMMARY = Schema(
    "exercise_summary",
    (
        Entry(1, "exercise", REQUEST_ID, required=True),
        Entry(2, "from", Time(), required=True),
        Entry(3, "until", Time(), required=True),
        Entry(4, "final", UInt(high=1)),
        Entry(5, "changes", Items(MAX_SUMMARY_CHANGES, LINK_CHANGE)),
        Entry(6, "left_out", UInt(high=2**32)),
        Entry(7, "use", Items(16, LINK_USE)),
    ),
)
