"""How the console shows a stored message and names nodes and links (JSON for the browser, Danish labels).

A stored message is decoded from its signed wire bytes (opening it first if it was sealed to or by this
hub), so the console shows exactly what was signed. A payload that does not decode is shown as such rather
than hidden; the frame itself was verified when it was admitted.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.core.errors import ProtocolError, SealError
from hub.core.frame import decode_frame
from hub.core.kinds import decode_payload

if TYPE_CHECKING:
    from hub.relay.hub import Hub
    from hub.relay.store_records import StoredMessage


def local_zone() -> tzinfo:
    """Danish time for printed reports (with its UTC offset shown), or UTC where tzdata is missing."""
    try:
        return ZoneInfo("Europe/Copenhagen")
    except ZoneInfoNotFoundError:
        return UTC


KIND_NAMES = {
    "text": "besked", "sitrep": "situationsrapport", "status": "status", "rollcall": "statusrunde",
    "alert": "varsel", "resource_request": "ressourceanmodning", "commitment": "tilsagn",
    "read_receipt": "læst-kvittering", "roster": "rosteropdatering", "ack": "kvittering",
    "exercise_control": "øvelsesstyring",
    "logbook_head": "logbogsanker",
    "citizen_alarm": "nødkald",
}  # fmt: skip
FACILITY_NAMES = {
    "Normal": "alt OK",
    "Compromised": "påvirket",
    "Evacuating": "evakuerer",
    "Closed": "lukket",
}
NEED_NAMES = {
    "oxygen": "ilt", "dialysis": "dialyse", "heat": "varme", "water": "vand", "food": "mad",
    "medicine": "medicin", "transport": "transport", "staff": "personale",
}  # fmt: skip
RESOURCE_NAMES = {**NEED_NAMES, "diesel": "diesel", "other": "andet"}
PHASE_NAMES = {"Initial": "første", "Update": "opdatering", "Final": "afsluttende"}
LINK_STATES = {"up": "oppe", "degraded": "svækket", "down": "nede"}


def kind_name(kind: str) -> str:
    """The Danish word for a message kind, as the log book writes it."""
    return KIND_NAMES.get(kind, kind)


LINK_NAMES = {"internet": "internet", "mqtt": "MQTT", "lora": "LoRa", "sine": "SINE", "satellite": "satellit"}


def name_of(hub: Hub, node: str) -> str:
    """The roster name of a node id (hex), or the id itself for a node not in the roster."""
    try:
        entry = hub.roster.get(bytes.fromhex(node))
    except ValueError:
        entry = None
    return entry.name if entry else node


def link_label(hub: Hub, link: str | None) -> str | None:
    """How people name a link: "SINE"; a second link of the same kind is "backup (SINE)"."""
    if link is None:
        return None
    try:
        kind = hub.links.kind_of(link)
    except (KeyError, AttributeError):
        kind = link
    label = LINK_NAMES.get(kind, kind)
    return label if link == kind else f"{link} ({label})"


def decode_message(hub: Hub, message: StoredMessage) -> dict[str, Any]:
    frame = decode_frame(message.wire)
    body: Any
    try:
        body = decode_payload(frame.kind, hub.open_payload(frame))
    except (ProtocolError, SealError) as exc:
        body = {"undecodable": str(exc)}
    sender = frame.sender.hex()
    return {
        "id": message.id.hex(),
        "kind": frame.kind.name.lower(),
        "from": sender,
        "from_name": name_of(hub, sender),
        "to": frame.recipient.hex(),
        "priority": frame.priority.name.lower().replace("_", "-"),
        "status": frame.status.name.lower(),
        "created": frame.created,
        "received": message.accepted_at,
        "via": message.via,
        "via_kind": link_label(hub, message.via),
        "body": body,
    }


def typed_text(item: dict[str, Any]) -> str | None:
    """The words in a received message that someone typed and that may be about a person: a roll-call's
    question ("Er hr. Jensen kommet med?") or an alert's headline (a missing person's name). The log book
    keeps them beside the chain, as it keeps typed notes (``hub.console.note_texts``), not in it."""
    body = item["body"]
    if not isinstance(body, dict):
        return None
    field = {"rollcall": "question", "alert": "headline"}.get(item["kind"])
    words = body.get(field) if field else None
    return str(words) if words else None


def received_line(item: dict[str, Any], kept: str | None = None) -> str:
    """The log book's line for a received message: who sent what kind, over which link, its id, and what it
    says only where that cannot be about a person (a status's state and needs, an alert's event, a
    resource). A text, a sitrep's summary (it may name residents) or a citizen's alarm text is counted, not
    copied, and a read receipt's reader is left out: the message itself stays sealed in the store under its
    id. A roll-call's question and an alert's headline (``typed_text``) stand as ``kept``, the reference
    to where the note texts keep them, or are counted when nothing kept them."""
    heard = f"{kind_name(item['kind'])} fra {item['from_name']} via {item['via_kind']}"
    body = item["body"]
    match item["kind"]:
        case "text" if isinstance(body, str):
            said = f"{len(body)} tegn (indholdet logges ikke)"
        case "citizen_alarm" if isinstance(body, dict):
            how = "alarmknap" if body.get("port") == "alert" else "besked"
            said = f"håndsender !{body.get('handheld')} ({how})"
        case "read_receipt" if isinstance(body, dict):
            said = f"læst og forstået: {body.get('message')}"
        case "logbook_head" if isinstance(body, dict):
            # the sender's node id as well: its name may change, the witnessed heads are looked up by id
            said = f"{summary(item)} (node {item['from']})"
        case "sitrep" if isinstance(body, dict):
            phase = PHASE_NAMES.get(str(body.get("phase")), str(body.get("phase")))
            said = f"nr. {body.get('number')} ({phase}), resumé på {len(str(body.get('summary', '')))} tegn"
        case "rollcall" if isinstance(body, dict):
            question = kept or f"spørgsmål på {len(typed_text(item) or '')} tegn"
            said = f"{question} (statusrunde {body.get('request')})"
        case "alert" if isinstance(body, dict):
            headline = typed_text(item)
            words = (kept or f"overskrift på {len(headline)} tegn") if headline else None
            said = f"{body.get('event')}: {words}" if words else str(body.get("event"))
        case _:
            said = summary(item)
    return f"{heard}: {said} [id {item['id']}]" if said else f"{heard} [id {item['id']}]"


def summary(item: dict[str, Any]) -> str:
    """One line for the log book: what a decoded message says, in the staff's words."""
    body = item["body"]
    if isinstance(body, str):
        return body[:200]
    if not isinstance(body, dict) or "undecodable" in body:
        return "(kan ikke læses)"
    match item["kind"]:
        case "status":
            wanted = [NEED_NAMES.get(n, n) for n in body.get("needs", [])]
            needs = f", mangler {', '.join(wanted)}" if wanted else ""
            facility = FACILITY_NAMES.get(str(body.get("facility")), str(body.get("facility")))
            return f"{facility}{needs}" + (f" (statusrunde {body['rollcall']})" if "rollcall" in body else "")
        case "rollcall":
            return f"{body.get('question', 'Meld status')} (statusrunde {body.get('request')})"
        case "alert":
            return str(body.get("headline") or body.get("event"))
        case "sitrep":
            phase = PHASE_NAMES.get(str(body.get("phase")), str(body.get("phase")))
            return f"nr. {body.get('number')} ({phase}): {str(body.get('summary'))[:200]}"
        case "citizen_alarm":
            how = "alarmknap" if body.get("port") == "alert" else "besked"
            text = f": {body['text']}" if body.get("text") else ""
            return f"håndsender !{body.get('handheld')} ({how}){text}"
        case "logbook_head":
            # the whole anchor, as ``beredt log verify --anchor`` takes it
            return f"post {body.get('seq')}, anker {body.get('seq')}:{body.get('hash')}"
        case "read_receipt":
            return f"læst og forstået af {body.get('by', '?')}: {body.get('message')}"
        case "resource_request" | "commitment":
            resource = RESOURCE_NAMES.get(str(body.get("resource")), str(body.get("resource")))
            return f"{body.get('quantity')} {body.get('unit', '')} {resource}".replace("  ", " ")
    return ""
