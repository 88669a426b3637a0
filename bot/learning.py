"""Teaching the bot from what it did not understand.

An inbound message is "unanswered" when the bot fell back on it (not an empty message, media or
a paused chat), or asked a clarify question that the patient's next message did not settle by
picking an option. Staff see them grouped by similarity and either add one as an example of an
intent (written to knowledge/examples/learned.yaml, validated, then picked up by every worker's
LiveEngine) or dismiss it. Each message is reviewed once.
"""

from __future__ import annotations

import fcntl
import logging
import os
from contextlib import contextmanager
from pathlib import Path

import yaml
from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .adapters import storage
from .adapters.storage import INBOUND, Message, Review
from .core import knowledge
from .core.knowledge import KnowledgeError
from .live import LiveEngine

log = logging.getLogger("klinik.learning")
LEARNED_FILE = "examples/learned.yaml"
LEARNED, DISMISSED = "learned", "dismissed"
# Fallbacks that are not questions the bot failed: nothing to read, or staff were answering.
_NOT_QUESTIONS = {"empty", "emoji_only", "media", "paused"}
_GROUP_SIMILARITY = 70
_MAX_SCAN = 2000
_HEADER = (
    "# Phrasings taught by clinic staff from real messages the bot did not understand\n"
    "# (staff console, \"Pertanyaan belum terjawab\"). Edited by the console; safe to edit by hand.\n\n"
)


class LearningError(Exception):
    def __init__(self, code: str, detail: str = ""):
        super().__init__(code)
        self.code = code
        self.detail = detail


class Teacher:
    def __init__(self, sessions: sessionmaker[Session], engines: LiveEngine, knowledge_dir: Path, clock=storage.utcnow):
        self.sessions = sessions
        self.engines = engines
        self.knowledge_dir = Path(knowledge_dir)
        self.clock = clock

    def unanswered(self) -> list[dict]:
        """Unreviewed unanswered messages, grouped by similarity; biggest groups first."""
        with self.sessions() as session:
            inbound = list(
                session.execute(
                    select(Message)
                    .where(Message.direction == INBOUND)
                    .order_by(Message.conversation_id, Message.created_at, Message.id)
                    .limit(_MAX_SCAN * 10)
                ).scalars()
            )
            reviewed = set(session.execute(select(Review.message_id)).scalars())
        pending = [m for m in _unresolved(inbound) if m.id not in reviewed][-_MAX_SCAN:]
        normalize = self.engines.current().matcher.normalize
        groups: list[dict] = []
        for message in sorted(pending, key=lambda m: m.created_at, reverse=True):
            key = " ".join(normalize.tokens(message.body))
            item = {"id": message.id, "text": message.body, "decision": message.decision, "created_at": message.created_at.isoformat()}
            for group in groups:
                if fuzz.token_set_ratio(key, group["key"]) >= _GROUP_SIMILARITY:
                    group["messages"].append(item)
                    break
            else:
                groups.append({"key": key, "messages": [item]})
        groups.sort(key=lambda g: len(g["messages"]), reverse=True)
        matcher = self.engines.current().matcher
        return [
            {"size": len(g["messages"]), "messages": g["messages"], "suggested": _suggestions(matcher, g["messages"][0]["text"])}
            for g in groups
        ]

    def intents(self) -> list[tuple[str, str]]:
        """(id, title) of every intent an example can be added to."""
        kb = self.engines.current().kb
        return [(i.id, i.title or i.id) for i in kb.intents.values() if i.id != "fallback"]

    def learn(self, message_id: int, intent_id: str, me: str) -> None:
        """Add the message's text as an example of `intent_id`, validate, and mark it reviewed."""
        kb = self.engines.current().kb
        if intent_id not in kb.intents or intent_id == "fallback":
            raise LearningError("unknown_intent")
        with _once(), self.sessions.begin() as session:
            message = self._reviewable(session, message_id)
            text = " ".join(message.body.split())
            if not text:
                raise LearningError("empty")
            self._append(intent_id, text)
            session.add(Review(message_id=message.id, outcome=LEARNED, intent=intent_id, by=me, at=self.clock()))
        self.engines.refresh()
        log.info("example learned", extra={"fields": {"message": message_id, "intent": intent_id}})

    def dismiss(self, message_id: int, me: str) -> None:
        with _once(), self.sessions.begin() as session:
            message = self._reviewable(session, message_id)
            session.add(Review(message_id=message.id, outcome=DISMISSED, by=me, at=self.clock()))

    def _reviewable(self, session: Session, message_id: int) -> Message:
        message = session.get(Message, message_id)
        if message is None or message.direction != INBOUND:
            raise LearningError("not_found")
        if session.execute(select(Review.id).where(Review.message_id == message_id)).first():
            raise LearningError("already_reviewed")
        return message

    def _append(self, intent_id: str, text: str) -> None:
        """Write the example and load the whole knowledge base; on any problem put the file
        back as it was and report the problem."""
        path = self.knowledge_dir / LEARNED_FILE
        with _file_lock(path.with_suffix(".lock")):
            old = path.read_text(encoding="utf-8") if path.exists() else None
            learned = (yaml.safe_load(old) if old else None) or {}
            examples = learned.setdefault(intent_id, [])
            if text in examples:
                return
            examples.append(text)
            _write(path, _HEADER + yaml.safe_dump(learned, allow_unicode=True, sort_keys=True, width=1000))
            try:
                knowledge.load(self.knowledge_dir)
            except KnowledgeError as error:
                if old is None:
                    path.unlink()
                else:
                    _write(path, old)
                raise LearningError("invalid", error.report()) from None


@contextmanager
def _once():
    """Two staff reviewing the same message at once: the second is told it is done."""
    try:
        yield
    except IntegrityError:
        raise LearningError("already_reviewed") from None


def _unresolved(inbound: list[Message]) -> list[Message]:
    """Fallbacks, and clarify questions not settled by the next message (inbound is ordered
    by conversation, then time)."""
    found = []
    for message, following in zip(inbound, [*inbound[1:], None]):
        if not message.body or message.rate_limited:
            continue
        if message.decision == "fallback" and message.reason not in _NOT_QUESTIONS:
            found.append(message)
        elif message.decision == "clarify":
            settled = following is not None and following.conversation_id == message.conversation_id and following.reason == "option"
            if not settled:
                found.append(message)
    return found


def _suggestions(matcher, text: str) -> list[str]:
    """The intents the matcher thought closest: the likely homes for this phrasing."""
    return [c.intent for c in matcher.match(text).candidates if c.intent != "fallback"][:3]


def _write(path: Path, content: str) -> None:
    """Replace the file in one step, so a worker reloading never reads half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(content, encoding="utf-8")
    os.replace(temporary, path)


@contextmanager
def _file_lock(path: Path):
    """One writer at a time across gunicorn workers."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
