"""Receiving a patient's message: store it once, run the dialogue engine, store the replies.

Everything happens in one transaction that holds the patient's conversation row, except, on
SQLite, the draft: the engine's turn worked out first, from the conversation as last
committed, without a lock, and kept only if the transaction reads the very inputs it came from
(else the turn is worked out again under the lock). A duplicate delivery of the same channel
message id (a channel's retry, or two deliveries at once) waits for the first to commit, finds
it, and gets the very same replies with no second side effect. Channel-neutral: a channel
(bot/channels/) turns what it receives into an InboundMessage (bot.core.messages) and the
outcome into what its platform expects.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.core.dialogue import Engine
from bot.core.messages import (
    BookAppointment,
    CancelBooking,
    ConfirmAttendance,
    ConversationState,
    EraseData,
    Handoff,
    InboundMessage,
    Incoming,
    Match,
    Option,
    Rating,
    ReportData,
    StaffView,
    Turn,
    booked,
    describe_action,
)
from bot.core.render import fill, split_text
from bot.core.schedule import CalendarView
from bot.core.triage import Level
from bot.logs import mask_phone
from bot.services import insights, metrics, privacy
from bot.services.handoff import HandoffDesk, StaffSettings, queue_to_patient, refresh_alert_status
from bot.services.live import LiveEngine, live
from bot.store import storage
from bot.store.storage import (
    INBOUND,
    OUTBOUND,
    PROCESSING_FAILED,
    RATE_NOTICE,
    RATE_SILENCED,
    Conversation,
    HandoffCase,
    Message,
    OutboxItem,
)

log = logging.getLogger("klinik.inbox")
# A deadlock or serialization failure (PostgreSQL) is worth another try of the transaction.
_RETRYABLE_SQLSTATES = {"40P01", "40001"}
_ATTEMPTS = 3
ERASED = describe_action(EraseData())
# Actions carried out on the conversation's ORM row (loaded only for them).
_ROW_ACTIONS = (Handoff, BookAppointment, CancelBooking, ConfirmAttendance, ReportData, EraseData)


class OptionTemplates(Protocol):
    """A channel's way to send a reply's options as buttons or a list (bot.core.messages.Option),
    in a message of their own after the reply: its short text, the template and its variables;
    or None (the numbered text alone)."""

    def template(self, options: tuple[Option, ...]) -> tuple[str, str, dict] | None: ...


@dataclass(frozen=True)
class _Step:
    """What the rate limit or the dialogue made of a message: the texts to send (with the options
    each lists, as data), and the turn."""

    texts: list[str]
    turn: Turn | None = None
    triage: str | None = None
    question: str = ""  # the satisfaction question, sent on its own as the template (not in texts)
    options: list[tuple[Option, ...]] = field(default_factory=list)  # beside texts; empty: none

    @property
    def match(self) -> Match | None:
        return self.turn.match if self.turn else None

    @property
    def actions(self) -> tuple:
        return self.turn.actions if self.turn else ()


@dataclass(frozen=True)
class _Inputs:
    """Everything of the database a turn depends on besides the message and the time."""

    state: dict
    staff: StaffView
    calendar: CalendarView

    def turn(self, engine: Engine, incoming: Incoming, now) -> Turn:
        return engine.step(ConversationState.from_dict(self.state), incoming, now, self.staff, self.calendar)


@dataclass(frozen=True)
class _Draft:
    """A turn worked out before the write lock (Inbox._draft), and what it was worked out from."""

    inputs: _Inputs
    turn: Turn


@dataclass(frozen=True)
class StoredReply:
    id: int
    text: str
    options: tuple[Option, ...] = ()  # the choices it lists, for a channel that shows them


@dataclass(frozen=True)
class Outcome:
    message_id: int
    replies: tuple[StoredReply, ...]
    duplicate: bool = False
    rate_limited: bool = False
    match: Match | None = None
    actions: tuple[str, ...] = ()
    # The conversation after this message: staff have it (a case is open), and the booking
    # question pending.
    paused: bool | None = None
    booking_step: str | None = None
    triage: str | None = None  # the message's triage level (emergency, doctor, none)
    failed: bool = False  # processing failed: stored with an apology


class Inbox:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        engine: Engine | LiveEngine,
        *,
        max_reply_length: int | None = None,
        rate_limit_per_minute: int,
        desk: HandoffDesk | None = None,
        retention_days: int = 365,
        satisfaction_template_id: str = "",
        clock: Callable = storage.utcnow,
    ):
        self.sessions = sessions
        self.read_sessions = storage.read_only_sessions(sessions)
        # The draft pays where one writer holds the whole database (SQLite). On PostgreSQL a
        # transaction locks only its patient's row, nobody else waits for the turn, and the
        # draft's extra reads cost more than they save (bench/webhook_throughput.py).
        self.drafting = storage.serialises_writers(sessions)
        self.engines = live(engine)
        self.desk = desk or HandoffDesk(self.engines, StaffSettings())
        self.max_reply_length = max_reply_length
        self.rate_limit = rate_limit_per_minute
        self.retention_days = retention_days
        # The quick-reply template the satisfaction question goes as (through the outbox, after
        # the turn's other replies); unset: the question ends the reply it comes with.
        self.satisfaction_template_id = satisfaction_template_id
        self.clock = clock

    @property
    def engine(self) -> Engine:
        """The engine serving now (the knowledge base may be reloaded while running)."""
        return self.engines.current()

    def receive(
        self, inbound: InboundMessage, max_reply_length: int | None = None, templates: OptionTemplates | None = None
    ) -> Outcome:
        """Store, answer and log one inbound message. `max_reply_length`: the channel's limit on
        one message (longer replies are split and stored as several); None: the inbox's own.
        `templates`: the channel sends options as buttons: every reply is in the outcome with
        its numbered text, and the buttons follow through the outbox in messages of their own."""
        started = time.perf_counter()
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                outcome = self._receive(inbound, max_reply_length or self.max_reply_length, templates)
                break
            except IntegrityError:
                # Only a same-MessageSid insert can collide here, and the conversation lock
                # makes even that unlikely: the other delivery committed, so answer as it did.
                outcome = self._replay(inbound.message_id)
                break
            except storage.SlotTaken:
                # Another patient took the last place meanwhile: read the message again, now
                # seeing the slot full (the patient is offered others).
                if attempt == _ATTEMPTS:
                    outcome = self._store_failed(inbound)
                    break
                log.info("slot taken meanwhile; message read again", extra={"fields": {"message": inbound.message_id}})
            except OperationalError as error:
                if attempt == _ATTEMPTS or getattr(error.orig, "sqlstate", None) not in _RETRYABLE_SQLSTATES:
                    raise  # the database is unavailable: 503, and the channel may retry
                log.warning(
                    "transaction retried",
                    extra={"fields": {"message": inbound.message_id, "sqlstate": error.orig.sqlstate}},
                )
            except Exception:  # noqa: BLE001 - never lose the message, never show a traceback
                log.exception(
                    "processing failed; message stored with an apology",
                    extra={"fields": {"message": inbound.message_id}},
                )
                outcome = self._store_failed(inbound)
                break
        if ERASED in outcome.actions and not outcome.duplicate:
            storage.scrub(self.sessions)
        seconds = time.perf_counter() - started
        decision = outcome.match.decision.value if outcome.match else None
        metrics.message_received(_received_as(outcome), decision, outcome.triage, len(outcome.replies), seconds)
        log.info(
            "inbound",
            extra={
                "fields": {
                    "message": inbound.message_id,
                    "from": mask_phone(inbound.sender),
                    "duplicate": outcome.duplicate,
                    "rate_limited": outcome.rate_limited,
                    "intent": outcome.match.intent if outcome.match else None,
                    "decision": decision,
                    "score": round(outcome.match.score, 3) if outcome.match else None,
                    "reason": outcome.match.reason if outcome.match else None,
                    "actions": ",".join(outcome.actions) or None,
                    "replies": len(outcome.replies),
                    "ms": round(seconds * 1000, 1),
                }
            },
        )
        return outcome

    def _receive(
        self, inbound: InboundMessage, max_reply_length: int | None, templates: OptionTemplates | None
    ) -> Outcome:
        """One inbound message: the draft (SQLite), then one transaction; each step does one job."""
        now = self.clock()
        engine = self.engine  # one engine for the whole message, taken before any lock
        incoming = Incoming(
            inbound.text,
            profile_name=inbound.profile_name,
            media_types=tuple(kind for _, kind in inbound.media),
            has_location=inbound.latitude is not None,
            choice_id=inbound.choice_id,
        )
        draft = self._draft(engine, inbound, incoming, now) if self.drafting else None
        with self.sessions.begin() as session:
            opened = _open(session, inbound, now)  # deduplicate: a retry gets the stored answer
            if isinstance(opened, Outcome):
                return opened
            conversation, message = opened
            state = ConversationState.from_dict(conversation.state)
            step = self._rate_limit(engine, conversation, message, state, incoming, now)
            step = step or self._converse(engine, session, conversation, message, state, incoming, now, draft)
            # persist the conversation and the message
            storage.save_conversation(session, conversation)
            (message_id,) = storage.insert_messages(session, [message])
            tally = insights.Tally()
            insights.count_inbound(tally, now, message, state, step.turn)
            # the ORM row, for the actions that change more than the conversation's own columns
            needs_row = any(isinstance(a, _ROW_ACTIONS) for a in step.actions)
            stored = session.get(Conversation, conversation.id) if needs_row else None
            texts = self._dispatch(session, stored, conversation.id, message_id, step, tally, now)
            pairs = _split(list(zip(texts, step.options or [()] * len(texts), strict=True)), max_reply_length)
            replies = _store_replies(session, conversation.id, message_id, pairs, now)
            queued = _buttons(pairs, templates)
            for text, template_id, variables in queued:
                # After the TwiML replies: the worker sends them once this transaction commits.
                queue_to_patient(
                    session, conversation.id, inbound.sender, text, now, template_id=template_id, variables=variables
                )
            tally.add(now, insights.MESSAGES, insights.BOT, len(replies) + len(queued))
            if step.question:
                # After the TwiML replies: the worker sends it once this transaction commits.
                template_id = self.satisfaction_template_id
                queue_to_patient(session, conversation.id, inbound.sender, step.question, now, template_id=template_id)
                tally.add(now, insights.MESSAGES, insights.BOT)
            tally.save(session)
            if any(isinstance(a, EraseData) for a in step.actions):
                keep = session.get(Message, message_id)
                privacy.erase(session, stored, now, privacy.PATIENT, engine.text("erased_by_staff_case"), keep=keep)
                conversation = stored
            after = ConversationState.from_dict(conversation.state)
            return Outcome(
                message_id=message_id,
                replies=replies,
                rate_limited=message.get("rate_limited", False),
                match=step.match,
                actions=tuple(message.get("actions") or ()),
                paused=storage.has_open_case(session, conversation.id),
                booking_step=after.booking.step if after.booking else None,
                triage=step.triage,
            )

    def _rate_limit(
        self, engine: Engine, conversation: Conversation, message: dict, state: ConversationState, incoming, now
    ) -> _Step | None:
        """A patient over the flood limit is silenced (one notice a minute), unless the message is
        an emergency; half a sign told over two messages is still remembered. None: not flooding."""
        if not self._floods(conversation, now):
            return None
        urgent, parts = engine.assess(incoming.text or "", state.danger_parts)
        if urgent.level is Level.EMERGENCY:
            return None
        conversation.state = dataclasses.replace(state, danger_parts=parts).to_dict()
        message["rate_limited"] = True
        noticed = storage.take_rate_notice(conversation, now)
        message["reason"] = RATE_NOTICE if noticed else RATE_SILENCED
        return _Step(texts=[engine.text("rate_limited")] if noticed else [], triage=urgent.level.label)

    def _draft(self, engine: Engine, inbound: InboundMessage, incoming: Incoming, now) -> _Draft | None:
        """The turn worked out before the write lock is taken, from the conversation as last
        committed (a snapshot, read without waiting for writers): the engine's work, most of a
        message's time, then no longer holds every other patient's message back (SQLite has one
        writer at a time). None for a retried delivery or a patient over the flood limit."""
        with self.read_sessions() as session:
            if storage.channel_id_stored(session, inbound.message_id):
                return None
            peeked = storage.peek_conversation(session, inbound.sender)
            if peeked is not None and self._floods(dataclasses.replace(peeked), now):
                return None  # counted on a copy: the lock counts the message
            inputs = self._inputs(session, peeked.id if peeked else None, peeked.state if peeked else {}, now)
        return _Draft(inputs, inputs.turn(engine, incoming, now))

    def _floods(self, conversation: storage.LockedConversation, now) -> bool:
        """Count this message in the patient's flood window: whether it goes over the limit."""
        return storage.count_inbound(conversation, now) > self.rate_limit

    def _inputs(self, session: Session, conversation_id: int | None, state: dict, now) -> _Inputs:
        """What the turn reads of the database, for the conversation with `state` (no id: a new
        patient's, not stored yet)."""
        booking = ConversationState.from_dict(state).booking
        calendar = self.desk.calendar(
            session, conversation_id, now, reading_slots=booking is not None, moving=bool(booking and booking.moving)
        )
        return _Inputs(state, storage.staff_view(session, conversation_id), calendar)

    def _converse(
        self,
        engine: Engine,
        session: Session,
        conversation: Conversation,
        message: dict,
        state,
        incoming,
        now,
        draft: _Draft | None = None,
    ) -> _Step:
        """The dialogue engine's turn, written into the conversation and the message's columns:
        the draft's turn if it was worked out from the very inputs the lock now shows (the
        engine is pure), otherwise worked out again (another message of the patient, or staff,
        changed something meanwhile)."""
        inputs = self._inputs(session, conversation.id, conversation.state, now)
        turn = draft.turn if draft is not None and draft.inputs == inputs else inputs.turn(engine, incoming, now)
        conversation.state = turn.state.to_dict()
        conversation.booking_expires_at = now + engine.booking.expiry if turn.state.booking else None
        if not state.started and turn.replies and conversation.notice_shown_at is None:
            conversation.notice_shown_at = now  # the first reply carries the notice
        if turn.match is not None:
            message.update(
                intent=turn.match.intent,
                decision=turn.match.decision.value,
                score=round(turn.match.score, 4),
                reason=turn.match.reason,
            )
        message["actions"] = [describe_action(a) for a in turn.actions] or None
        texts, question = [reply.text for reply in turn.replies], ""
        if self.satisfaction_template_id and turn.replies:
            last, question = turn.replies[-1].split_question()
            texts[-1] = last
        return _Step(
            texts=texts,
            turn=turn,
            triage=turn.triage.level.label if turn.triage is not None else None,
            question=question,
            options=[reply.options for reply in turn.replies],
        )

    def _dispatch(
        self,
        session: Session,
        stored: Conversation | None,
        conversation_id: int,
        message_id: int,
        step: _Step,
        tally,
        now,
    ) -> list[str]:
        """Carry out the turn's actions (an appointment cancelled, a case for staff, the stored-data
        figures, a rating); the reply texts, with the figures filled in."""
        texts = step.texts
        for action in step.actions:
            if isinstance(action, CancelBooking):
                self.desk.cancel(session, stored, now, tally, moved=booked(step.actions) is not None)
            if isinstance(action, Handoff):
                self.desk.hand_over(session, stored, action, now, tally)
            if isinstance(action, BookAppointment):
                self.desk.book(session, stored, action.booking, now, tally)
            if isinstance(action, ConfirmAttendance):
                self.desk.attending(session, stored, now)
        if any(isinstance(a, ReportData) for a in step.actions):
            values = privacy.summary_values(session, stored, self.retention_days)
            texts = [fill(text, values) for text in texts]
        for rating in (a for a in step.actions if isinstance(a, Rating)):
            insights.record_rating(session, tally, conversation_id, message_id, rating, now)
        return texts

    def _store_failed(self, inbound: InboundMessage) -> Outcome:
        """The message could not be processed: keep it, and tell the patient staff will see it."""
        now = self.clock()
        with self.sessions.begin() as session:
            opened = _open(session, inbound, now)
            if isinstance(opened, Outcome):
                return opened
            conversation, message = opened
            storage.count_inbound(conversation, now)
            storage.save_conversation(session, conversation)
            message["reason"] = PROCESSING_FAILED
            (message_id,) = storage.insert_messages(session, [message])
            replies = _store_replies(session, conversation.id, message_id, [(self.engine.text("error"), ())], now)
            tally = insights.Tally()
            insights.count_inbound(tally, now, message, ConversationState(), None)
            tally.add(now, insights.MESSAGES, insights.BOT, len(replies))
            tally.save(session)
            return Outcome(message_id=message_id, replies=replies, failed=True)

    def _replay(self, message_id: str) -> Outcome:
        with self.sessions.begin() as session:
            existing = storage.find_by_channel_id(session, message_id)
            if existing is None:
                raise LookupError(f"message {message_id} collided but is not stored")
            return _stored_outcome(session, existing)

    def record_status(
        self,
        *,
        channel_message_id: str,
        status: str,
        error_code: str | None,
        outbound_id: int | None = None,
        outbox_id: int | None = None,
    ) -> bool:
        """A delivery status callback. Returns False when the message is unknown."""
        now = self.clock()
        with self.sessions.begin() as session:
            item = session.get(OutboxItem, outbox_id, with_for_update=True) if outbox_id is not None else None
            if item is None and channel_message_id:
                item = session.execute(
                    select(OutboxItem).where(OutboxItem.channel_message_id == channel_message_id)
                ).scalar_one_or_none()
            message = None
            if outbound_id is not None:
                message = session.get(Message, outbound_id, with_for_update=True)
                if message is not None and message.direction != OUTBOUND:
                    message = None
            if message is None and item is not None and item.message_id is not None:
                message = session.get(Message, item.message_id)
            if message is None and item is None and channel_message_id:
                message = storage.find_by_channel_id(session, channel_message_id)
            if message is None and item is None:
                return False
            if item is not None:
                item.channel_message_id = item.channel_message_id or channel_message_id or None
                if storage.status_moves_forward(item.delivery_status, status):
                    item.delivery_status, item.error_code = status, error_code or None
                    if item.case_id is not None:
                        refresh_alert_status(session, session.get(HandoffCase, item.case_id))
            changed = False
            if message is not None:
                if message.channel_message_id is None and channel_message_id:
                    message.channel_message_id = channel_message_id
                changed = storage.update_status(session, message, status, error_code, now)
        log.info(
            "status",
            extra={
                "fields": {"message": channel_message_id, "status": status, "error": error_code, "changed": changed}
            },
        )
        return True


