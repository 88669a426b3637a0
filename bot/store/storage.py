"""Storage with SQLAlchemy 2: conversations, messages, and the dialogue state.

SQLite by default (WAL mode, writers serialised with BEGIN IMMEDIATE so that several gunicorn
workers never deadlock on a lock upgrade); PostgreSQL via DATABASE_URL. The schema is owned by
Alembic (migrations/); `create_schema` exists for throwaway test databases only.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from bot.core.messages import StaffView

log = logging.getLogger("klinik.storage")

INBOUND, OUTBOUND = "in", "out"
# Delivery statuses in the order they happen; a late callback never moves a message backwards.
STATUS_RANK = {"accepted": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4, "read": 5}
FINAL_FAILURES = {"failed", "undelivered"}
CASE_OPEN, CASE_CLOSED = "open", "closed"
# A booking holds its places from the patient's "ya" until staff confirm or reject it.
BOOKING_HELD, BOOKING_CONFIRMED, BOOKING_REJECTED, BOOKING_CANCELLED = (
    "held",
    "confirmed",
    "rejected",
    "cancelled",
)
ALERT_PENDING, ALERT_SENT, ALERT_FAILED, ALERT_NONE = "pending", "sent", "failed", "none"
OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_SENT, OUTBOX_FAILED = "pending", "sending", "sent", "failed"
STAFF_ALERT, PATIENT_MESSAGE = "staff_alert", "patient_message"
SQLITE_LOCK_TIMEOUT = 30.0  # seconds a writer waits for another to finish
SCRUB_WAIT_MS = 5000  # how long the checkpoint after a deletion waits for readers
_READ_ONLY = "klinik_read_only"
# Reasons recorded on inbound messages that the dialogue engine did not see.
RATE_NOTICE, RATE_SILENCED, DUPLICATE = "rate_limit_notice", "rate_limited", "duplicate"
PROCESSING_FAILED = "processing_failed"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """Timestamps stored as UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use timezone-aware UTC timestamps")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_name)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class Conversation(Base):
    """One per patient WhatsApp id."""

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    profile_name: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the first-contact notice (automated assistant, what is stored, how to erase) was sent.
    notice_shown_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the patient's data was erased: the row stays, without number, name or content.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When an unfinished booking in `state` expires (the worker clears abandoned ones).
    booking_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The flood limit's window: when it started, inbound messages in it, when the notice went out.
    rate_window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rate_window_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    rate_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Message(Base):
    """A message in either direction. Inbound rows carry what the bot understood; outbound
    rows carry their delivery status."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_created", "conversation_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3))
    channel_message_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    body: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list | None] = mapped_column(JSON)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    location_label: Mapped[str | None] = mapped_column(String(500))
    choice_id: Mapped[str | None] = mapped_column(String(500))
    choice_text: Mapped[str | None] = mapped_column(String(500))
    in_reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    intent: Mapped[str | None] = mapped_column(String(64))
    decision: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(64))
    actions: Mapped[list | None] = mapped_column(JSON)
    rate_limited: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    staff_name: Mapped[str | None] = mapped_column(String(80))  # set on a staff member's reply
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def sender(self) -> str:
        """Who wrote it: patient, bot or staff."""
        if self.direction == INBOUND:
            return "patient"
        return "staff" if self.staff_name else "bot"


class Booking(Base):
    """An appointment: held for the patient until staff confirm or reject it (or confirmed at
    once: clinic.yaml schedule.auto_confirm); it holds its places in booking_places."""

    __tablename__ = "bookings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    complaint: Mapped[str] = mapped_column(Text, default="")
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=BOOKING_HELD)
    decided_by: Mapped[str | None] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    treatment: Mapped[str | None] = mapped_column(String(32))
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When its reminder was queued (bot.services.reminders): never a second one.
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the patient said they will come (bot.core.messages.ConfirmAttendance).
    attending_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def minutes(self, default: int) -> int:
        return appointment_minutes(self.start_at, self.end_at, default)


def appointment_minutes(start_at: datetime, end_at: datetime | None, default: int) -> int:
    """How long an appointment takes; `default` for one stored without an end."""
    return int(((end_at or start_at) - start_at).total_seconds() // 60) or default


class BookingPlace(Base):
    """One place (a therapist or room) in one slot, held by a booking. The unique (slot,
    place) pair is what makes two patients unable to hold the same last place, whatever
    races happen: the second insert fails and that patient is offered other slots."""

    __tablename__ = "booking_places"
    __table_args__ = (UniqueConstraint("slot_at", "place", name="uq_booking_places_slot_place"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"), index=True)
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime)
    place: Mapped[int] = mapped_column(Integer)


class SlotTaken(Exception):
    """The last place of a slot went to another patient while this message was read."""


class HandoffCase(Base):
    """A chat handed to staff. While one is open for a patient, the bot stays quiet."""

    __tablename__ = "handoff_cases"
    __table_args__ = (
        # At most one open case per conversation, whatever races happen.
        Index(
            "uq_handoff_cases_open_conversation",
            "conversation_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=CASE_OPEN)
    summary: Mapped[str] = mapped_column(Text, default="")
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))
    alert_status: Mapped[str] = mapped_column(String(16), default=ALERT_PENDING)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When staff first wrote to the patient in this case (the report's time to first reply).
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffUser(Base):
    """A staff account for the console. Passwords are stored only as werkzeug hashes."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Kept in the session cookie; bumped on logout and password change to end every session.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiToken(Base):
    """A bearer token for the JSON API, stored as its SHA-256 (the token itself is random)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class LoginAttempt(Base):
    """Login attempts, kept in the database so the rate limit holds across gunicorn workers."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    remote_addr: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Review(Base):
    """A staff decision on a message the bot did not understand: learned (as an example of
    `intent`) or dismissed. One per message."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    outcome: Mapped[str] = mapped_column(String(16))
    intent: Mapped[str | None] = mapped_column(String(64))
    by: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LearnedExample(Base):
    """A phrasing staff taught the bot from a message it did not understand: an example of
    `intent` that every worker adds to the knowledge base. Kept here rather than in a file so
    that every web process sees it and a deploy on a fresh disk keeps it. It is the patient's
    own words, so it goes with its message: at the end of the retention period, or when the
    patient asks for erasure."""

    __tablename__ = "learned_examples"
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused: see TaughtExamples.version

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    intent: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    by: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FeedbackAnswer(Base):
    """A patient's answer to the satisfaction question: helpful or not, about a topic (`intent`,
    with the patient's message whose answer was rated) or a closed case. It goes with the
    patient's messages (purge, erasure); the report keeps only anonymous daily counts of it."""

    __tablename__ = "feedback_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    rated_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), index=True)
    intent: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_cases.id", ondelete="SET NULL"))
    helpful: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DailyCount(Base):
    """An anonymous figure of the clinic's report (bot.services.insights): how often `metric` happened on
    a Jakarta day, per `label` (an intent or triage rule id, a status, a duration in seconds;
    never a number, a name or a message's text). Kept when messages are purged or erased."""

    __tablename__ = "daily_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """Who did what to which patient's data, and when: never any content. No foreign key, so
    the entry outlives the conversation it names."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[int | None] = mapped_column(Integer, index=True)
    detail: Mapped[dict | None] = mapped_column(JSON)


