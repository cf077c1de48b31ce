"""The console's HTTP API between two real hubs: login, CSRF, roles, a roll-call answered over the link,
escalation past the deadline, read receipts, the log book and the live event stream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from hub.console.options import ConsoleOptions
from hub.core.clock import ManualClock
from hub.core.frame import Kind
from hub.core.kinds import encode_payload
from hub.relay.events import Overflow, RadioStatus
from tests.console.conftest import PASSWORD, Pair
from tests.inproc import eventually


class Client:
    """A browser-like client: cookie jar plus the CSRF header after login."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base, self.csrf = session, base, ""

    async def login(self, username: str, password: str = PASSWORD) -> dict[str, object]:
        status, body = await self.call("POST", "login", {"username": username, "password": password})
        assert status == 200, body
        self.csrf = str(body["csrf"])
        return body

    async def call(
        self, method: str, path: str, body: object = None, *, csrf: bool = True
    ) -> tuple[int, dict]:
        headers = {"X-CSRF-Token": self.csrf} if csrf and self.csrf else {}
        async with self.session.request(
            method, f"{self.base}/console/api/{path}", json=body, headers=headers
        ) as r:
            return r.status, (
                await r.json() if r.content_type == "application/json" else {"text": await r.text()}
            )

    async def ok(self, method: str, path: str, body: object = None) -> dict:
        status, data = await self.call(method, path, body)
        assert status < 300, (status, data)
        return data


@pytest.fixture
async def clients(pair: Pair) -> AsyncIterator[Callable[[str], Client]]:
    sessions: list[aiohttp.ClientSession] = []

    def make(base: str) -> Client:
        session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        sessions.append(session)
        return Client(session, base)

    yield make
    for session in sessions:
        await session.close()


async def test_login_csrf_and_roles(pair: Pair, clients: Callable[[str], Client]) -> None:
    staff = clients(pair.staff.url)
    status, body = await staff.call("GET", "me")
    assert status == 401 and body["error"] == "ikke logget ind"
    status, body = await staff.call("POST", "login", {"username": "hansen", "password": "forkert-kodeord"})
    assert status == 401 and "forkert brugernavn eller adgangskode" in body["error"]
    me = await staff.login("hansen")
    assert me["role"] == "coordinator" and me["institutions"] == [
        {"node": pair.care.hub.node_id.hex(), "name": "Plejecenter Lindely"}
    ]
    status, body = await staff.call("POST", "logbook", {"type": "note", "text": "uden token"}, csrf=False)
    assert status == 403 and "CSRF" in body["error"]
    viewer = clients(pair.staff.url)
    await viewer.login("laeser")
    status, body = await viewer.call("POST", "rollcalls", {"question": "?"})
    assert status == 403 and "rollen viewer må ikke" in body["error"]
    assert (await viewer.ok("GET", "board"))["institutions"][0]["name"] == "Plejecenter Lindely"
    await staff.ok("POST", "logout")
    status, _ = await staff.call("GET", "me")
    assert status == 401


async def test_pages_are_served_with_a_strict_policy(pair: Pair, clients: Callable[[str], Client]) -> None:
    client = clients(pair.staff.url)
    async with client.session.get(f"{pair.staff.url}/console/") as response:
        assert response.status == 200
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "Beredt" in await response.text()
    async with client.session.get(f"{pair.staff.url}/console/static/i18n/da.json") as response:
        assert (await response.json())["btn_ok"] == "Alt OK"
    async with client.session.get(f"{pair.staff.url}/console/static/../routes.py") as response:
        assert response.status in (403, 404)


async def test_roll_call_answered_from_the_care_home_reaches_the_board(
    pair: Pair, clients: Callable[[str], Client]
) -> None:
    staff, care = clients(pair.staff.url), clients(pair.care.url)
    await staff.login("hansen")
    await care.login("lindely")
    request = (await staff.ok("POST", "rollcalls", {"question": "Meld status", "minutes": 30}))["request"]
    await eventually(lambda: pair.care.console.open_rollcall() is not None, 60)  # generous: a loaded machine
    opened = (await care.ok("GET", "messages"))["open_rollcall"]
    assert opened["body"]["request"] == request and opened["body"]["question"] == "Meld status"
    await care.ok(
        "POST", "status", {"preset": "help", "power": "generator", "fuel_hours": 6, "needs": ["oxygen"]}
    )
    assert (await care.ok("GET", "messages"))["open_rollcall"] is None

    def answered() -> bool:  # the roll-call itself may already be closed and archived
        return [row["rollcall"] for row in pair.staff.console.board_rows()] == ["answered"]

    await eventually(answered, 60)
    (summary,) = (await staff.ok("GET", "rollcalls"))["rollcalls"]
    target = summary["targets"][0]
    assert target["state"] == "answered" and target["answer"]["link"] == "memory"
    assert target["answer"]["body"]["needs"] == ["oxygen"]
    (row,) = (await staff.ok("GET", "board"))["institutions"]
    assert row["concern"] == "help" and row["status"]["fuel_hours"] == 6 and row["last_link"] == "memory"
    # entries of received messages written at once here (conftest), so the entry is already there
    log = (await staff.ok("GET", "logbook"))["entries"]
    assert any(e["type"] == "sent" and request in e["text"] for e in log)
    assert any(e["type"] == "received" and "status fra Plejecenter Lindely" in e["text"] for e in log)