def _received_as(outcome: Outcome) -> str:
    """The outcome label of the received-messages metric: the first flag that holds."""
    flags = {"duplicate": outcome.duplicate, "failed": outcome.failed, "rate_limited": outcome.rate_limited}
    return next((label for label, holds in flags.items() if holds), "processed")


def _open(session: Session, inbound: InboundMessage, now) -> Outcome | tuple:
    """The stored answer if this MessageSid was handled already; otherwise the patient's
    conversation, locked, and the inbound message's column values, for the caller to
    complete and insert.

    A retry is answered from storage before the conversation is touched (after "hapus data
    saya" its row is anonymous, and a retry must not create a new one), and again once the
    conversation is locked, in case a duplicate committed meanwhile (not possible where the
    transaction has held the whole database from the start)."""
    if storage.channel_id_stored(session, inbound.message_id):
        return _stored_outcome(session, storage.find_by_channel_id(session, inbound.message_id))
    conversation = storage.lock_conversation(session, inbound.sender, now, (inbound.profile_name or "")[:200] or None)
    if not storage.serialises_writers(session) and storage.channel_id_stored(session, inbound.message_id):
        return _stored_outcome(session, storage.find_by_channel_id(session, inbound.message_id))
    message = {
        "conversation_id": conversation.id,
        "direction": INBOUND,
        "channel_message_id": inbound.message_id,
        "body": inbound.body,
        "media": [{"url": url, "content_type": kind} for url, kind in inbound.media] or None,
        "latitude": inbound.latitude,
        "longitude": inbound.longitude,
        "location_label": inbound.location_label,
        "choice_id": inbound.choice_id,
        "choice_text": inbound.choice_text,
        "in_reply_to_id": None,
        "position": 0,
        "intent": None,
        "decision": None,
        "score": None,
        "reason": None,
        "actions": None,
        "rate_limited": False,
        "created_at": now,
    }
    return conversation, message