class OutboxItem(Base):
    """A message to send through the channel's sender, written in the same transaction
    as what caused it, and sent (at least once) by the worker with retries."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_cases.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    # The appointment a reminder is about: withdrawn, unsent, when its time is given up.
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"), index=True)
    to_address: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, default="")
    template_id: Mapped[str | None] = mapped_column(String(64))
    content_variables: Mapped[dict | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default=OUTBOX_PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    channel_message_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def make_engine(url: str, **options) -> Engine:
    """An engine with the per-database settings this application relies on. Statement
    parameters are hidden from errors and logs: they are patients' messages."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_LOCK_TIMEOUT}, hide_parameters=True, **options)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # Let SQLAlchemy, not the driver, begin transactions (see _sqlite_begin).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Deleted rows are overwritten with zeros, not left readable in free space
            # (erasure and retention delete patients' messages; see scrub()).
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection):
            # Take the write lock up front: two transactions that both read and then write
            # would otherwise fail with "database is locked" instead of waiting their turn.
            # A read-only session (read_only_sessions) reads a snapshot and waits for nobody.
            if connection.get_execution_options().get(_READ_ONLY):
                connection.connection.dbapi_connection.execute("BEGIN")
            else:
                begin_immediate(connection.connection.dbapi_connection)

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True, **options)