@pytest.fixture
def manual() -> ManualClock:
    import time

    return ManualClock(start=time.time())


@pytest.fixture
def console_options(manual: ManualClock) -> ConsoleOptions:
    # received messages' log-book entries written at once: a test reads the book right after the board
    return ConsoleOptions(tick_interval=0.05, resend_window=300, clock=manual, logbook_received_interval=0.0)


async def test_unanswered_roll_call_is_resent_then_escalated(
    pair: Pair, clients: Callable[[str], Client], manual: ManualClock
) -> None:
    staff = clients(pair.staff.url)
    await staff.login("hansen")
    await pair.care.hub.links.transports["memory"].aclose()  # the care home's only link dies
    request = (await staff.ok("POST", "rollcalls", {"minutes": 30}))["request"]
    manual.advance(30 * 60)

    async def decisions() -> list[str]:
        return [e["text"] for e in (await staff.ok("GET", "logbook"))["entries"] if e["type"] == "decision"]

    for _ in range(400):
        if await decisions():
            break
        await asyncio.sleep(0.05)
    # one link only: nothing to resend over, so the board says to send someone
    (decision,) = await decisions()
    assert decision.startswith(f"Ingen kontakt med Plejecenter Lindely (statusrunde {request}")
    assert decision.endswith("send nogen ud")
    (row,) = (await staff.ok("GET", "board"))["institutions"]
    assert row["concern"] == "critical" and row["rollcall"] == "escalated"


async def test_read_receipt_goes_back_to_the_sender(pair: Pair, clients: Callable[[str], Client]) -> None:
    staff, care = clients(pair.staff.url), clients(pair.care.url)
    await staff.login("hansen")
    await care.login("lindely")
    alert = {"event": "Stormflod", "urgency": "Immediate", "severity": "Severe", "certainty": "Likely",
             "instruction": "Flyt beboere fra stueetagen"}  # fmt: skip
    await staff.ok("POST", "messages", {"to": pair.care.hub.node_id.hex(), "kind": "alert", "body": alert,
                                        "priority": "urgent"})  # fmt: skip
    await eventually(lambda: any(m["kind"] == "alert" for m in pair.care.console.messages))
    message_id = next(m["id"] for m in pair.care.console.messages if m["kind"] == "alert")
    await care.ok("POST", f"read/{message_id}")
    assert next(m for m in (await care.ok("GET", "messages"))["messages"] if m["id"] == message_id)["read"]
    await eventually(lambda: any(m["kind"] == "read_receipt" for m in pair.staff.console.messages))
    receipt = next(m for m in pair.staff.console.messages if m["kind"] == "read_receipt")
    assert receipt["body"]["message"] == message_id and receipt["body"]["by"] == "Nattevagt Lindely"
    status, body = await care.call("POST", f"read/{'0' * 32}")
    assert status == 400 and "ingen modtaget besked" in body["error"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("rollcalls", {"minutes": 0}, "minutes: forventede et helt antal"),
        ("rollcalls", {"institutions": ["ffffffffffffffff"]}, "ingen plejehjem"),
        ("messages", {"to": "nowhere", "kind": "text", "body": "x"}, "to: forventede et node-id"),
        ("messages", {"to": "*", "kind": "rollcall", "body": {}}, "kan ikke skrives her"),
        ("messages", {"to": "*", "kind": "sitrep", "body": {"number": 1}}, r"sitrep.phase: feltet mangler"),
        ("messages", {"to": "*", "kind": "text", "body": "x", "priority": "asap"}, "priority: ukendt"),
        ("logbook", {"type": "sent", "text": "forfalsket"}, "type: forventede decision"),
        ("logbook", {"type": "note", "text": " "}, "text: forventede 1 til 4000"),
    ],
)
async def test_bad_requests_name_the_field(
    pair: Pair, clients: Callable[[str], Client], path: str, body: object, message: str
) -> None:
    staff = clients(pair.staff.url)
    await staff.login("hansen")
    status, data = await staff.call("POST", path, body)
    assert status == 400 and message.replace("\\", "") in data["error"].replace("\\", ""), data


async def test_bad_status_from_an_institution_is_refused(
    pair: Pair, clients: Callable[[str], Client]
) -> None:
    care = clients(pair.care.url)
    await care.login("lindely")
    status, data = await care.call("POST", "status", {"preset": "ok", "fuel_hours": -3})
    assert status == 400 and "status.fuel_hours: -3 ligger uden for" in data["error"]
    status, data = await care.call("POST", "status", {"preset": "panic"})
    assert status == 400 and "preset: forventede en af ok, help, emergency" in data["error"]