def _split(pairs: list[tuple[str, tuple[Option, ...]]], limit: int | None) -> list[tuple[str, tuple[Option, ...]]]:
    """Each (text, options) cut into messages of at most `limit` characters; the options go with
    the last part, which ends with their list."""
    if not limit:
        return pairs
    cut = []
    for text, options in pairs:
        chunks = split_text(text, limit)
        cut += [(chunk, options if index == len(chunks) - 1 else ()) for index, chunk in enumerate(chunks)]
    return cut


def _buttons(
    pairs: list[tuple[str, tuple[Option, ...]]], templates: OptionTemplates | None
) -> list[tuple[str, str, dict]]:
    """The messages carrying the replies' options as buttons, (text, template id, variables) in
    order: the worker sends them after the replies themselves, which keep their numbered text."""
    if templates is None:
        return []
    found = (templates.template(options) for _, options in pairs if options)
    return [template for template in found if template is not None]


def _store_replies(
    session: Session, conversation_id: int, message_id: int, pairs: list[tuple[str, tuple[Option, ...]]], now
) -> tuple[StoredReply, ...]:
    texts = [text for text, _ in pairs]
    rows = [
        {
            "conversation_id": conversation_id,
            "direction": OUTBOUND,
            "body": body,
            "in_reply_to_id": message_id,
            "position": position,
            "created_at": now,
        }
        for position, body in enumerate(texts)
    ]
    ids = storage.insert_messages(session, rows)
    return tuple(StoredReply(id_, body, options) for id_, (body, options) in zip(ids, pairs, strict=True))


def _stored_outcome(session: Session, message: Message) -> Outcome:
    replies = storage.replies_to(session, message)
    return Outcome(
        message_id=message.id,
        replies=tuple(StoredReply(r.id, r.body) for r in replies),
        duplicate=True,
        rate_limited=message.rate_limited,
        actions=tuple(message.actions or ()),
    )
