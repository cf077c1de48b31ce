from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from hub.core.errors import StoreFull
from hub.core.frame import Kind, Priority, decode_frame
from hub.core.identity import Identity
from hub.relay.delivery import DeliveryState
from hub.relay.store import Store
from hub.relay.store_records import PendingDelivery
from tests.relay.engine_kit import as_if_disk_full

ME = Identity.generate("Aarhus", "staff")
HOP = bytes.fromhex("00112233445566aa")


def frame(priority: Priority = Priority.NORMAL, payload: bytes = b"x", created: int | None = None) -> bytes:
    return ME.sign(
        Kind.TEXT, HOP, payload, created=created or int(time.time()), ttl_minutes=60, priority=priority
    ).encode()


async def accept(store: Store, wire: bytes) -> bytes:
    from hub.core.frame import decode_frame

    decoded = decode_frame(wire)
    await store.accept(decoded, wire, hops=[HOP], local=True, for_me=False, via=None)
    return decoded.id


async def all_pending(store: Store, page: int = 3) -> list[PendingDelivery]:
    """Every pending delivery, read as the router resumes them: per hop, priority and page."""
    upto, found = await store.resume_bound(), []
    for hop in await store.pending_hops():
        for priority in Priority:
            after = (0.0, 0)
            while (read := await store.pending(hop, priority, after=after, upto=upto, limit=page)).deliveries:
                found += read.deliveries
                after = read.after
    return found


