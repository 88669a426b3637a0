"""Teaching the bot from what it did not understand.

An inbound message is "unanswered" when the bot fell back on it (not an empty message, media or
a paused chat), asked a clarify question that the patient's next message did not settle by
picking an option, or answered it and the patient rated the answer 👎. Staff see them grouped
by similarity and either add one as an example of an intent (checked against the knowledge
base, stored in the learned_examples table, then picked up by every worker's LiveEngine) or
dismiss it. Each message is reviewed once.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime

from rapidfuzz import fuzz
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, aliased, sessionmaker

from bot.core import knowledge
from bot.services.live import LiveEngine
from bot.store import storage
from bot.store.storage import INBOUND, FeedbackAnswer, LearnedExample, Message, Review

log = logging.getLogger("klinik.learning")
LEARNED, DISMISSED = "learned", "dismissed"
# Fallbacks that are not questions the bot failed: nothing to read, or staff were answering.
# "paused" is what messages waiting for staff were marked before "waiting_for_staff".
_NOT_QUESTIONS = {"empty", "emoji_only", "media", "waiting_for_staff", "paused"}
_GROUP_SIMILARITY = 70
_MAX_SCAN = 2000
_MISSED = ("fallback", "clarify")
# Messages whose answer the patient rated 👎.
_RATED_DOWN = select(FeedbackAnswer.rated_message_id).where(
    FeedbackAnswer.helpful.is_(False), FeedbackAnswer.rated_message_id.is_not(None)
)


class LearningError(Exception):
    def __init__(self, code: str, detail: str = ""):
        super().__init__(code)
        self.code = code
        self.detail = detail


class Teacher:
    def __init__(self, sessions: sessionmaker[Session], engines: LiveEngine, clock=storage.utcnow):
        self.sessions = sessions
        self.read_sessions = storage.read_only_sessions(sessions)
        self.engines = engines
        self.clock = clock

    def unanswered(self, since: datetime | None = None, until: datetime | None = None) -> list[dict]:
        """Unreviewed unanswered messages (the newest _MAX_SCAN, sent from `since` until before
        `until` when given), grouped by similarity; biggest groups first."""
        later = aliased(Message)
        next_reason = (
            select(later.reason)
            .where(later.conversation_id == Message.conversation_id, later.direction == INBOUND, later.id > Message.id)
            .order_by(later.id)
            .limit(1)
            .scalar_subquery()
        )
        rated_down = Message.id.in_(_RATED_DOWN)
        query = select(Message, next_reason, rated_down).where(
            Message.direction == INBOUND,
            Message.decision.in_(_MISSED) | rated_down,
            Message.id.not_in(select(Review.message_id)),
        )
        if since is not None:
            query = query.where(Message.created_at >= since)
        if until is not None:
            query = query.where(Message.created_at < until)
        with self.read_sessions() as session:
            rows = session.execute(query.order_by(Message.created_at.desc(), Message.id.desc()).limit(_MAX_SCAN)).all()
            pending = [
                (message, down)
                for message, following, down in rows
                if (down and message.body) or _unresolved(message, following)
            ]
        matcher = self.engines.current().matcher
        groups: list[dict] = []
        for message, down in pending:
            key = " ".join(matcher.normalize.tokens(message.body))
            item = {
                "id": message.id, "text": message.body, "decision": message.decision,
                "created_at": message.created_at.isoformat(),
                "rated_down": bool(down), "answered": message.intent if down else None,
            }  # fmt: skip
            for group in groups:
                if fuzz.token_set_ratio(key, group["key"]) >= _GROUP_SIMILARITY:
                    group["messages"].append(item)
                    break
            else:
                groups.append({"key": key, "messages": [item]})
        groups.sort(key=lambda g: len(g["messages"]), reverse=True)
        return [
            {
                "size": len(g["messages"]),
                "messages": g["messages"],
                "suggested": _suggestions(matcher, g["messages"][0]["text"]),
            }
            for g in groups
        ]

    def intents(self) -> list[tuple[str, str]]:
        """(id, title) of every intent an example can be added to."""
        kb = self.engines.current().kb
        return [(i.id, i.title or i.id) for i in kb.intents.values() if i.id != "fallback"]

    def learn(self, message_id: int, intent_id: str, me: str) -> None:
        """Add the message's text as an example of `intent_id`, unless the knowledge base
        would not take it (the same words are an example of another intent)."""
        kb = self.engines.current().kb
        if intent_id not in kb.intents or intent_id == "fallback":
            raise LearningError("unknown_intent")
        with _once(), self.sessions.begin() as session:
            storage.lock_key(session, "learned-examples")  # two staff teaching at once take turns
            message = self._reviewable(session, message_id)
            text = " ".join(message.body.split())
            if not text:
                raise LearningError("empty")
            # Checked against what is taught now, not what this worker loaded a moment ago.
            _, refused = knowledge.with_taught(kb, [*_taught(session), knowledge.Taught(0, intent_id, text)])
            refused = [why for item, why in refused if item.id == 0]
            if refused:
                raise LearningError("invalid", refused[0])
            now = self.clock()
            session.add(LearnedExample(intent=intent_id, text=text, message_id=message.id, by=me, at=now))
            session.add(Review(message_id=message.id, outcome=LEARNED, intent=intent_id, by=me, at=now))
            session.flush()  # a concurrent review fails here
        self.engines.refresh()
        log.info("example learned", extra={"fields": {"message": message_id, "intent": intent_id}})

    def dismiss(self, message_id: int, me: str) -> None:
        with _once(), self.sessions.begin() as session:
            message = self._reviewable(session, message_id)
            session.add(Review(message_id=message.id, outcome=DISMISSED, by=me, at=self.clock()))

    def _reviewable(self, session: Session, message_id: int) -> Message:
        message = session.get(Message, message_id)
        rated_down = (
            message is not None
            and session.execute(_RATED_DOWN.where(FeedbackAnswer.rated_message_id == message_id)).first()
        )
        if message is None or message.direction != INBOUND or not (message.decision in _MISSED or rated_down):
            raise LearningError("not_found")
        if session.execute(select(Review.id).where(Review.message_id == message_id)).first():
            raise LearningError("already_reviewed")
        return message


@contextmanager
def _once():
    """Two staff reviewing the same message at once: the second is told it is done."""
    try:
        yield
    except IntegrityError:
        raise LearningError("already_reviewed") from None


def _taught(session: Session) -> list[knowledge.Taught]:
    """Every example staff taught, oldest first."""
    rows = session.execute(
        select(LearnedExample.id, LearnedExample.intent, LearnedExample.text).order_by(LearnedExample.id)
    )
    return [knowledge.Taught(*row) for row in rows]


def _unresolved(message: Message, next_reason: str | None) -> bool:
    """A fallback on a real question, or a clarify the patient did not settle by picking an
    option in their next message (`next_reason`: what the bot made of that message)."""
    if not message.body or message.rate_limited:
        return False
    if message.decision == "fallback":
        return message.reason not in _NOT_QUESTIONS
    return next_reason != "option"


def _suggestions(matcher, text: str) -> list[str]:
    """The intents the matcher thought closest: the likely homes for this phrasing."""
    return [c.intent for c in matcher.match(text).candidates if c.intent != "fallback"][:3]


class TaughtExamples:
    """The examples staff taught, read from the database by every worker's LiveEngine. While
    the database cannot be read the knowledge base stays as it is."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def version(self) -> tuple | None:
        """(count, newest id, sum of ids): changes whenever an example is taught or erased, even
        if ids committed out of order on PostgreSQL. None while the database cannot be read."""
        try:
            with self.sessions() as session:
                return tuple(
                    session.execute(
                        select(func.count(LearnedExample.id), func.max(LearnedExample.id), func.sum(LearnedExample.id))
                    ).one()
                )
        except SQLAlchemyError:
            log.warning("taught examples unavailable (database unreachable)")
            return None

    def load(self) -> list[knowledge.Taught] | None:
        try:
            with self.sessions() as session:
                return _taught(session)
        except SQLAlchemyError:
            log.warning("taught examples unavailable (database unreachable)")
            return None
