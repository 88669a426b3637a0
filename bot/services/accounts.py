"""Staff accounts: password logins with a rate limit, and bearer tokens for the JSON API.

Passwords are hashed with werkzeug's scrypt (`generate_password_hash`); API tokens are 32 random
bytes shown once and stored as SHA-256, which is enough for a secret with that much entropy and
lets a token be looked up by its hash. Login attempts are kept in the database so the limit holds
across gunicorn workers.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from bot.store import storage
from bot.store.storage import ApiToken, LoginAttempt, StaffUser

MIN_PASSWORD = 10
# Failed logins allowed within the window: for one name from one address (the usual guessing),
# from one address whatever the names (spraying), and for one name from anywhere (a distributed
# attack; high, so that a stranger cannot lock a staff member out with a few wrong passwords).
# A lockout ends by itself once enough of its failures are older than the window (refused
# attempts are not recorded, so waiting is enough), or at once with `python -m bot staff unlock`.
FAILURE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_NAME_ADDRESS = 5
MAX_FAILURES_ADDRESS = 20
MAX_FAILURES_NAME = 50


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the name is unknown, so both cases take the same time;
    made at the first login attempt, not at import (a tenth of a second every worker's start
    would pay)."""
    return generate_password_hash(secrets.token_hex(16))


@dataclass(frozen=True)
class Login:
    """The outcome of a login attempt."""

    name: str | None = None  # the staff member, when the password was right
    session_version: int = 0
    # Refused unchecked, as too many attempts failed lately, until this time.
    locked_until: datetime | None = None

    @property
    def throttled(self) -> bool:
        return self.locked_until is not None


class AccountError(ValueError):
    """A refused account change, with a message for the person at the terminal."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    def __init__(self, sessions: sessionmaker[Session], clock=storage.utcnow):
        self.sessions = sessions
        self.clock = clock

    def add(self, name: str, password: str) -> None:
        name = name.strip()
        if not name or len(name) > 80:
            raise AccountError("name must be 1 to 80 characters")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
        try:
            with self.sessions.begin() as session:
                if session.execute(select(StaffUser.id).where(func.lower(StaffUser.name) == name.lower())).first():
                    raise AccountError(f"staff member {name!r} already exists")
                session.add(
                    StaffUser(name=name, password_hash=generate_password_hash(password), created_at=self.clock())
                )
        except IntegrityError:
            raise AccountError(f"staff member {name!r} already exists") from None

    def set_password(self, name: str, password: str) -> None:
        """A new password; every open session of the account ends."""
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
        with self.sessions.begin() as session:
            user = self._user(session, name)
            user.password_hash = generate_password_hash(password)
            user.session_version += 1

    def disable(self, name: str) -> None:
        """No more logins, sessions or API tokens for this account."""
        with self.sessions.begin() as session:
            user = self._user(session, name)
            user.active = False
            user.session_version += 1
            session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))

    def revoke_tokens(self, name: str) -> int:
        with self.sessions.begin() as session:
            user = self._user(session, name)
            return session.execute(delete(ApiToken).where(ApiToken.user_id == user.id)).rowcount

    def end_sessions(self, name: str) -> None:
        """Log the account out everywhere (its session cookies stop working)."""
        with self.sessions.begin() as session:
            user = session.execute(select(StaffUser).where(StaffUser.name == name)).scalar_one_or_none()
            if user is not None:
                user.session_version += 1

    def issue_token(self, name: str) -> str:
        """A new API token for `name`: returned once, stored only as its hash."""
        token = secrets.token_urlsafe(32)
        with self.sessions.begin() as session:
            user = self._user(session, name)
            session.add(ApiToken(user_id=user.id, token_hash=_token_hash(token), created_at=self.clock()))
        return token

    def names(self) -> list[str]:
        with self.sessions() as session:
            return list(session.execute(select(StaffUser.name).order_by(StaffUser.name)).scalars())

    def _user(self, session: Session, name: str) -> StaffUser:
        user = session.execute(select(StaffUser).where(StaffUser.name == name)).scalar_one_or_none()
        if user is None:
            raise AccountError(f"no staff member named {name!r}")
        return user

    # -- authentication ---------------------------------------------------------------------

    def login(self, name: str, password: str, remote_addr: str) -> Login:
        """Check a password, unless too many attempts failed lately. The check and the record of
        the attempt are one transaction, serialised per name and per address, so parallel
        guesses cannot slip past the limit."""
        now = self.clock()
        name, remote_addr = name[:80], remote_addr[:64]
        with self.sessions.begin() as session:
            for key in (f"login-name:{name}", f"login-address:{remote_addr}"):
                storage.lock_key(session, key)
            locked_until = self._locked_until(session, name, remote_addr, now)
            if locked_until is not None:
                return Login(locked_until=locked_until)
            user = session.execute(select(StaffUser).where(StaffUser.name == name)).scalar_one_or_none()
            good = check_password_hash(user.password_hash if user else _dummy_hash(), password)
            ok = bool(user and user.active and good)
            session.add(LoginAttempt(name=name, remote_addr=remote_addr, succeeded=ok, at=now))
            session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - 4 * FAILURE_WINDOW))
            return Login(user.name, user.session_version) if ok else Login()

    def _locked_until(self, session: Session, name: str, remote_addr: str, now: datetime) -> datetime | None:
        """When the latest lockout that applies ends: for each limit reached, the time its
        failures fall below the limit again (the limit-th most recent leaves the window)."""
        limits = (
            ((LoginAttempt.name == name, LoginAttempt.remote_addr == remote_addr), MAX_FAILURES_NAME_ADDRESS),
            ((LoginAttempt.remote_addr == remote_addr,), MAX_FAILURES_ADDRESS),
            ((LoginAttempt.name == name,), MAX_FAILURES_NAME),
        )
        ends = []
        for where, limit in limits:
            failed = select(LoginAttempt.at).where(
                *where, LoginAttempt.succeeded.is_(False), LoginAttempt.at > now - FAILURE_WINDOW
            )
            oldest_that_counts = session.execute(
                failed.order_by(LoginAttempt.at.desc()).offset(limit - 1).limit(1)
            ).scalar()
            if oldest_that_counts is not None:
                ends.append(oldest_that_counts + FAILURE_WINDOW)
        return max(ends, default=None)

    def unlock(self, name: str) -> int:
        """Lift the lockouts of an account at once: its failed attempts (under any spelling of
        its name, from any address) are forgotten. Returns how many."""
        with self.sessions.begin() as session:
            user = self._user(session, name)
            failed = (func.lower(LoginAttempt.name) == user.name.lower(), LoginAttempt.succeeded.is_(False))
            return session.execute(delete(LoginAttempt).where(*failed)).rowcount

    def by_token(self, token: str) -> str | None:
        """The staff member a bearer token belongs to, if any."""
        if not token:
            return None
        with self.sessions.begin() as session:
            row = session.execute(
                select(ApiToken, StaffUser)
                .join(StaffUser, StaffUser.id == ApiToken.user_id)
                .where(ApiToken.token_hash == _token_hash(token), StaffUser.active.is_(True))
            ).first()
            if row is None:
                return None
            api_token, user = row
            api_token.last_used_at = self.clock()
            return user.name

    def session_valid(self, name: str, version: int) -> bool:
        """A session cookie still counts: the account is active and was not logged out since."""
        with self.sessions() as session:
            current = session.execute(
                select(StaffUser.session_version).where(StaffUser.name == name, StaffUser.active.is_(True))
            ).scalar_one_or_none()
            return current is not None and current == version
