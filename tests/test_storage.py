"""Storage and the inbox on SQLite and PostgreSQL: migrations, idempotency under concurrency."""

import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest
import servers
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select, text

from bot.services.inbox import InboundMessage, Inbox
from bot.store import migrate, storage
from bot.store.storage import Base, Conversation, Message


@pytest.fixture
def database(database_url):
    engine = storage.make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def inbox(database, engine):
    return Inbox(storage.session_factory(database), engine, max_reply_length=1600, rate_limit_per_minute=20)


def count(database, *criteria) -> int:
    with storage.session_factory(database)() as session:
        return session.execute(select(func.count(Message.id)).where(*criteria)).scalar_one()


def test_migrations_create_exactly_the_models(database):
    assert migrate.current_revision(database) == migrate.head_revision()
    with database.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_upgrade_is_idempotent(database):
    migrate.upgrade(database)
    migrate.upgrade(database)
    assert migrate.current_revision(database) == migrate.head_revision()


def test_0010_renames_the_twilio_columns_and_back_keeping_the_values(database):
    """Down to 0009 (the Twilio names), a row written there, up again: the values under the new
    names, the unique constraints renamed with them, and the schema exactly the models."""
    migrate.downgrade(database, "0009")
    assert {"wa_id"} <= {c["name"] for c in inspect(database).get_columns("conversations")}
    assert [u["name"] for u in inspect(database).get_unique_constraints("outbox")] == ["uq_outbox_twilio_sid"]
    with database.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO conversations (wa_id, state, created_at, updated_at, rate_window_count)"
                " VALUES ('whatsapp:+6280000000009', '{}', :at, :at, 0)"
            ),
            {"at": datetime(2026, 1, 1, tzinfo=UTC)},
        )
        (conversation_id,) = connection.execute(text("SELECT id FROM conversations")).one()
        connection.execute(
            text(
                "INSERT INTO messages (conversation_id, direction, twilio_sid, body, button_payload, button_text,"
                " position, rate_limited, created_at) VALUES (:c, 'in', 'SMold', 'halo', 'p1', 'Ya', 0, :f, :at)"
            ),
            {"c": conversation_id, "f": False, "at": datetime(2026, 1, 1, tzinfo=UTC)},
        )
    migrate.upgrade(database)
    assert migrate.current_revision(database) == migrate.head_revision()
    with storage.session_factory(database)() as session:
        message = session.execute(select(Message)).scalar_one()
        assert (message.channel_message_id, message.choice_id, message.choice_text) == ("SMold", "p1", "Ya")
        assert session.execute(select(Conversation.address)).scalar_one() == "whatsapp:+6280000000009"
    assert [u["name"] for u in inspect(database).get_unique_constraints("outbox")] == ["uq_outbox_channel_message_id"]
    with database.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_timestamps_come_back_in_utc(database):
    sessions = storage.session_factory(database)
    jakarta = timezone(timedelta(hours=7))
    moment = datetime(2026, 11, 26, 9, 30, tzinfo=jakarta)
    with sessions.begin() as session:
        session.add(Conversation(address="whatsapp:+6280000000001", state={}, created_at=moment, updated_at=moment))
    with sessions() as session:
        stored = session.execute(select(Conversation)).scalar_one()
    assert stored.created_at == moment and stored.created_at.utcoffset() == timedelta(0)
    with pytest.raises(Exception, match="naive datetime"), sessions.begin() as session:
        session.add(
            Conversation(
                address="whatsapp:+6280000000002", state={}, created_at=datetime(2026, 1, 1), updated_at=moment
            )
        )