def begin_immediate(dbapi_connection, timeout: float = SQLITE_LOCK_TIMEOUT) -> None:
    """BEGIN IMMEDIATE, waiting for the write lock in steps of about a millisecond.

    SQLite's own busy handler sleeps longer and longer (up to 100 ms) between tries, so under
    steady contention a waiting writer keeps losing to newcomers and some requests waited
    seconds (p99 1.5 s at 4 connections in bench/webhook_throughput.py). Here every waiter tries
    again soon after the lock is released. Statements inside the transaction keep the busy
    timeout: once BEGIN IMMEDIATE succeeds, nothing else in WAL mode waits for another writer."""
    deadline = time.monotonic() + timeout
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                if time.monotonic() >= deadline:
                    raise
            time.sleep(random.uniform(0.0002, 0.0015))
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _engine_of(bind: Engine | Session | sessionmaker[Session]) -> Engine:
    """The engine of an engine, a session, or a factory of sessions."""
    if isinstance(bind, sessionmaker):
        return bind.kw["bind"]
    return bind.bind if isinstance(bind, Session) else bind


def read_only_sessions(bind: Engine | sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions that only read (on an engine, or on the engine of other sessions): on SQLite
    they do not take the write lock, so they neither wait for writers nor make them wait (and
    can run while the same thread holds a write)."""
    engine = _engine_of(bind)
    return sessionmaker(engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False)


def create_schema(engine: Engine) -> None:
    """Create tables directly (throwaway test databases; real ones use `python -m bot db upgrade`)."""
    Base.metadata.create_all(engine)


def scrub(bind: Engine | sessionmaker[Session]) -> None:
    """After rows of patients' data were deleted and committed: on SQLite, copy the write-ahead
    log into the database file and empty it (a TRUNCATE checkpoint), since the -wal file still
    holds every page as written before the deletion. With secure_delete the deleted rows are
    zeros in the database file, so nothing of them is readable in any file afterwards.

    Waits up to SCRUB_WAIT_MS for readers to finish; a checkpoint that could not complete is
    logged (SQLite's next automatic checkpoint overwrites the log later). PostgreSQL keeps
    deleted rows until VACUUM reuses their space (docs/DEPLOYMENT.md)."""
    engine = _engine_of(bind)
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        raw.execute(f"PRAGMA busy_timeout={SCRUB_WAIT_MS}")
        try:
            busy, _log_pages, _copied = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(SQLITE_LOCK_TIMEOUT * 1000)}")
    if busy:
        log.error("write-ahead log not emptied after deleting patients' data: readers kept it busy")


# -- repository functions used by the inbox ---------------------------------------------------


# -- the inbox's path: a handful of prebuilt Core statements per message ----------------------
# Every patient message runs these; as prebuilt Core statements they cost a fraction of ORM
# queries and flushes (SQLAlchemy compiles each once and caches it). The ORM objects are loaded
# only where a message needs more (a handoff, the privacy commands, a retry's stored answer).

_conversations, _messages = Conversation.__table__, Message.__table__


@dataclass
class LockedConversation:
    """The columns of a patient's conversation that every message reads and writes."""

    id: int
    state: dict
    booking_expires_at: datetime | None
    notice_shown_at: datetime | None
    rate_window_start: datetime | None
    rate_window_count: int
    rate_notice_at: datetime | None


_LOCKED_COLUMNS = tuple(_conversations.c[field.name] for field in dataclasses.fields(LockedConversation))
_UPSERTS: dict[str, object] = {}
_FIND_CHANNEL_ID = select(_messages.c.id).where(_messages.c.channel_message_id == bindparam("channel_message_id"))
_SAVED_COLUMNS = [column.name for column in _LOCKED_COLUMNS if column.name != "id"]
_SAVE_CONVERSATION = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("conversation_id"))
    .values({name: bindparam(name, type_=_conversations.c[name].type) for name in _SAVED_COLUMNS})
)
_PEEK_CONVERSATION = select(*_LOCKED_COLUMNS).where(_conversations.c.address == bindparam("address"))
_INSERT_MESSAGE = insert(_messages).returning(_messages.c.id, sort_by_parameter_order=True)


