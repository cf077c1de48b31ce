"""Users: scrypt hashes, login and lockout, expiring sessions, CSRF and roles."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hub.console.users import Role, Users, check_password, hash_password
from hub.core.clock import ManualClock
from hub.core.errors import AuthError, StoreError

PASSWORD = "korrekt-hest-batteri"
LINDELY = "0123456789abcdef"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def users(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Users]:
    # a cheap hash: these tests log in hundreds of times; the real cost is checked on hash_password itself
    users = await Users.open(tmp_path / "hub.db", clock, idle=3600, lifetime=4 * 3600, scrypt_n=2**8)
    await users.add("hansen", PASSWORD, Role.COORDINATOR, display_name="Vagtleder Hansen")
    await users.add("lindely", PASSWORD, Role.INSTITUTION, institution=LINDELY)
    yield users
    await users.aclose()


def test_hashes_are_salted_and_name_their_parameters() -> None:
    one, two = hash_password(PASSWORD), hash_password(PASSWORD)
    assert one != two
    assert one.startswith("scrypt$16384$8$1$")
    assert check_password(PASSWORD, one) and check_password(PASSWORD, two)
    assert not check_password("forkert-kodeord", one)
    for damaged in ("", "md5$x", "scrypt$a$b$c$d$e", one.replace("scrypt", "bcrypt")):
        assert not check_password(PASSWORD, damaged)


async def test_passwords_are_never_stored_in_clear(users: Users, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "hub.db") as db:
        stored = db.execute("SELECT password FROM users WHERE username = 'hansen'").fetchone()[0]
    assert PASSWORD not in stored and stored.startswith("scrypt$")


async def test_login_gives_a_session_with_csrf(users: Users) -> None:
    session = await users.login("hansen", PASSWORD)
    assert session.user.role is Role.COORDINATOR and session.user.display_name == "Vagtleder Hansen"
    assert users.session(session.token) is session
    users.check_csrf(session, session.csrf)
    for wrong in (None, "", session.csrf[:-1] + "x", session.token):
        with pytest.raises(AuthError, match="CSRF") as refused:
            users.check_csrf(session, wrong)
        assert refused.value.forbidden


async def test_wrong_password_and_unknown_user_look_the_same(users: Users) -> None:
    with pytest.raises(AuthError, match="forkert brugernavn eller adgangskode"):
        await users.login("hansen", "forkert-kodeord")
    with pytest.raises(AuthError, match="forkert brugernavn eller adgangskode"):
        await users.login("ukendt", PASSWORD)


async def _wrong(users: Users, username: str, source: str, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(AuthError, match="forkert brugernavn eller adgangskode"):
            await users.login(username, "forkert-kodeord", source=source)


async def test_wrong_passwords_lock_the_name_out_from_that_source_only(
    users: Users, clock: ManualClock
) -> None:
    await _wrong(users, "hansen", "192.0.2.66", times=5)
    with pytest.raises(AuthError, match="for mange forkerte adgangskoder") as locked:
        await users.login("hansen", PASSWORD, source="192.0.2.66")
    assert locked.value.retry_after == pytest.approx(60)
    # The coordinator's own tablet still gets in: a guesser cannot lock anyone out from afar.
    await users.login("hansen", PASSWORD, source="192.0.2.10")
    await users.login("lindely", PASSWORD, source="192.0.2.66")  # other names from that source too
    clock.advance(61)
    await users.login("hansen", PASSWORD, source="192.0.2.66")


async def test_back_off_doubles_with_each_lockout(users: Users, clock: ManualClock) -> None:
    for expected in (60, 120, 240):
        await _wrong(users, "hansen", "192.0.2.66", times=5)
        with pytest.raises(AuthError) as locked:
            await users.login("hansen", PASSWORD, source="192.0.2.66")
        assert locked.value.retry_after == pytest.approx(expected)
        clock.advance(expected + 1)


async def test_one_source_trying_many_names_is_locked_out(users: Users, clock: ManualClock) -> None:
    for i in range(20):
        await _wrong(users, f"navn{i}", "192.0.2.66")
        clock.advance(0.5)  # within the hashing budget
    with pytest.raises(AuthError, match="for mange forkerte adgangskoder") as locked:
        await users.login("hansen", PASSWORD, source="192.0.2.66")
    assert locked.value.retry_after == pytest.approx(300, abs=1)
    await users.login("hansen", PASSWORD, source="192.0.2.10")
    assert users.throttle.lockouts["source"] == 1


async def test_guessing_one_name_from_many_sources_is_slowed(users: Users, clock: ManualClock) -> None:
    for i in range(50):
        await _wrong(users, "hansen", f"192.0.2.{i}")
        clock.advance(0.5)  # within the hashing budget
    with pytest.raises(AuthError, match="for mange forkerte adgangskoder"):
        await users.login("hansen", PASSWORD, source="192.0.2.200")
    assert users.throttle.lockouts["name"] == 1


async def test_a_locked_out_attempt_costs_no_hashing(users: Users) -> None:
    await _wrong(users, "hansen", "192.0.2.66", times=5)
    budget = users.hashing._tokens
    for _ in range(100):
        with pytest.raises(AuthError, match="for mange"):
            await users.login("hansen", PASSWORD, source="192.0.2.66")
    assert users.hashing._tokens == budget


async def test_hashing_has_a_budget_per_second(users: Users, clock: ManualClock) -> None:
    refused = 0
    for i in range(40):
        try:
            await users.login("lindely", PASSWORD, source=f"198.51.100.{i}")
        except AuthError as exc:
            assert exc.retry_after is not None and "travlt" in str(exc)
            refused += 1
    assert refused == 40 - users.hashing.burst and users.hashing.refused == refused
    clock.advance(1)
    await users.login("lindely", PASSWORD, source="198.51.100.1")


async def test_the_lockout_table_stays_bounded(users: Users, clock: ManualClock) -> None:
    from hub.console import login_guard

    for i in range(3 * login_guard.MAX_ENTRIES // 3):
        users.throttle.failed(f"navn{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(users.throttle._records) <= login_guard.MAX_ENTRIES


async def test_made_up_long_names_cannot_grow_the_lockout_table(users: Users) -> None:
    # a login body may hold 64 KiB: a name no user can have is counted under one short key
    for n in range(3):
        with pytest.raises(AuthError, match="forkert brugernavn eller adgangskode"):
            await users.login(f"{n}" + "x" * 60_000, PASSWORD, source="192.0.2.7")
    longest = max(len(key) for _, key in users.throttle._records)
    assert longest < 100, f"a lockout key of {longest} characters"
    assert users.throttle.failed_logins == 3


async def test_sessions_expire_when_idle_and_after_their_lifetime(users: Users, clock: ManualClock) -> None:
    idle = await users.login("hansen", PASSWORD)
    clock.advance(3601)
    with pytest.raises(AuthError, match="udløbet"):
        users.session(idle.token)
    with pytest.raises(AuthError, match="ikke logget ind"):
        users.session(idle.token)  # and it is gone for good
    busy = await users.login("hansen", PASSWORD)
    for _ in range(4):
        clock.advance(3000)
        users.session(busy.token)  # use keeps it alive...
    clock.advance(3000)
    with pytest.raises(AuthError, match="udløbet"):
        users.session(busy.token)  # ...but not past its lifetime


async def test_wall_clock_jumps_do_not_expire_sessions(users: Users, clock: ManualClock) -> None:
    session = await users.login("hansen", PASSWORD)
    clock.now += 50 * 365 * 86400  # the Pi learns the real date from GPS
    assert users.session(session.token) is session


async def test_logout_and_password_change_end_sessions(users: Users) -> None:
    first = await users.login("hansen", PASSWORD)
    users.logout(first.token)
    with pytest.raises(AuthError):
        users.session(first.token)
    second = await users.login("hansen", PASSWORD)
    await users.set_password("hansen", "nyt-kodeord-123")
    with pytest.raises(AuthError):
        users.session(second.token)
    with pytest.raises(AuthError):
        await users.login("hansen", PASSWORD)
    await users.login("hansen", "nyt-kodeord-123")


async def test_roles_are_enforced(users: Users) -> None:
    institution = await users.login("lindely", PASSWORD)
    assert institution.user.institution == LINDELY
    Users.require(institution, Role.INSTITUTION, Role.COORDINATOR)
    with pytest.raises(AuthError, match="rollen institution må ikke") as refused:
        Users.require(institution, Role.COORDINATOR)
    assert refused.value.forbidden


async def test_users_persist_across_reopen(users: Users, tmp_path: Path, clock: ManualClock) -> None:
    session = await users.login("hansen", PASSWORD)
    await users.aclose()
    await users.aclose()
    again = await Users.open(tmp_path / "hub.db", clock)
    try:
        assert [u.username for u in await again.all()] == ["hansen", "lindely"]
        with pytest.raises(AuthError):
            again.session(session.token)  # sessions live in memory only
        await again.login("lindely", PASSWORD)
        await again.remove("lindely")
        assert await again.get("lindely") is None
    finally:
        await again.aclose()


@pytest.mark.parametrize(
    ("username", "password", "role", "institution", "message"),
    [
        ("Hansen", PASSWORD, Role.VIEWER, None, "username: brug 1-32"),
        ("a" * 33, PASSWORD, Role.VIEWER, None, "username: brug 1-32"),
        ("ny", "kort", Role.VIEWER, None, "adgangskode: brug mindst 10"),
        ("ny", PASSWORD, Role.INSTITUTION, None, "institution: en institutionsbruger skal have"),
        ("ny", PASSWORD, Role.INSTITUTION, "lindely", "institution: forventede et node-id"),
        ("hansen", PASSWORD, Role.VIEWER, None, "username: 'hansen' findes allerede"),
    ],
)
async def test_bad_user_data_is_refused_naming_the_field(
    users: Users, username: str, password: str, role: Role, institution: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await users.add(username, password, role, institution=institution)


async def test_unknown_user_password_change_is_refused(users: Users) -> None:
    with pytest.raises(ValueError, match="ingen bruger 'ukendt'"):
        await users.set_password("ukendt", PASSWORD)


async def test_unopenable_database_is_a_store_error(tmp_path: Path, clock: ManualClock) -> None:
    with pytest.raises(StoreError, match="cannot open user database"):
        await Users.open(tmp_path / "nowhere" / "hub.db", clock)


async def test_expired_sessions_are_purged_at_the_next_login(users: Users, clock: ManualClock) -> None:
    for _ in range(3):
        await users.login("lindely", PASSWORD)
    clock.advance(3601)
    fresh = await users.login("hansen", PASSWORD)
    assert list(users._sessions.values()) == [fresh]