async def test_accepted_messages_survive_reopen_and_resume(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    ids = [await accept(store, frame(payload=bytes([i]))) for i in range(10)]
    store.record_delivery(ids[0], HOP, DeliveryState.HOP_ACKED, attempts=1, next_attempt=0, link="internet")
    store.record_delivery(ids[1], HOP, DeliveryState.SENT, attempts=1, next_attempt=0, link="internet")
    await store.close()

    reopened = await Store.open(tmp_path / "s.db")
    pending = await all_pending(reopened)
    assert sorted(p.message_id for p in pending) == sorted(ids[1:])
    assert {p.hop for p in pending} == {HOP}
    assert reopened.live_messages == 10
    await reopened.close()


async def test_concurrent_accepts_share_commits(tmp_path: Path) -> None:
    import asyncio

    store = await Store.open(tmp_path / "s.db")
    await asyncio.gather(*(accept(store, frame(payload=i.to_bytes(2, "big"))) for i in range(200)))
    assert store.commits < 200, "writes arriving together are committed together"
    assert len(await all_pending(store)) == 200
    await store.close()


async def test_quota_evicts_lowest_priority_first_and_never_life_safety(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(tmp_path / "s.db", max_messages=3)
    routine = await accept(store, frame(Priority.ROUTINE, b"r"))
    life = await accept(store, frame(Priority.LIFE_SAFETY, b"l"))
    normal = await accept(store, frame(Priority.NORMAL, b"n"))
    urgent = await accept(store, frame(Priority.URGENT, b"u"))  # evicts routine, loudly
    assert "evicted message " + routine.hex() in caplog.text
    states = {m: (await store.message(m)).state for m in (routine, life, normal, urgent)}  # type: ignore[union-attr]
    assert states == {routine: "evicted", life: "active", normal: "active", urgent: "active"}
    await accept(store, frame(Priority.LIFE_SAFETY, b"l2"))  # evicts normal
    with pytest.raises(StoreFull, match="nothing of lower priority"):
        await accept(store, frame(Priority.ROUTINE, b"r2"))
    assert (await store.message(life)).state == "active"  # type: ignore[union-attr]
    await store.close()


async def test_expired_messages_go_first(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db", max_messages=2)
    old = await accept(store, frame(Priority.LIFE_SAFETY, b"old", created=int(time.time()) - 7200))
    await accept(store, frame(Priority.ROUTINE, b"a"))
    await accept(store, frame(Priority.ROUTINE, b"b"))
    assert (await store.message(old)).state == "expired"  # type: ignore[union-attr]
    await store.close()


async def test_full_disk_refuses_and_keeps_what_was_accepted(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    kept = await accept(store, frame(payload=b"kept"))
    await as_if_disk_full(store)
    with pytest.raises(StoreFull, match="full"):
        for i in range(200):
            await accept(store, frame(payload=i.to_bytes(2, "big") * 400))
    await store.close()
    reopened = await Store.open(tmp_path / "s.db")
    assert (await reopened.message(kept)) is not None
    assert reopened.live_messages >= 1
    await reopened.close()


async def test_corrupt_database_is_reported_not_used(tmp_path: Path) -> None:
    from hub.core.errors import StoreError

    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        await Store.open(path)


async def test_concurrent_over_quota_accepts_evict_different_victims(tmp_path: Path) -> None:
    """Two accepts that both need room must not pick the same victim: the quota holds, and the live
    count matches the database."""
    import asyncio

    store = await Store.open(tmp_path / "s.db", max_messages=4)
    try:
        for i in range(4):
            await accept(store, frame(Priority.ROUTINE, bytes([i])))
        newcomers = [frame(Priority.NORMAL, b"new" + bytes([i])) for i in range(3)]
        await asyncio.gather(*(accept(store, wire) for wire in newcomers))
        await store.flush()
        async with store._db.execute("SELECT count(*) FROM messages WHERE state='active'") as cursor:
            row = await cursor.fetchone()
        assert row is not None
        assert (row[0], store.live_messages, store.evicted) == (4, 4, 3)
    finally:
        await store.close()


async def test_a_damaged_record_is_quarantined_and_the_rest_resumed(tmp_path: Path) -> None:
    import sqlite3

    store = await Store.open(tmp_path / "s.db")
    ids = [await accept(store, frame(payload=bytes([i]) * 20)) for i in range(4)]
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        (wire,) = db.execute("SELECT wire FROM messages WHERE id=?", (ids[1],)).fetchone()
        db.execute("UPDATE messages SET wire=? WHERE id=?", (wire[:-70] + wire[-69:], ids[1]))  # a byte lost
        db.execute("UPDATE messages SET priority=9 WHERE id=?", (ids[2],))
    db.close()

    reopened = await Store.open(tmp_path / "s.db")
    try:
        assert reopened.quarantined == 2
        assert sorted(p.message_id for p in await all_pending(reopened)) == sorted([ids[0], ids[3]])
        assert reopened.live_messages == 2 and not reopened.has(ids[1])
    finally:
        await reopened.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        reasons = dict(db.execute("SELECT message_id, reason FROM quarantine").fetchall())
    db.close()
    assert "does not open" in reasons[ids[1]] and "priority 9" in reasons[ids[2]]


async def test_a_lost_store_is_refused_unless_a_new_one_is_asked_for(tmp_path: Path) -> None:
    from hub.core.errors import StoreMissing

    store = await Store.open(tmp_path / "s.db")
    await accept(store, frame())
    await store.close()
    for part in ("s.db", "s.db-wal", "s.db-shm"):
        (tmp_path / part).unlink(missing_ok=True)
    with pytest.raises(StoreMissing, match="--new-store"):
        await Store.open(tmp_path / "s.db")
    (tmp_path / "s.db").write_bytes(b"")
    with pytest.raises(StoreMissing, match="empty"):
        await Store.open(tmp_path / "s.db")
    fresh = await Store.open(tmp_path / "s.db", new_store=True)
    assert fresh.live_messages == 0
    await fresh.close()
    await (await Store.open(tmp_path / "s.db")).close()  # from now on this is the hub's store


async def test_a_store_swapped_for_another_is_refused_and_an_old_mark_still_counts(tmp_path: Path) -> None:
    from hub.core.errors import StoreMissing

    ours, other = tmp_path / "ours" / "store.db", tmp_path / "other" / "store.db"
    for path in (ours, other):
        await (await Store.open(path)).close()
    ours.write_bytes(other.read_bytes())  # another hub's store, or an old copy, put in its place
    with pytest.raises(StoreMissing, match="not the store this hub had"):
        await Store.open(ours)
    await (await Store.open(ours, new_store=True)).close()
    await (await Store.open(ours)).close()

    # A hub that kept only the older mark beside its store: a lost store is still refused, and the first
    # start with the store present moves the evidence to the record.
    legacy = tmp_path / "legacy" / "store.db"
    await (await Store.open(legacy)).close()
    (legacy.parent / "identity.store-id").unlink()
    (legacy.parent / "store.db.created").write_text("2026-01-01 12:00:00 UTC\n")
    await (await Store.open(legacy)).close()
    assert not (legacy.parent / "store.db.created").exists()
    assert (legacy.parent / "identity.store-id").exists()
    (legacy.parent / "identity.store-id").unlink()
    (legacy.parent / "store.db.created").write_text("2026-01-01 12:00:00 UTC\n")
    legacy.unlink()
    with pytest.raises(StoreMissing, match="missing"):
        await Store.open(legacy)


async def test_purge_deletes_in_small_batches_and_a_new_store_frees_the_pages(tmp_path: Path) -> None:
    from hub.core.frame import decode_frame
    from hub.relay.store import PURGE_BATCH
    from tests.inproc import eventually

    store = await Store.open(tmp_path / "s.db")
    count = PURGE_BATCH * 2 + 100
    wires = [frame(payload=i.to_bytes(4, "big") + bytes(1000)) for i in range(count)]
    await asyncio.gather(
        *(store.accept(decode_frame(w), w, hops=[], local=False, for_me=True, via="internet") for w in wires)
    )
    kept = await accept(store, frame(payload=b"still live"))  # active: never purged
    commits = store.commits
    assert await store.purge(time.time() + 2 * 3600) == count
    assert store.commits - commits >= 3, "one commit per batch"
    assert await store.inbox() == [] and store.has(kept)
    await eventually(lambda: _pages_freed(store), timeout=30)
    await store.close()


def _pages_freed(store: Store) -> bool:
    import sqlite3

    with sqlite3.connect(store.path) as raw:
        return int(raw.execute("PRAGMA freelist_count").fetchone()[0]) == 0


async def test_sustained_writes_do_not_grow_the_wal_past_its_limit(tmp_path: Path) -> None:
    from tests.inproc import eventually

    store = await Store.open(tmp_path / "s.db")
    store.upkeep.wal_limit = 256 * 1024
    wal = tmp_path / "s.db-wal"
    # ~400 KiB of frames plus their pages, a commit at a time: past the limit
    await asyncio.gather(
        *(accept(store, frame(payload=i.to_bytes(2, "big") + bytes(1000))) for i in range(400))
    )
    await eventually(lambda: store.upkeep.wal_truncations >= 1, timeout=30)
    await eventually(lambda: not wal.exists() or wal.stat().st_size < store.upkeep.wal_limit, timeout=30)
    assert len(await all_pending(store)) == 400
    await store.close()


async def test_a_new_store_has_small_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    import sqlite3

    from hub.relay.store import PAGE_SIZE

    store = await Store.open(tmp_path / "new.db")
    await accept(store, frame())
    await store.close()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as raw:  # a store from before: 4096-byte pages
        raw.execute("CREATE TABLE early (x)")
    again = await Store.open(old, new_store=True)
    await accept(again, frame())
    await again.close()
    for path, size in ((tmp_path / "new.db", PAGE_SIZE), (old, 4096)):
        with sqlite3.connect(path) as raw:
            assert raw.execute("PRAGMA page_size").fetchone()[0] == size


async def test_open_deliveries_are_counted_without_an_index_of_their_own(tmp_path: Path) -> None:
    """A delivery settled writes no index page: the open ones are counted by a scan, also in a store whose
    earlier version had an index of them (dropped when it opens)."""
    import sqlite3

    path = tmp_path / "s.db"
    store = await Store.open(path)
    ids = [await accept(store, frame(payload=bytes([i]))) for i in range(3)]
    await store.close()
    with sqlite3.connect(path) as raw:  # as the earlier version left it
        raw.execute("CREATE INDEX deliveries_open ON deliveries(state) WHERE state IN ('queued', 'sent')")
    store = await Store.open(path)
    store.record_delivery(ids[0], HOP, DeliveryState.HOP_ACKED, attempts=1, next_attempt=0, link="internet")
    store.record_delivery(ids[1], HOP, DeliveryState.SENT, attempts=1, next_attempt=0, link="internet")
    await store.flush()
    assert await store.open_deliveries() == 2
    assert await store.open_by_hop() == {HOP: 2}
    await store.close()
    with sqlite3.connect(path) as raw:
        indexes = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"messages_inbox", "messages_live"} <= indexes and "deliveries_open" not in indexes


async def test_only_transactions_holding_an_accepted_message_are_fsynced(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    first = await accept(store, frame(payload=b"a"))
    assert (store.commits, store.syncs) == (1, 1)
    ack = decode_frame(frame(payload=b"ack"))
    await store.accept(ack, ack.encode(), hops=[HOP], local=True, for_me=False, via=None, durable=False)
    assert (store.commits, store.syncs) == (2, 1), "the hub's own end-to-end ack waits for the next fsync"
    store.record_delivery(first, HOP, DeliveryState.SENT, attempts=1, next_attempt=0, link="internet")
    store.record_delivery(first, HOP, DeliveryState.HOP_ACKED, attempts=1, next_attempt=0, link="internet")
    second = await accept(store, frame(payload=b"b"))
    # the state updates waited for company and rode in the next durable commit
    assert (store.commits, store.syncs) == (3, 2)
    assert [row.state for row in await store.deliveries(first)] == ["hop-acked"]
    await store.close()
    reopened = await Store.open(tmp_path / "s.db")
    assert {p.message_id for p in await all_pending(reopened)} == {ack.id, second}
    await reopened.close()


async def test_commits_wait_for_a_truncating_checkpoint_instead_of_failing(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    store.upkeep.wal_limit = 64 * 1024  # truncated again and again while the accepts go on
    accepted = 0
    async with asyncio.timeout(300):
        while store.upkeep.wal_truncations < 5:
            await asyncio.gather(
                *(
                    accept(store, frame(payload=(accepted + i).to_bytes(4, "big") + bytes(500)))
                    for i in range(8)
                )
            )  # a "database is locked" from a commit that met the checkpoint's lock would raise here
            accepted += 8
    assert len(await all_pending(store)) == accepted
    await store.close()


async def test_copies_of_one_message_in_flight_together_are_stored_once(tmp_path: Path) -> None:
    """The store hands out rows itself (there is no unique index of ids): a copy that arrives while the
    first is being committed joins its row, with its own next hop."""
    import sqlite3

    other = bytes.fromhex("00112233445566bb")
    store = await Store.open(tmp_path / "s.db")
    wire = frame(payload=b"twice")
    decoded = decode_frame(wire)
    await asyncio.gather(
        store.accept(decoded, wire, hops=[HOP], local=False, for_me=False, via=None),
        store.accept(decoded, wire, hops=[other], local=False, for_me=False, via=None),
    )
    await store.accept(decoded, wire, hops=[HOP], local=False, for_me=False, via=None)  # stored already
    assert sorted(r.hop for r in await store.deliveries(decoded.id)) == sorted([HOP, other])
    await store.close()
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("SELECT count(*), count(DISTINCT row) FROM messages").fetchone() == (1, 1)


async def test_messages_to_a_revoked_node_leave_their_queues_with_their_deliveries(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    queued = await accept(store, frame(payload=b"q"))
    acked = await accept(store, frame(payload=b"a"))
    store.record_e2e_ack([acked], time.time())
    await store.flush()
    own, relayed = await store.withdraw_revoked(HOP)
    assert (own, relayed) == ([queued], 0)
    assert [r.state for r in await store.deliveries(queued)] == ["revoked"]
    assert (await store.message(queued)).state == "revoked"  # type: ignore[union-attr]
    assert [r.state for r in await store.deliveries(acked)] == ["queued"]
    assert store.live_messages == 1 and await store.open_deliveries() == 1
    await store.close()
