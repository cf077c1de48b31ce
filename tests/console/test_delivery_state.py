"""Delivery state per recipient through the console's API between two real hubs: a message is
'delivered' only once the recipient's end-to-end ack is in and 'read' once its receipt names it; a kind
the sender's role may not send is refused before anything is stored, with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from hub.console.options import ConsoleOptions
from hub.core.errors import RoutingError
from hub.core.frame import Kind
from hub.core.kinds import encode_payload
from tests.console.conftest import Pair
from tests.console.test_routes import Client, clients  # noqa: F401 - the fixture


async def test_each_recipient_goes_from_sent_to_delivered_to_read(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    staff, care = clients(pair.staff.url), clients(pair.care.url)
    await staff.login("hansen")
    await care.login("lindely")
    sent = await staff.ok("POST", "messages", {"to": "*", "kind": "text", "body": "Brændstof kommer kl. 14",
                                               "priority": "urgent"})  # fmt: skip
    (message_id,) = sent["ids"]

    async def state_of() -> dict[str, object]:
        rows = (await staff.ok("GET", "sent"))["sent"]
        return next(r for r in rows if r["id"] == message_id)

    async def until(state: str) -> dict[str, object]:
        deadline = asyncio.get_running_loop().time() + 20
        while (row := await state_of())["state"] != state:
            assert asyncio.get_running_loop().time() < deadline, f"still {row['state']}, not {state}"
            await asyncio.sleep(0.05)
        return row

    row = await until("delivered")
    assert row["to_name"] == "Plejecenter Lindely" and row["delivered_at"] is not None
    assert row["summary"] == "Brændstof kommer kl. 14" and row["batch"] == sent["batch"]

    # the care home's console lists a message once it has opened and logged it, which may be a moment
    # after the hub's end-to-end ack went back: read it from the list, as a person would
    deadline = asyncio.get_running_loop().time() + 20
    while message_id not in [m["id"] for m in (await care.ok("GET", "messages"))["messages"]]:
        assert asyncio.get_running_loop().time() < deadline, "the care home's console never listed it"
        await asyncio.sleep(0.05)
    await care.ok("POST", f"read/{message_id}")

    assert (await until("read"))["read_by"] == "Nattevagt Lindely"
    receipts = [m for m in (await staff.ok("GET", "messages"))["messages"] if m["kind"] == "read_receipt"]
    assert receipts[0]["about"]["summary"] == "Brændstof kommer kl. 14"  # the receipt names the message
    board = (await staff.ok("GET", "board"))["institutions"]
    assert board[0]["contact"]["alarms"] == [] and board[0]["contact"]["last_link"] == "memory"


async def test_the_next_sitrep_number_is_kept_and_a_used_one_refused(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    staff = clients(pair.staff.url)
    me = await staff.login("hansen")
    assert me["sitrep_next"] == 1 and me["timezone"] in ("Europe/Copenhagen", "UTC")
    body = {"number": 1, "phase": "Initial", "summary": "Strømsvigt"}
    await staff.ok("POST", "messages", {"to": "*", "kind": "sitrep", "body": body})
    assert (await staff.ok("GET", "me"))["sitrep_next"] == 2
    status, refused = await staff.call("POST", "messages", {"to": "*", "kind": "sitrep", "body": body})
    assert status == 400 and "allerede sendt; den næste er 2" in refused["error"]


async def test_a_kind_the_role_may_not_send_is_refused_before_it_is_stored(pair: Pair) -> None:
    care = pair.care.hub
    before = care.store.live_messages
    payload = encode_payload(Kind.SITREP, {"number": 1, "phase": "Initial", "summary": "x"})
    with pytest.raises(RoutingError, match="en institutions hub må ikke sende sitrep-beskeder"):
        await care.submit(Kind.SITREP, pair.staff.hub.node_id, payload)
    assert care.store.live_messages == before


@pytest.fixture
def console_options() -> ConsoleOptions:
    return ConsoleOptions(tick_interval=0.1, keepalive=0.2)


async def test_a_quiet_live_stream_stays_open_past_its_keepalives(
    pair: Pair,
    clients: Callable[[str], Client],  # noqa: F811
) -> None:
    staff, care = clients(pair.staff.url), clients(pair.care.url)
    await staff.login("hansen")
    await care.login("lindely")
    async with staff.session.get(f"{pair.staff.url}/console/api/events") as stream:
        keepalives = 0
        async with asyncio.timeout(20):
            while keepalives < 3:  # a wait cancelled at each keepalive once ended the stream after the first
                keepalives += (await stream.content.readline()).startswith(b": keepalive")
            await care.ok("POST", "status", {"preset": "ok"})
            while not (await stream.content.readline()).startswith(b"event: message"):
                pass