def test_concurrent_duplicates_are_stored_once_and_get_the_same_reply(inbox, database):
    """Ten deliveries of one MessageSid at the same moment: one row, one reply, no second action."""
    inbound = InboundMessage(
        message_id="SMconcurrent", sender="whatsapp:+6281234567890", body="mau booking akupuntur besok jam 3"
    )
    start = threading.Barrier(10)
    outcomes, errors = [], []

    def deliver():
        start.wait()
        try:
            outcomes.append(inbox.receive(inbound))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(outcomes) == 10
    assert len({tuple(r.text for r in o.replies) for o in outcomes}) == 1
    assert sum(not o.duplicate for o in outcomes) == 1
    assert count(database, Message.direction == "in") == 1
    assert count(database, Message.direction == "out") == len(outcomes[0].replies)
    with storage.session_factory(database)() as session:
        assert session.execute(select(Message.actions).where(Message.direction == "in")).scalar_one() == [
            "start_booking"
        ]


def test_concurrent_messages_of_one_patient_keep_the_state_consistent(inbox, database):
    """Twenty different messages of one patient at once: each stored, none lost, state intact."""
    start = threading.Barrier(20)
    errors = []

    def deliver(n):
        start.wait()
        try:
            inbox.receive(InboundMessage(message_id=f"SMpar{n}", sender="whatsapp:+6281234567891", body=f"halo {n}"))
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert count(database, Message.direction == "in") == 20
    with storage.session_factory(database)() as session:
        conversations = session.execute(select(Conversation)).scalars().all()
    assert len(conversations) == 1
    assert conversations[0].state["started"] is True


def test_a_new_patient_arriving_twice_at_once_gets_one_conversation(inbox, database):
    start = threading.Barrier(8)

    def deliver(n):
        start.wait()
        inbox.receive(InboundMessage(message_id=f"SMnew{n}", sender="whatsapp:+6281234567892", body="halo"))

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with storage.session_factory(database)() as session:
        assert session.execute(select(func.count(Conversation.id))).scalar_one() == 1


@pytest.mark.parametrize(
    "sequence, final",
    [
        (["queued", "sent", "delivered", "read"], "read"),
        (["delivered", "sent", "queued"], "delivered"),
        (["sent", "failed", "delivered"], "failed"),
        (["read", "undelivered"], "read"),
    ],
)
def test_status_only_moves_forward(sequence, final):
    message = Message(direction="out", body="x")
    now = datetime.now(UTC)
    for status in sequence:
        storage.update_status(None, message, status, None, now)
    assert message.status == final


def test_a_waiting_sqlite_writer_tries_again_every_millisecond_or_so(tmp_path, monkeypatch):
    """begin_immediate polls in short steps instead of SQLite's backing-off sleeps (up to
    100 ms, which made some webhook requests wait seconds under load), gets the lock once it
    is released, and gives up with "database is locked" at its deadline."""
    import sqlite3

    path = tmp_path / "lock.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("CREATE TABLE t (x)")
    waiter = sqlite3.connect(path, isolation_level=None, timeout=30)

    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        storage.begin_immediate(waiter, timeout=0.05)
    assert waiter.execute("PRAGMA busy_timeout").fetchone() == (50,)  # restored for the statements

    sleeps = []

    def pause(seconds):  # the holder finishes while the waiter pauses for the 20th time
        sleeps.append(seconds)
        if len(sleeps) == 20:
            holder.execute("COMMIT")

    monkeypatch.setattr(storage.time, "sleep", pause)
    storage.begin_immediate(waiter, timeout=30)
    waiter.execute("INSERT INTO t VALUES (1)")
    waiter.execute("COMMIT")
    assert len(sleeps) == 20 and max(sleeps) <= 0.002  # the first try after the release won
    assert holder.execute("SELECT x FROM t").fetchall() == [(1,)]


def test_a_read_only_session_neither_waits_for_a_writer_nor_blocks_one(database):
    """On SQLite every other transaction takes the write lock first; a read-only session (the
    knowledge reload asks for taught examples, sometimes while its own thread is writing)
    reads the last committed state instead of waiting, on both databases."""
    from bot.store.storage import AuditEntry

    def entry(action):
        return AuditEntry(at=datetime.now(UTC), actor="sari", action=action)

    sessions, readers = storage.session_factory(database), storage.read_only_sessions(database)
    with sessions.begin() as writer:
        writer.add(entry("first"))
        writer.flush()
        with readers() as reader:
            assert reader.execute(select(func.count(AuditEntry.id))).scalar_one() == 0
    with readers() as reader:
        assert reader.execute(select(func.count(AuditEntry.id))).scalar_one() == 1
        with sessions.begin() as writer:  # a reader in progress does not hold writers back
            writer.add(entry("second"))


