"""A store written before messages had a ``row`` and deliveries were keyed by it opens with every message,
delivery and queue position it held (the fixture is made by ``fixtures/make_store_before_rows.py``)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from hub.core.frame import Kind, decode_frame
from hub.core.identity import Identity
from hub.relay.delivery import DeliveryState
from hub.relay.store import Store
from tests.relay.test_store import all_pending

FIXTURE = Path(__file__).parent / "fixtures" / "store_before_rows"


def copied(tmp_path: Path) -> Path:
    """The fixture in a folder of the test's own, its day keys private again (git keeps no modes)."""
    folder = tmp_path / "data"
    shutil.copytree(FIXTURE, folder)
    keys = folder / "at-rest-keys"
    keys.chmod(0o700)
    for key in keys.iterdir():
        key.chmod(0o600)
    return folder / "store.db"


async def test_an_old_store_opens_keyed_by_row_with_every_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = copied(tmp_path)
    expected = json.loads((FIXTURE / "expected.json").read_text())
    caplog.set_level("INFO", logger="beredt.store")
    store = await Store.open(path)
    assert "keying 40 messages and 36 deliveries by row" in caplog.text
    for id_hex, old in expected["messages"].items():
        message = await store.message(bytes.fromhex(id_hex))
        assert (None if message is None else message.state) == old["state"], id_hex
        rows = await store.deliveries(bytes.fromhex(id_hex))
        assert {r.hop.hex(): [r.state, r.attempts, r.link] for r in rows} == old["deliveries"], id_hex
    assert [m.id.hex() async for m in store.every_message()] == [i for i in expected["order"] if i in {
        i for i, old in expected["messages"].items() if old["state"] is not None
    }]  # fmt: skip
    unfinished = {
        (id_hex, hop)
        for id_hex, old in expected["messages"].items()
        if old["state"] == "active"
        for hop, (state, _, _) in old["deliveries"].items()
        if state in ("queued", "sent")
    }
    assert {(p.message_id.hex(), p.hop.hex()) for p in await all_pending(store)} == unfinished
    assert await store.open_deliveries() == len(unfinished)

    # the new keys at work: a message accepted now, its delivery updated and resumed after a reopen
    me = Identity.generate("Aarhus", "staff")
    hop = bytes.fromhex("00112233445566aa")
    wire = me.sign(Kind.TEXT, hop, b"efter", created=int(time.time()), ttl_minutes=60).encode()
    new = decode_frame(wire)
    await store.accept(new, wire, hops=[hop], local=True, for_me=False, via=None)
    store.record_delivery(new.id, hop, DeliveryState.SENT, attempts=1, next_attempt=0, link="internet")
    await store.close()
    caplog.clear()
    store = await Store.open(path)
    assert "keying" not in caplog.text, "a store keyed by row is opened as it is"
    assert [(r.state, r.attempts) for r in await store.deliveries(new.id)] == [("sent", 1)]
    assert {(p.message_id.hex(), p.hop.hex()) for p in await all_pending(store)} == unfinished | {
        (new.id.hex(), hop.hex())
    }
    await store.close()
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(deliveries)")}
    assert "message_row" in columns and "message_id" not in columns
