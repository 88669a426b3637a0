"""Staff accounts: password logins with a rate limit, and bearer tokens for the JSON API.

Passwords are hashed with werkzeug's scrypt (`generate_password_hash`); API tokens are 32 random
bytes shown once and stored as SHA-256, which is enough for a secret with that much entropy and
lets a token be looked up by its hash. Login attempts are kept in the database so the limit holds
across gunicorn workers.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.security import check_password_hash, generate_password_hash

from .adapters import storage
from .adapters.storage import ApiToken, LoginAttempt, StaffUser

MIN_PASSWORD = 10
# Failed logins allowed per account name and per address within the window.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
# A hash to check against when the name is unknown, so both cases take the same time.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))


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
                session.add(StaffUser(name=name, password_hash=generate_password_hash(password), created_at=self.clock()))
        except IntegrityError:
            raise AccountError(f"staff member {name!r} already exists") from None

    def set_password(self, name: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"password must be at least {MIN_PASSWORD} characters")
        with self.sessions.begin() as session:
            user = self._user(session, name)
            user.password_hash = generate_password_hash(password)

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

    def throttled(self, name: str, remote_addr: str) -> bool:
        """Too many failed logins lately for this name or from this address."""
        since = self.clock() - FAILURE_WINDOW
        with self.sessions() as session:
            for column, value in ((LoginAttempt.name, name), (LoginAttempt.remote_addr, remote_addr)):
                failures = session.execute(
                    select(func.count()).where(column == value, LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since)
                ).scalar_one()
                if failures >= MAX_FAILURES:
                    return True
        return False

    def login(self, name: str, password: str, remote_addr: str) -> str | None:
        """The staff member's name if the password is right (and the account active)."""
        now = self.clock()
        with self.sessions.begin() as session:
            user = session.execute(select(StaffUser).where(StaffUser.name == name)).scalar_one_or_none()
            good = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
            ok = bool(user and user.active and good)
            session.add(LoginAttempt(name=name[:80], remote_addr=remote_addr[:64], succeeded=ok, at=now))
            session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - 4 * FAILURE_WINDOW))
            return user.name if ok else None

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

    def exists(self, name: str) -> bool:
        with self.sessions() as session:
            return session.execute(select(StaffUser.id).where(StaffUser.name == name, StaffUser.active.is_(True))).first() is not None
