"""The register at rest: sealed rows, a key outside the database, reads only for roles that may, an
access log without personal data, and erasure that leaves nothing readable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.citizens.desk import Desk
from hub.citizens.records import to_csv
from hub.citizens.register import CITIZENS_DB, Reader, Register
from hub.citizens.sample import sample_citizens
from hub.citizens.vault import KEY_FILE, Vault
from hub.core.clock import ManualClock
from hub.core.errors import AuthError, ConfigError

NURSE = Reader("sygeplejerske-anna", "nurse")
PEOPLE = sample_citizens(30, ["Nord", "Syd", "Øst"])


def _files(folder: Path) -> bytes:
    """Every byte of the database as someone copying the data folder without the key would get it."""
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith(CITIZENS_DB))


async def test_a_copied_database_holds_no_name_cpr_or_address(tmp_path: Path) -> None:
    vault = Vault.load(tmp_path / KEY_FILE, create=True)
    register = await Register.open(tmp_path / CITIZENS_DB, vault, ManualClock())
    try:
        report = await register.import_csv(to_csv(PEOPLE), NURSE)
        assert (report.added, report.updated, report.rejected) == (30, 0, [])
        again = await register.import_csv(to_csv(PEOPLE[:5]), NURSE)
        assert (again.added, again.updated) == (0, 5)  # matched by CPR, not added twice
        assert await register.citizens(NURSE) == sorted(PEOPLE, key=lambda p: p.id)
        copied = _files(tmp_path)
        for person in PEOPLE:
            for value in filter(None, (
                person.name,
                person.cpr,
                person.cpr.replace("-", ""),
                person.address,
                person.contact,
                person.backup,  # the backup arrangement ("nabo har generator") is personal too
            )):  # fmt: skip
                assert value.encode() not in copied, value
        assert oct(os.stat(tmp_path / CITIZENS_DB).st_mode & 0o777) == "0o600"
        log = await register.access_log()
        assert [e["action"] for e in log][:2] == ["læst", "import"]
        assert all(p.name not in str(log) and p.cpr not in str(log) for p in PEOPLE)
    finally:
        await register.close()


async def test_only_nurses_and_coordinators_read_and_the_key_must_be_private(tmp_path: Path) -> None:
    vault = Vault.load(tmp_path / KEY_FILE, create=True)
    assert oct((tmp_path / KEY_FILE).stat().st_mode & 0o777) == "0o600"
    register = await Register.open(tmp_path / CITIZENS_DB, vault, ManualClock())
    try:
        await register.import_csv(to_csv(PEOPLE), Reader("hansen", "coordinator"))
        with pytest.raises(AuthError, match="må ikke"):
            await register.citizens(Reader("koekken", "institution"))
        with pytest.raises(AuthError):
            await register.import_csv(to_csv(PEOPLE), Reader("viewer", "viewer"))
        with pytest.raises(AuthError):  # a user who happens to share the hub's own name gets nothing more
            await register.citizens(Reader("hub", "viewer"))
    finally:
        await register.close()
    (tmp_path / KEY_FILE).chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        Vault.load(tmp_path / KEY_FILE)
    other = Vault.load(tmp_path / "other.key", create=True)
    register = await Register.open(tmp_path / CITIZENS_DB, other, ManualClock())
    try:
        with pytest.raises(Exception, match="does not open"):
            await register.citizens(NURSE)  # the database alone, with another key, opens nothing
    finally:
        await register.close()


async def test_a_lost_key_is_never_replaced_by_a_new_one(tmp_path: Path) -> None:
    desk = await Desk.open(tmp_path, ManualClock(), create=True)
    await desk.register.import_csv(to_csv(PEOPLE[:3]), NURSE)
    await desk.aclose()
    (tmp_path / KEY_FILE).unlink()
    with pytest.raises(ConfigError, match="hent nøglen fra sikkerhedskopien"):
        await Desk.open(tmp_path, ManualClock(), create=True)
    assert not (tmp_path / KEY_FILE).exists()
    (tmp_path / KEY_FILE).write_bytes(b"short")
    (tmp_path / KEY_FILE).chmod(0o600)
    with pytest.raises(ConfigError, match="5 bytes"):
        await Desk.open(tmp_path, ManualClock())


async def test_erasure_removes_the_person_and_their_key(tmp_path: Path) -> None:
    vault = Vault.load(tmp_path / KEY_FILE, create=True)
    register = await Register.open(tmp_path / CITIZENS_DB, vault, ManualClock())
    try:
        await register.import_csv(to_csv(PEOPLE), NURSE)
        gone = PEOPLE[3]
        assert await register.erase(NURSE, gone.id)
        assert not await register.erase(NURSE, gone.id)
        assert gone.id not in {c.id for c in await register.citizens(NURSE)}
        assert await register.count() == len(PEOPLE) - 1
        assert ("slettet", gone.id) in [(e["action"], e["subject"]) for e in await register.access_log()]
    finally:
        await register.close()


async def test_erasure_leaves_no_old_copy_of_the_key_or_row_in_the_files(tmp_path: Path) -> None:
    """With WAL, the erased row's old pages stay whole in earlier log frames and in the main file until a
    checkpoint; erasure checkpoints, so a copy of the data folder taken right after holds neither."""
    desk = await Desk.open(tmp_path, ManualClock(), create=True)
    try:
        await desk.register.import_csv(to_csv(PEOPLE), NURSE)
        gone = PEOPLE[3]
        async with desk.register.db.execute(
            "SELECT wrapped_key, sealed FROM citizens WHERE id = ?", (gone.id,)
        ) as cursor:
            row = await cursor.fetchone()
        assert row is not None
        wrapped, sealed = bytes(row[0]), bytes(row[1])
        assert wrapped in _files(tmp_path) and sealed in _files(tmp_path)  # the copy would have them now
        assert await desk.erase(NURSE, gone.id)
        copied = _files(tmp_path)
        assert wrapped not in copied and sealed not in copied
        assert PEOPLE[4].id in {c.id for c in await desk.register.citizens(NURSE)}  # the others stay
    finally:
        await desk.aclose()