def _upsert(dialect: str):
    """INSERT ... ON CONFLICT (address) DO UPDATE ... RETURNING, built once per dialect."""
    statement = _UPSERTS.get(dialect)
    if statement is None:
        insert_for = pg_insert if dialect == "postgresql" else sqlite_insert
        c = _conversations.c
        now = bindparam("now", type_=c.updated_at.type)
        statement = insert_for(_conversations).values(
            address=bindparam("address", type_=c.address.type),
            profile_name=bindparam("profile_name", type_=c.profile_name.type),
            state={},
            created_at=now,
            updated_at=now,
            last_inbound_at=now,
            rate_window_count=0,
        )
        statement = _UPSERTS[dialect] = statement.on_conflict_do_update(
            index_elements=["address"],
            set_={
                "updated_at": statement.excluded.updated_at,
                "last_inbound_at": statement.excluded.last_inbound_at,
                "profile_name": func.coalesce(statement.excluded.profile_name, _conversations.c.profile_name),
            },
        ).returning(*_LOCKED_COLUMNS)
    return statement


def lock_conversation(
    session: Session, address: str, now: datetime, profile_name: str | None = None
) -> LockedConversation:
    """The patient's conversation, created if new, stamped with this inbound message and
    locked for this transaction, in one statement (an upsert locks the row it updates).

    Concurrent messages of one patient therefore take turns: a duplicate delivery waits for
    the original to commit and then finds it stored."""
    row = session.execute(
        _upsert(session.bind.dialect.name), {"address": address, "profile_name": profile_name, "now": now}
    ).one()
    return LockedConversation(*row)


def peek_conversation(session: Session, address: str) -> LockedConversation | None:
    """The patient's conversation as last committed, read without locking it (None: a new
    patient): the inbox works out a turn from it before taking the write lock."""
    row = session.execute(_PEEK_CONVERSATION, {"address": address}).first()
    return LockedConversation(*row) if row is not None else None


def save_conversation(session: Session, conversation: LockedConversation) -> None:
    values = {name: getattr(conversation, name) for name in _SAVED_COLUMNS}
    session.execute(_SAVE_CONVERSATION, {"conversation_id": conversation.id, **values})


def channel_id_stored(session: Session, channel_message_id: str) -> bool:
    return session.execute(_FIND_CHANNEL_ID, {"channel_message_id": channel_message_id}).first() is not None


def insert_messages(session: Session, rows: list[dict]) -> list[int]:
    """Insert message rows (column values), returning their ids in the same order."""
    if not rows:
        return []
    return list(session.execute(_INSERT_MESSAGE, rows).scalars())


_daily_counts = DailyCount.__table__
_ADD_COUNTS: dict[str, object] = {}


