"""``POST /enrol`` needs no key (a new node has none yet), so a stranger on the LAN can send it requests:
against a real ``beredt run`` hub holding the root key, a flood from one address of validly self-signed
cards and of junk is paced, refused with a clear answer and counted, and keeps only its own share of the
list, so a genuine request from another address stays for the coordinator to see."""

from __future__ import annotations

import base64
import http.client
import json
import re
from pathlib import Path

from hub.core.identity import Identity, PublicCard
from hub.core.kinds.roster import enrolment_code
from hub.relay.enrolment_requests import FILE_NAME, MAX_PER_SOURCE, request_statement
from tests.hubproc import HubProcess
from tests.hubs.test_municipal_roster import beredt

ATTACKER = "127.0.0.2"


def post_enrol(hub: HubProcess, body: bytes | list[bytes], *, source: str) -> tuple[int, dict[str, str]]:
    """POST ``body`` to the hub's ``/enrol`` from ``source``; a list of chunks is sent chunked (no length)."""
    connection = http.client.HTTPConnection("127.0.0.1", hub.api_port, timeout=15, source_address=(source, 0))
    try:
        connection.request("POST", "/enrol", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def request_body(identity: Identity) -> bytes:
    signature = identity.sign_statement(request_statement(identity.card))
    return json.dumps(
        {"card": identity.card.encode(), "signature": base64.b64encode(signature).decode()}
    ).encode()


def test_an_enrolment_flood_is_paced_counted_and_cannot_push_out_a_genuine_request(tmp_path: Path) -> None:
    out = beredt("root", "init", "--out", str(tmp_path / "usb" / "root.key"))
    root = re.search(r'root = "([^"]+)"', out)
    assert root, out
    staff = HubProcess.create(tmp_path / "staff", "Aarhus krisestab", "staff")
    staff.config["trust"] = {"root": root[1], "root_key": str(tmp_path / "usb" / "root.key")}
    staff.write_config()
    staff.start()
    try:
        genuine = Identity.generate("Plejecenter Solbakken", "care-home")
        assert post_enrol(staff, request_body(genuine), source="127.0.0.1") == (
            202, {"code": enrolment_code(genuine.card)},
        )  # fmt: skip

        junk = post_enrol(staff, b'{"card": "beredt1:ikke et kort", "signature": ""}', source=ATTACKER)
        assert junk[0] == 400 and "kortet: et nodekort" in junk[1]["error"], junk
        # someone else's card, signed with the attacker's own key: refused, in Danish
        victim, thief = Identity.generate("Plejecenter Lærkely", "care-home"), Identity.generate("x", "relay")
        stolen = json.loads(request_body(thief))
        forged = json.dumps({"card": victim.card.encode(), "signature": stolen["signature"]}).encode()
        refused_forged = post_enrol(staff, forged, source=ATTACKER)
        assert refused_forged[0] == 400 and "kortets egen nøgle" in refused_forged[1]["error"], refused_forged
        oversized = post_enrol(staff, [b'{"card": "', b"x" * 3000, b'"}'], source=ATTACKER)
        assert oversized[0] == 400 and "2048 bytes" in oversized[1]["error"], oversized

        # Anyone can make a card and sign for it: the flood is of valid requests.
        answers = [
            post_enrol(staff, request_body(Identity.generate(f"flood {i}", "relay")), source=ATTACKER)
            for i in range(60)
        ]
        statuses = [status for status, _ in answers]
        assert set(statuses) == {202, 429} and statuses.count(202) >= MAX_PER_SOURCE, statuses
        busy = next(answer for status, answer in answers if status == 429)
        assert "prøv igen" in busy["error"]

        held = json.loads((staff.dir / "data" / FILE_NAME).read_text())
        assert enrolment_code(genuine.card) in {
            enrolment_code(PublicCard.decode(item["card"])) for item in held
        }
        assert sum(item["source"] == ATTACKER for item in held) == MAX_PER_SOURCE, held
        refused = staff.get("/healthz")["http_refused"]
        assert (refused["enrol_busy"], refused["enrol_invalid"]) == (statuses.count(429), 3), refused
    finally:
        staff.kill()
