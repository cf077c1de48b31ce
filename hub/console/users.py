"""Local console users: roles, salted scrypt password hashes, expiring sessions and CSRF tokens.

The hub must work with no internet, so there is no outside identity provider: users live in their own
table of the hub's SQLite database. Passwords are hashed with ``hashlib.scrypt`` and a random salt per
user; the stored string names its parameters (``scrypt$n$r$p$salt$hash``) so they can be raised later
without breaking old hashes. Hashing runs in a worker thread because it is deliberately slow. Sessions
are kept in memory and measured on the monotonic clock: a wall clock that jumps (a Pi booting in 1970,
then corrected from GPS) cannot expire or resurrect them, and a restart simply asks people to log in
again. A session ends after ``idle`` seconds without use or ``lifetime`` seconds in all. Each session
has its own CSRF token that every state-changing request must echo. Repeated wrong passwords lock out the
name from that source, the source and, at a higher count, the name, with growing back-off; password
hashing has a budget per second (``hub.console.login_guard``).
"""

from __future__ import annotations

import asyncio
import base64
import enum
import hashlib
import hmac
import re
import secrets
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiosqlite

from hub.console.logbook import PAGE_SIZE
from hub.console.login_guard import HashBudget, LoginThrottle
from hub.core.clock import Clock
from hub.core.errors import AuthError, StoreError

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
MIN_PASSWORD = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    institution TEXT,
    password TEXT NOT NULL
);
"""


class Role(enum.StrEnum):
    """What a user may do: coordinators run the staff view; institutions report for one node; viewers read;
    nurses (hjemmesygeplejersker) read what viewers read and, with coordinators, the citizen register."""

    COORDINATOR = "coordinator"
    INSTITUTION = "institution"
    VIEWER = "viewer"
    NURSE = "nurse"


@dataclass(frozen=True, slots=True)
class User:
    username: str
    display_name: str
    role: Role
    institution: str | None = None  # node id hex of the institution an INSTITUTION user reports for


@dataclass(slots=True)
class Session:
    """A logged-in user. ``token`` goes in an HttpOnly cookie; ``csrf`` is echoed in a request header."""

    token: str
    user: User
    csrf: str
    started: float
    last_seen: float = field(default=0.0)


def hash_password(password: str, *, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return "$".join(("scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)))


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Users:
    """The user table plus the in-memory session registry."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        clock: Clock,
        *,
        idle: float = 8 * 3600.0,
        lifetime: float = 24 * 3600.0,
        scrypt_n: int = 2**14,
        owns_db: bool = False,
    ) -> None:
        self._db = db
        self._clock = clock
        self.idle = idle
        self.lifetime = lifetime
        self._scrypt_n = scrypt_n
        self._owns_db = owns_db
        self._sessions: dict[bytes, Session] = {}  # keyed by SHA-256 of the token
        self.throttle = LoginThrottle(clock)
        self.hashing = HashBudget(clock)
        self.refused: Counter[str] = Counter()
        """Console API requests refused before their handler: ``console_no_session`` (no or an expired
        session) and ``console_forbidden`` (no CSRF token, or a role that may not); for ``/healthz``."""
        # a real hash to check against for unknown names, so timing does not reveal which names exist
        self._decoy = hash_password(secrets.token_hex(16), n=scrypt_n)
        self._closed = False

    @classmethod
    async def open(
        cls, path: Path | str, clock: Clock, *, idle: float = 8 * 3600.0, lifetime: float = 24 * 3600.0,
        scrypt_n: int = 2**14,
    ) -> Users:  # fmt: skip
        if not Path(path).parent.is_dir():
            # checked up front: a failed aiosqlite connect leaves its worker thread racing the loop's close
            raise StoreError(f"cannot open user database {path}: folder {Path(path).parent} does not exist")
        try:
            db = await aiosqlite.connect(path)
            await db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # console.db may be made here (see logbook)
        except Exception as exc:
            raise StoreError(f"cannot open user database {path}: {exc}") from exc
        users = cls(db, clock, idle=idle, lifetime=lifetime, scrypt_n=scrypt_n, owns_db=True)
        await users.create()
        return users

    async def create(self) -> None:
        try:
            await self._db.executescript(_SCHEMA)
            await self._db.commit()
        except aiosqlite.Error as exc:
            raise StoreError(f"cannot create the users table: {exc}") from exc

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._sessions.clear()
        if self._owns_db:
            await self._db.close()

    async def add(
        self,
        username: str,
        password: str,
        role: Role,
        *,
        display_name: str = "",
        institution: str | None = None,
    ) -> User:
        if not USERNAME.fullmatch(username):
            raise ValueError(
                "username: brug 1-32 tegn blandt a-z, 0-9, '.', '_' og '-', først et bogstav eller ciffer"
            )
        _check_password_rules(password)
        if role is Role.INSTITUTION and not institution:
            raise ValueError(
                "institution: en institutionsbruger skal have node-id'et for den institution, den melder for"
            )
        if institution is not None and not re.fullmatch(r"[0-9a-f]{16}", institution):
            raise ValueError("institution: forventede et node-id på 16 hex-cifre")
        stored = await asyncio.to_thread(hash_password, password, n=self._scrypt_n)
        user = User(username, display_name or username, role, institution)
        try:
            await self._db.execute(
                "INSERT INTO users (username, display_name, role, institution, password) VALUES (?,?,?,?,?)",
                (username, user.display_name, str(role), institution, stored),
            )
            await self._db.commit()
        except aiosqlite.IntegrityError:
            raise ValueError(f"username: {username!r} findes allerede") from None
        except aiosqlite.Error as exc:
            raise StoreError(f"cannot add user: {exc}") from exc
        return user

    async def set_password(self, username: str, password: str) -> None:
        _check_password_rules(password)
        stored = await asyncio.to_thread(hash_password, password, n=self._scrypt_n)
        cursor = await self._db.execute(
            "UPDATE users SET password = ? WHERE username = ?", (stored, username)
        )
        await self._db.commit()
        if cursor.rowcount == 0:
            raise ValueError(f"username: ingen bruger {username!r}")
        self._end_sessions_of(username)

    async def remove(self, username: str) -> None:
        await self._db.execute("DELETE FROM users WHERE username = ?", (username,))
        await self._db.commit()
        self._end_sessions_of(username)

    async def get(self, username: str) -> User | None:
        row = await self._row(username)
        return None if row is None else row[0]

    async def all(self) -> list[User]:
        rows = await self._db.execute_fetchall(
            "SELECT username, display_name, role, institution FROM users ORDER BY username"
        )
        return [User(r[0], r[1], Role(r[2]), r[3]) for r in rows]

    async def login(self, username: str, password: str, *, source: str = "local") -> Session:
        """Check the password and open a session; ``AuthError`` says why not, without naming which part.

        ``source`` is where the attempt comes from (an address, see ``hub.core.bounded_http.source_of``);
        lockouts count per name and source, per source and per name. A locked-out or over-budget attempt
        costs no hashing (``AuthError.retry_after`` says how long to wait)."""
        if not USERNAME.fullmatch(username):
            # no user has such a name; counted under one key, so a flood of long made-up names cannot
            # grow the lockout table's keys (a login body may hold 64 KiB)
            username = ""
        self.throttle.check(username, source)
        row = await self._row(username)
        stored = row[1] if row else self._decoy
        async with self.hashing.spend():
            ok = await asyncio.to_thread(check_password, password, stored)
        if row is None or not ok:
            self.throttle.failed(username, source)
            raise AuthError("forkert brugernavn eller adgangskode")
        self.throttle.succeeded(username, source)
        now = self._clock.monotonic()
        self._purge(now)
        token = secrets.token_urlsafe(32)
        session = Session(token, row[0], secrets.token_urlsafe(32), started=now, last_seen=now)
        self._sessions[_key(token)] = session
        return session

    def session(self, token: str | None) -> Session:
        """The live session for ``token`` (refreshing its idle timer); ``AuthError`` if none or expired."""
        if not token:
            raise AuthError("ikke logget ind")
        key = _key(token)
        session = self._sessions.get(key)
        if session is None:
            raise AuthError("ikke logget ind")
        now = self._clock.monotonic()
        if self._expired(session, now):
            del self._sessions[key]
            raise AuthError("sessionen er udløbet: log ind igen")
        session.last_seen = now
        return session

    def logout(self, token: str) -> None:
        self._sessions.pop(_key(token), None)

    @staticmethod
    def check_csrf(session: Session, token: str | None) -> None:
        if not token or not hmac.compare_digest(session.csrf.encode(), token.encode()):
            raise AuthError("manglende eller forkert CSRF-token: genindlæs siden", forbidden=True)

    @staticmethod
    def require(session: Session, *roles: Role) -> None:
        if session.user.role not in roles:
            raise AuthError(f"rollen {session.user.role} må ikke gøre dette", forbidden=True)

    def _purge(self, now: float) -> None:
        """Forget expired sessions, so abandoned tablets do not accumulate."""
        for key in [k for k, s in self._sessions.items() if self._expired(s, now)]:
            del self._sessions[key]

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self.idle or now - session.started > self.lifetime

    def _end_sessions_of(self, username: str) -> None:
        for key in [k for k, s in self._sessions.items() if s.user.username == username]:
            del self._sessions[key]

    async def _row(self, username: str) -> tuple[User, str] | None:
        rows = await self._db.execute_fetchall(
            "SELECT username, display_name, role, institution, password FROM users WHERE username = ?",
            (username,),
        )
        return next(((User(r[0], r[1], Role(r[2]), r[3]), str(r[4])) for r in rows), None)


def _key(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"adgangskode: brug mindst {MIN_PASSWORD} tegn")