def add_counts(session: Session, counts: Mapping[tuple[date, str, str], int]) -> None:
    """Add to the daily counts ((day, metric, label) -> how many more), creating rows as
    needed, in one statement; in key order, so two transactions never wait on each other in a
    circle."""
    if not counts:
        return
    dialect = session.bind.dialect.name
    statement = _ADD_COUNTS.get(dialect)
    if statement is None:
        insert_for = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = insert_for(_daily_counts)
        statement = _ADD_COUNTS[dialect] = statement.on_conflict_do_update(
            index_elements=["day", "metric", "label"], set_={"count": _daily_counts.c.count + statement.excluded.count}
        )
    rows = [
        {"day": day, "metric": metric, "label": label, "count": n}
        for (day, metric, label), n in sorted(counts.items())
        if n
    ]
    if rows:
        session.execute(statement, rows)


def lock_key(session: Session, key: str) -> None:
    """Serialise the transactions that take the same key, until they end: a PostgreSQL
    advisory lock (SQLite write transactions are serialised already, by BEGIN IMMEDIATE)."""
    if session.bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


def serialises_writers(bind: Session | sessionmaker[Session]) -> bool:
    """Whether a write transaction holds the whole database from its first statement (SQLite,
    BEGIN IMMEDIATE): then nothing can commit between two of its reads, and every other
    writer waits for it."""
    return _engine_of(bind).dialect.name == "sqlite"


def find_by_channel_id(session: Session, channel_message_id: str) -> Message | None:
    return session.execute(select(Message).where(Message.channel_message_id == channel_message_id)).scalar_one_or_none()


def replies_to(session: Session, message: Message) -> list[Message]:
    query = select(Message).where(Message.in_reply_to_id == message.id).order_by(Message.position, Message.id)
    return list(session.execute(query).scalars())


def count_inbound(conversation: LockedConversation, now: datetime, seconds: int = 60) -> int:
    """Count one more inbound message in the patient's flood window and return the count.

    A fixed window, started by the first message after the previous one ended, kept on the
    conversation row (which the caller holds locked): no query per message."""
    start = conversation.rate_window_start
    if start is None or now - start >= timedelta(seconds=seconds) or now < start:
        conversation.rate_window_start, conversation.rate_window_count = now, 0
    conversation.rate_window_count += 1
    return conversation.rate_window_count


def take_rate_notice(conversation: LockedConversation, now: datetime) -> bool:
    """True the first time in a flood window (the patient gets one notice), False after."""
    notice = conversation.rate_notice_at
    if notice is not None and notice >= conversation.rate_window_start:
        return False
    conversation.rate_notice_at = now
    return True


def status_moves_forward(current: str | None, status: str) -> bool:
    """Whether `status` is news after `current` (statuses can arrive out of order)."""
    if current in FINAL_FAILURES or current == "read":
        return False
    return status in FINAL_FAILURES or STATUS_RANK.get(status, -1) > STATUS_RANK.get(current or "", -1)


def update_status(session: Session, message: Message, status: str, error_code: str | None, now: datetime) -> bool:
    """Record a delivery status unless it would move the message backwards. True if changed."""
    if not status_moves_forward(message.status, status):
        return False
    message.status = status
    message.error_code = error_code or None
    message.status_at = now
    return True


def full_slots(session: Session, since: datetime, places: int, ignoring: int | None = None) -> frozenset[datetime]:
    """The slots from `since` on with no place left (timezone-aware: equal to the core's Jakarta
    times), not counting the places of booking `ignoring` (the appointment a patient is moving)."""
    query = select(BookingPlace.slot_at).where(BookingPlace.slot_at >= since)
    if ignoring is not None:
        query = query.where(BookingPlace.booking_id != ignoring)
    return frozenset(session.scalars(query.group_by(BookingPlace.slot_at).having(func.count() >= places)))


