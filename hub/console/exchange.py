"""CAP 1.2 in and out of the console: export an alert or a read receipt, import an outside alert and send it.

Export takes what the signed frame says — message id, signing node, creation time, Status — so the CAP
document cannot claim more than the frame did (an exercise stays an Exercise). A read receipt becomes
CAP's standard receipt (msgType Ack referencing the original). Import accepts a CAP document posted as
the request body, maps it with ``hub.console.cap.import_cap`` and sends it as an ALERT with the document's own
status to every care home or one node; the log book records the import, any text cut to fit and any
element not carried on.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub.console.cap import CapHeader, CapReference, export_alert, export_receipt, import_cap
from hub.console.service import Console
from hub.console.users import Session
from hub.core.errors import ProtocolError
from hub.core.frame import BROADCAST, Kind, Priority, Status

MAX_CAP = 256 * 1024
_STATUS = {"actual": Status.ACTUAL, "exercise": Status.EXERCISE, "test": Status.TEST}
_PRIORITY = {"Extreme": Priority.LIFE_SAFETY, "Severe": Priority.URGENT}


def sender_of(node: str) -> str:
    """A CAP sender for a Beredt node: no spaces, commas, '<' or '&', unique per node."""
    return f"beredt:{node}"


async def _reference(console: Console, message_id: str) -> CapReference | None:
    try:
        raw = bytes.fromhex(message_id)
    except ValueError:
        return None
    message = await console.hub.store.message(raw)
    if message is None:
        return None
    item = console.decode(message)
    return CapReference(sender_of(item["from"]), item["id"], int(item["created"]))


def _copies(console: Console, originals: list[str]) -> list[CapReference]:
    """This hub's received Beredt copies of the outside messages (``sender,identifier,sent``) named,
    in the order the originals are named."""
    order = {tuple(text.split(",")[:2]): index for index, text in enumerate(originals)}
    found = [
        (order[key], CapReference(sender_of(item["from"]), item["id"], int(item["created"])))
        for item in console.messages
        if item["kind"] == "alert"
        and (origin := item["body"].get("origin")) is not None
        and (key := (origin["sender"], origin["identifier"])) in order
    ]
    found.sort(key=lambda row: (row[0], row[1].sent))
    return [ref for _, ref in found]


async def export_cap(request: web.Request, console: Console, session: Session) -> web.Response:
    """``GET cap/{id}``: the CAP document for a stored ALERT or READ_RECEIPT, sent or received."""
    message_id = request.match_info["id"]
    try:
        message = await console.hub.store.message(bytes.fromhex(message_id))
    except ValueError:
        message = None
    if message is None:
        return web.json_response({"error": f"no message {message_id}"}, status=404)
    item = console.decode(message)
    body: Any = item["body"]
    header = CapHeader(item["id"], sender_of(item["from"]), int(item["created"]), _STATUS[item["status"]],
                       sender_name=item["from_name"])  # fmt: skip
    if item["kind"] == "alert":
        known = {
            ref: found for ref in body.get("references", []) if (found := await _reference(console, ref))
        }
        copies = _copies(console, body.get("origin", {}).get("references", []))
        xml = export_alert(body, header, known=known, copies=copies)
    elif item["kind"] == "read_receipt":
        original = await _reference(console, body["message"])
        if original is None:
            return web.json_response(
                {"error": f"the message read ({body['message']}) is not stored here"}, status=409
            )
        xml = export_receipt(
            original, header, note=f"Læst og forstået af {body.get('by', item['from_name'])}"
        )
    else:
        raise ValueError(f"kind: kun varsler og læst-kvitteringer har en CAP-form, ikke {item['kind']}")
    disposition = f'attachment; filename="{item["id"]}.cap.xml"'
    return web.Response(
        text=xml, content_type="application/xml", headers={"Content-Disposition": disposition}
    )


async def import_and_send(request: web.Request, console: Console, session: Session) -> web.Response:
    """``POST cap?to=<node|*>``: a CAP document in the body, sent on as an ALERT (default: all care homes)."""
    # read(), not the stream: a guarded server has read the body already (hub.core.bounded_http) and
    # keeps it for read(); the app's client_max_size bounds it
    document = await request.read()
    if len(document) > MAX_CAP:
        raise ValueError(f"body: et CAP-dokument på over {MAX_CAP} bytes")
    try:
        imported = import_cap(document)
    except ProtocolError as exc:
        raise ValueError(str(exc)) from exc
    to = request.query.get("to", "care-homes")
    if to == "care-homes":
        recipients = [bytes.fromhex(node) for node in console.institutions()]
    elif to == "*":
        recipients = [BROADCAST]
    else:
        try:
            recipients = [bytes.fromhex(to)]
        except ValueError:
            raise ValueError(f"to: forventede et node-id, '*' eller 'care-homes', fik {to!r}") from None
    if not recipients:
        raise ValueError("to: ingen plejehjem i rosteren")
    priority = _PRIORITY.get(imported.body["severity"], Priority.NORMAL)
    what = f"CAP {imported.identifier} fra {imported.sender} videresendt: {imported.body['event']}"
    if imported.truncated:
        what += f" (forkortet: {', '.join(imported.truncated)})"
    if imported.not_kept:
        what += f" (ikke videresendt: {', '.join(imported.not_kept)})"
    ids = [
        await console.send(Kind.ALERT, node, imported.body, author=session.user.username, priority=priority,
                           status=imported.status, what=what)
        for node in recipients
    ]  # fmt: skip
    answer = {"ids": ids, "truncated": list(imported.truncated), "not_kept": list(imported.not_kept)}
    return web.json_response(answer, status=202)
