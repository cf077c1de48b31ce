"""The store at rest: frames sealed under day keys outside the file, legacy rows resealed, retention and
erasure destroy what they must."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from hub.core.at_rest import KEY_FOLDER, DataKeys, Retention
from hub.core.errors import DataErased, SealError
from hub.core.frame import Kind, decode_frame
from hub.core.identity import Identity
from hub.relay.store import Store
from tests.inproc import eventually

ME = Identity.generate("Aarhus", "staff")
HOP = bytes.fromhex("00112233445566aa")
PERSON = b"Karen Margrethe Vinterberg, CPR 170345-1234"


def frame(payload: bytes, kind: Kind = Kind.TEXT, created: int | None = None) -> bytes:
    return ME.sign(kind, HOP, payload, created=created or int(time.time()), ttl_minutes=60).encode()


async def accept(store: Store, wire: bytes, *, now: float | None = None, for_me: bool = False) -> bytes:
    decoded = decode_frame(wire)
    hops = [] if for_me else [HOP]
    await store.accept(decoded, wire, hops=hops, local=False, for_me=for_me, via=None, now=now)
    return decoded.id


def file_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.glob("s.db*"))


async def test_a_copied_store_file_holds_no_frame_but_the_hub_reads_it(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    wire = frame(PERSON)
    message_id = await accept(store, wire, for_me=True)
    await store.flush()
    assert b"Vinterberg" not in file_bytes(tmp_path) and b"170345" not in file_bytes(tmp_path)
    stored = await store.message(message_id)
    assert stored is not None and stored.wire == wire
    assert [m.wire for m in await store.inbox()] == [wire]
    await store.close()
    assert b"Vinterberg" not in file_bytes(tmp_path)
    keys = list((tmp_path / KEY_FOLDER).iterdir())
    assert len(keys) == 1 and keys[0].stat().st_mode & 0o077 == 0
    reopened = await Store.open(tmp_path / "s.db")
    try:
        assert (await reopened.message(message_id)) == stored
    finally:
        await reopened.close()


async def test_rows_written_before_sealing_stay_readable_and_are_sealed_after_open(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    wires = [frame(PERSON + bytes([i])) for i in range(3)]
    ids = [await accept(store, wire) for wire in wires]
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as db:  # as an older version left it: plain frames, no key
        for message_id, wire in zip(ids, wires, strict=True):
            db.execute("UPDATE messages SET wire=?, key_id=NULL WHERE id=?", (wire, message_id))
    db.close()
    assert b"Vinterberg" in file_bytes(tmp_path)

    reopened = await Store.open(tmp_path / "s.db")
    try:
        assert reopened.live_messages == 3
        for message_id, wire in zip(ids, wires, strict=True):
            stored = await reopened.message(message_id)
            assert stored is not None and stored.wire == wire

        assert reopened._resealer is not None
        await eventually(reopened._resealer.done, timeout=60)
        assert reopened._resealer.result() == 3
        assert [(await reopened.message(i)) is not None for i in ids] == [True] * 3
    finally:
        await reopened.close()
    assert b"Vinterberg" not in (tmp_path / "s.db").read_bytes()


async def test_retention_deletes_the_messages_and_destroys_their_day_key(tmp_path: Path) -> None:
    retention = Retention(days=30, by_kind={"status": 2})
    store = await Store.open(tmp_path / "s.db", retention=retention)
    now = time.time()
    old_status = await accept(store, frame(b"beboer Vinterberg", Kind.STATUS, int(now) - 3 * 86400),
                              now=now - 3 * 86400)  # fmt: skip
    old_text = await accept(store, frame(b"Vinterberg", created=int(now) - 3 * 86400), now=now - 3 * 86400)
    fresh = await accept(store, frame(b"i dag"))
    try:
        shredded, keys = await store.shred(now)
        assert shredded == 1 and keys == [DataKeys.key_id(now - 3 * 86400, 2)]
        assert not (tmp_path / KEY_FOLDER / f"{keys[0]}.key").exists()
        assert await store.message(old_status) is None and not store.has(old_status)
        assert await store.message(old_text) is not None and await store.message(fresh) is not None
        assert store.live_messages == 2
    finally:
        await store.close()


async def test_an_erased_message_is_gone_but_its_replay_still_refused(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    erased = await accept(store, frame(PERSON))
    kept = await accept(store, frame(b"ikke personligt"))
    try:
        assert await store.erase([erased]) == 1
        await store.flush()
        assert await store.message(erased) is None and store.has(erased)
        assert store.live_messages == 1
        assert await store.erase([erased]) == 0
    finally:
        await store.close()
    reopened = await Store.open(tmp_path / "s.db")
    try:
        assert reopened.has(erased) and await reopened.message(erased) is None
        assert await reopened.message(kept) is not None and reopened.live_messages == 1
    finally:
        await reopened.close()


async def test_a_lost_day_key_quarantines_its_messages_instead_of_deleting_them(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    lost = await accept(store, frame(PERSON))
    await store.close()
    for key in (tmp_path / KEY_FOLDER).iterdir():
        key.unlink()
    reopened = await Store.open(tmp_path / "s.db")
    try:
        assert reopened.quarantined == 1 and not reopened.has(lost)
    finally:
        await reopened.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        (reason,) = db.execute("SELECT reason FROM quarantine").fetchone()
    db.close()
    assert "is missing" in reason and KEY_FOLDER in reason


def test_a_clock_that_reads_1970_never_files_data_under_a_day_that_is_long_over(tmp_path: Path) -> None:
    keys = DataKeys(tmp_path / KEY_FOLDER)
    today = keys.key_for(time.time(), 60)
    keys.seal(today, b"x", b"place")
    assert keys.key_for(3600.0, 60) == today, "a Pi booted without its clock keeps today's day"
    fresh = DataKeys(tmp_path / "other")
    assert fresh.key_for(3600.0, 60) == "2025-01-01.60d"  # nothing held yet: no earlier than 2025
    assert DataKeys(tmp_path / KEY_FOLDER).key_for(0.0, 60) == today  # read back from the folder


def test_what_a_person_may_read_of_a_day_key_failure_is_danish(tmp_path: Path) -> None:
    keys = DataKeys(tmp_path / KEY_FOLDER)
    today = keys.key_for(time.time(), 60)
    sealed = keys.seal(today, b"x", b"place")
    with pytest.raises(SealError, match=r"^de gemte data kan ikke åbnes med dagsnøglen .*beskadiget række"):
        keys.open(today, sealed, b"another place")
    with pytest.raises(SealError, match=r"^'\.\./x' er ikke navnet på en dagsnøgle$"):
        keys.open("../x", sealed, b"place")
    keys.destroy(today)
    with pytest.raises(
        DataErased, match=rf"^dagsnøglen {today} er destrueret: det, den krypterede, er slettet$"
    ):
        DataKeys(tmp_path / KEY_FOLDER).open(today, sealed, b"place")