class CountingEngine:
    """The engine, counting its turns; `during_turn` runs inside the first turn, as something
    another request commits while this message's turn is worked out before the lock."""

    def __init__(self, engine, during_turn=None):
        self._engine = engine
        self.turns = 0
        self.during_turn = during_turn

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def step(self, *args, **kwargs):
        self.turns += 1
        if self.during_turn is not None:
            during, self.during_turn = self.during_turn, None
            during()
        return self._engine.step(*args, **kwargs)


def test_a_turn_holds_no_other_patient_back_and_is_worked_out_once(database, engine):
    """The engine's work, most of a message's time, holds nobody back: another patient's
    message is stored while this one's turn is worked out (on SQLite, one writer at a time, the
    turn is worked out before the write lock; on PostgreSQL the lock is this patient's row),
    and no message is worked out twice."""
    counting = CountingEngine(engine)
    inbox = Inbox(storage.session_factory(database), counting, max_reply_length=1600, rate_limit_per_minute=20)
    other, stored_during_turn = [], []

    def other_patient_writes():
        # In a thread of its own, joined with a time limit: if this turn held the write lock,
        # the other message would wait for it (and the assertion below fail), never deadlock.
        thread = threading.Thread(
            target=lambda: other.append(
                inbox.receive(InboundMessage(message_id="SMother", sender="whatsapp:+6281234567896", body="halo"))
            )
        )
        thread.start()
        thread.join(timeout=20)
        stored_during_turn.append(not thread.is_alive())

    counting.during_turn = other_patient_writes
    for n, body in enumerate(["halo", "berapa harga akupuntur?", "mau booking akupuntur"]):
        inbox.receive(InboundMessage(message_id=f"SMone{n}", sender="whatsapp:+6281234567893", body=body))
    assert stored_during_turn == [True]
    assert len(other) == 1 and other[0].replies
    assert counting.turns == 4
    assert count(database, Message.direction == "in") == 4


def test_on_sqlite_a_turn_worked_out_before_a_change_is_worked_out_again(tmp_path, engine):
    """SQLite, where the turn is worked out before the write lock: staff get the chat (the
    patient asked for them) meanwhile. The lock shows the change, and the question is answered
    as it is once staff have the chat, exactly as if the two messages had come one after the
    other. (On PostgreSQL the turn is worked out under the patient's row lock: no meanwhile.)"""
    patient, other = "whatsapp:+6281234567894", "whatsapp:+6281234567895"
    question = "berapa harga akupuntur?"
    database = storage.make_engine(servers.sqlite_database(tmp_path))
    sessions = storage.session_factory(database)
    sequential = Inbox(sessions, engine, max_reply_length=1600, rate_limit_per_minute=20)
    sequential.receive(InboundMessage(message_id="SMseq1", sender=other, body="saya mau bicara dengan staf"))
    expected = sequential.receive(InboundMessage(message_id="SMseq2", sender=other, body=question))
    assert expected.paused is True

    counting = CountingEngine(engine)
    inbox = Inbox(sessions, counting, max_reply_length=1600, rate_limit_per_minute=20)
    counting.during_turn = lambda: inbox.receive(
        InboundMessage(message_id="SMrace1", sender=patient, body="saya mau bicara dengan staf")
    )
    outcome = inbox.receive(InboundMessage(message_id="SMrace2", sender=patient, body=question))
    assert counting.turns == 3  # the question's draft, the request for staff, the question again
    assert outcome.paused is True
    assert [r.text for r in outcome.replies] == [r.text for r in expected.replies]
    with sessions() as session:
        stored = session.execute(select(Message.body).where(Message.direction == "in").order_by(Message.id))
        assert list(stored.scalars())[-2:] == ["saya mau bicara dengan staf", question]
    database.dispose()