def hold_places(session: Session, booking: Booking, slots, places: int) -> None:
    """A place in each slot for `booking`, the lowest free one; SlotTaken when a slot has
    none left. Each try runs in a savepoint, so a place taken by a concurrent transaction
    (the unique constraint refuses it) is skipped without spoiling the caller's transaction."""
    for slot in slots:
        taken = set(session.scalars(select(BookingPlace.place).where(BookingPlace.slot_at == slot)))
        for place in (p for p in range(1, places + 1) if p not in taken):
            try:
                with session.begin_nested():
                    session.add(BookingPlace(booking_id=booking.id, slot_at=slot, place=place))
            except IntegrityError:
                continue
            break
        else:
            raise SlotTaken(slot)


def _upcoming(*columns):
    """The patient's next appointment, held or confirmed, not yet begun."""
    return (
        select(*columns)
        .where(
            Booking.conversation_id == bindparam("conversation_id"),
            Booking.status.in_((BOOKING_HELD, BOOKING_CONFIRMED)),
            Booking.start_at >= bindparam("now", type_=Booking.start_at.type),
        )
        .order_by(Booking.start_at)
        .limit(1)
    )


_UPCOMING_BOOKING = _upcoming(Booking)
_UPCOMING_DETAILS = _upcoming(
    Booking.id, Booking.name, Booking.complaint, Booking.start_at, Booking.end_at, Booking.treatment, Booking.status
)


def upcoming_booking(session: Session, conversation_id: int, now: datetime) -> Booking | None:
    """The patient's next appointment (held or confirmed, not yet begun), to change it."""
    return session.scalars(_UPCOMING_BOOKING, {"conversation_id": conversation_id, "now": now}).first()


def upcoming_details(session: Session, conversation_id: int, now: datetime):
    """The columns of the patient's next appointment that a message reads (a row), or None:
    every message reads them, and a Core row costs a fraction of an ORM object."""
    return session.execute(_UPCOMING_DETAILS, {"conversation_id": conversation_id, "now": now}).first()


def release_booking(session: Session, booking: Booking) -> None:
    """A cancelled, rejected or moved booking gives its places back, and its reminder, if still
    unsent, is withdrawn with its line in the transcript: it would name a time no longer held."""
    session.execute(delete(BookingPlace).where(BookingPlace.booking_id == booking.id))
    unsent = (OutboxItem.booking_id == booking.id, OutboxItem.status == OUTBOX_PENDING)
    transcript = Message.id.in_(select(OutboxItem.message_id).where(*unsent))
    session.execute(delete(Message).where(transcript).execution_options(synchronize_session=False))
    session.execute(delete(OutboxItem).where(*unsent).execution_options(synchronize_session=False))


def open_case(session: Session, conversation: Conversation) -> HandoffCase | None:
    query = select(HandoffCase).where(HandoffCase.conversation_id == conversation.id, HandoffCase.status == CASE_OPEN)
    return session.execute(query).scalar_one_or_none()


_OPEN_CASE_ID = select(HandoffCase.id).where(
    HandoffCase.conversation_id == bindparam("conversation_id"), HandoffCase.status == CASE_OPEN
)
_LAST_STAFF_REPLY = select(func.max(Message.created_at)).where(
    Message.conversation_id == bindparam("conversation_id"),
    Message.direction == OUTBOUND,
    Message.staff_name.is_not(None),
)


def has_open_case(session: Session, conversation_id: int | None) -> bool:
    """Whether staff have the chat (its case is open), without loading the case."""
    if conversation_id is None:
        return False
    return session.execute(_OPEN_CASE_ID, {"conversation_id": conversation_id}).first() is not None


def staff_view(session: Session, conversation_id: int | None) -> StaffView:
    """Whether staff have the chat (its case is open: the one fact) and when they last replied."""
    if not has_open_case(session, conversation_id):
        return StaffView()
    replied = session.execute(_LAST_STAFF_REPLY, {"conversation_id": conversation_id}).scalar_one_or_none()
    return StaffView(True, replied)


def recent_inbound(session: Session, conversation: Conversation, limit: int = 3) -> list[Message]:
    query = (
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.direction == INBOUND)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    )
    return list(reversed(session.execute(query).scalars().all()))