async def test_live_events_stream_to_the_browser(pair: Pair, clients: Callable[[str], Client]) -> None:
    staff, care = clients(pair.staff.url), clients(pair.care.url)
    await staff.login("hansen")
    await care.login("lindely")
    async with staff.session.get(f"{pair.staff.url}/console/api/events") as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        await care.ok("POST", "status", {"preset": "ok"})
        topics: list[str] = []
        async with asyncio.timeout(20):
            while not {"board", "message"} <= set(topics):  # in either order: each is its own event
                line = (await stream.content.readline()).decode()
                if line.startswith("event: "):
                    topics.append(line[7:].strip())
                elif line.startswith("data: "):
                    json.loads(line[6:])
        assert "message" in topics
    assert pair.staff.console.messages[0]["kind"] == Kind.STATUS.name.lower()


async def test_log_book_is_read_a_page_at_a_time_and_live_events_carry_new_entries(
    pair: Pair, clients: Callable[[str], Client]
) -> None:
    staff = clients(pair.staff.url)
    await staff.login("hansen")
    for n in range(5):
        await staff.ok("POST", "logbook", {"type": "note", "text": f"notat {n}"})
    first = await staff.ok("GET", "logbook?limit=2")
    assert [e["note"] for e in first["entries"]] == ["notat 4", "notat 3"]  # typed: kept beside the book
    assert all(e["text"].startswith("tekst ") and "notat" not in e["text"] for e in first["entries"])
    assert first["more"] and first["broken"] is None
    older = await staff.ok("GET", f"logbook?limit=2&before={first['entries'][-1]['seq']}")
    assert [e["note"] for e in older["entries"]] == ["notat 2", "notat 1"]
    for query, field in (("limit=201", "limit"), ("before=x", "before")):
        status, data = await staff.call("GET", f"logbook?{query}")
        assert status == 400 and data["error"].startswith(field), data
    async with staff.session.get(f"{pair.staff.url}/console/api/events") as stream:
        await staff.ok("POST", "logbook", {"type": "decision", "text": "live"})
        async with asyncio.timeout(20):
            while True:
                line = (await stream.content.readline()).decode()
                if line.startswith("data: ") and '"live"' in line:
                    break
    event = json.loads(line[6:])
    assert [(e["type"], e["note"]) for e in event["entries"]] == [("decision", "live")]
    assert event["gap"] is False


async def test_messages_whose_events_were_lost_are_still_picked_up(pair: Pair) -> None:
    care = pair.care.hub.identity
    payload = encode_payload(Kind.STATUS, {"facility": "Compromised", "needs": ["heat"]})
    frame = care.sign(Kind.STATUS, pair.staff.hub.node_id, payload, created=int(time.time()), ttl_minutes=60)
    # stored, as the inbound pipeline would, but the console never hears of it...
    await pair.staff.hub.store.accept(frame, frame.encode(), hops=[], local=False, for_me=True, via="memory")
    await asyncio.sleep(0.3)
    assert not pair.staff.console.messages
    # ...until the bus reports that it dropped events
    pair.staff.hub.events.publish(Overflow(1))
    await eventually(lambda: len(pair.staff.console.messages) == 1)
    assert pair.staff.console.board_rows()[0]["concern"] == "help"
    pair.staff.hub.events.publish(Overflow(1))
    await asyncio.sleep(0.3)
    assert len(pair.staff.console.messages) == 1  # read again, folded in once
    entries = [e.text for e in await pair.staff.console.logbook.entries() if e.type == "received"]
    assert entries == [
        f"status fra Plejecenter Lindely via memory: påvirket, mangler varme [id {frame.id.hex()}]"
    ]


async def test_a_clock_set_back_does_not_hide_new_messages(
    pair: Pair, clients: Callable[[str], Client]
) -> None:
    pair.staff.console._watermark = time.time() + 3600  # as if the hub's clock had run an hour fast
    care = clients(pair.care.url)
    await care.login("lindely")
    await care.ok("POST", "status", {"preset": "ok"})
    await eventually(lambda: len(pair.staff.console.messages) == 1)


async def test_sine_radio_status_reaches_the_board_and_log_book(pair: Pair) -> None:
    care = pair.care.hub.node_id.hex()
    pair.staff.hub.events.publish(RadioStatus("memory", "care", care, "needs-power", 0x8002))
    await eventually(lambda: pair.staff.console.board_rows()[0]["radio"] is not None)
    (row,) = pair.staff.console.board_rows()
    assert (
        row["concern"] == "help" and row["radio"]["status"] == "needs-power" and row["last_link"] == "memory"
    )
    pair.staff.hub.events.publish(RadioStatus("memory", "6001234", None, None, 0x9ABC))
    await eventually(lambda: len(pair.staff.console.board_rows()) == 2)
    stranger = next(r for r in pair.staff.console.board_rows() if r["node"] == "memory:6001234")
    assert stranger["name"] == "memory 6001234" and stranger["concern"] == "help"
    texts = [e.text for e in await pair.staff.console.logbook.entries() if e.type == "received"]
    assert texts == [
        "memory-status fra Plejecenter Lindely: needs-power (0x8002)",
        "memory-status fra memory 6001234: uden for statusplanen (0x9ABC)",
    ]
