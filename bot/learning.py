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
import shutil
import tempfile
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
    "# (staff console, \"Belum terjawab\"). Rewritten by the console: comments here are not kept.\n\n"
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
        """Unreviewed unanswered messages (the newest _MAX_SCAN), grouped by similarity;
        biggest groups first."""
        with self.sessions() as session:
            reviewed = select(Review.message_id)
            candidates = list(
                session.execute(
                    select(Message)
                    .where(Message.direction == INBOUND, Message.decision.in_(("fallback", "clarify")), Message.id.not_in(reviewed))
                    .order_by(Message.created_at.desc(), Message.id.desc())
                    .limit(_MAX_SCAN)
                ).scalars()
            )
            pending = [m for m in candidates if _unresolved(session, m)]
        normalize = self.engines.current().matcher.normalize
        groups: list[dict] = []
        for message in pending:
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
        """Add the message's text as an example of `intent_id`: checked on a copy of the
        knowledge base first, written once the review is committed, then reloaded."""
        kb = self.engines.current().kb
        if intent_id not in kb.intents or intent_id == "fallback":
            raise LearningError("unknown_intent")
        path = self.knowledge_dir / LEARNED_FILE
        with _file_lock(path.with_suffix(".lock")):
            with _once(), self.sessions.begin() as session:
                message = self._reviewable(session, message_id)
                text = " ".join(message.body.split())
                if not text:
                    raise LearningError("empty")
                content = self._with_example(path, intent_id, text)
                session.add(Review(message_id=message.id, outcome=LEARNED, intent=intent_id, by=me, at=self.clock()))
                session.flush()  # a concurrent review fails here, before the file changes
                if content is not None:
                    _write(path, content)
        self.engines.refresh()
        log.info("example learned", extra={"fields": {"message": message_id, "intent": intent_id}})

    def dismiss(self, message_id: int, me: str) -> None:
        with _once(), self.sessions.begin() as session:
            message = self._reviewable(session, message_id)
            session.add(Review(message_id=message.id, outcome=DISMISSED, by=me, at=self.clock()))

    def _reviewable(self, session: Session, message_id: int) -> Message:
        message = session.get(Message, message_id)
        if message is None or message.direction != INBOUND or message.decision not in ("fallback", "clarify"):
            raise LearningError("not_found")
        if session.execute(select(Review.id).where(Review.message_id == message_id)).first():
            raise LearningError("already_reviewed")
        return message

    def _with_example(self, path: Path, intent_id: str, text: str) -> str | None:
        """The learned file with one more example, validated with the rest of the knowledge
        base in a scratch copy; None if the example is already there."""
        try:
            learned = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
        except (OSError, yaml.YAMLError) as error:
            raise LearningError("write_failed", str(error)) from None
        learned = learned or {}
        if not isinstance(learned, dict) or not all(isinstance(v, list | type(None)) for v in learned.values()):
            raise LearningError("write_failed", f"{path}: expected a mapping of intent ids to lists of examples")
        examples = learned.get(intent_id) or []
        if text in examples:
            return None
        learned[intent_id] = [*examples, text]
        content = _HEADER + yaml.safe_dump(learned, allow_unicode=True, sort_keys=True, width=1000)
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "knowledge"
            shutil.copytree(self.knowledge_dir, copy, ignore=shutil.ignore_patterns("*.lock", "*.tmp"))
            (copy / LEARNED_FILE).parent.mkdir(parents=True, exist_ok=True)
            (copy / LEARNED_FILE).write_text(content, encoding="utf-8")
            try:
                knowledge.load(copy)
            except KnowledgeError as error:
                raise LearningError("invalid", error.report()) from None
        return content


@contextmanager
def _once():
    """Two staff reviewing the same message at once: the second is told it is done."""
    try:
        yield
    except IntegrityError:
        raise LearningError("already_reviewed") from None


def _unresolved(session: Session, message: Message) -> bool:
    """A fallback on a real question, or a clarify the patient did not settle by picking an
    option in their next message."""
    if not message.body or message.rate_limited:
        return False
    if message.decision == "fallback":
        return message.reason not in _NOT_QUESTIONS
    following = session.execute(
        select(Message.reason)
        .where(Message.conversation_id == message.conversation_id, Message.direction == INBOUND, Message.id > message.id)
        .order_by(Message.id)
        .limit(1)
    ).first()
    return following is None or following.reason != "option"


def _suggestions(matcher, text: str) -> list[str]:
    """The intents the matcher thought closest: the likely homes for this phrasing."""
    return [c.intent for c in matcher.match(text).candidates if c.intent != "fallback"][:3]


def _write(path: Path, content: str) -> None:
    """Replace the file in one step, so a worker reloading never reads half of it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        raise LearningError("write_failed", str(error)) from None


@contextmanager
def _file_lock(path: Path):
    """One writer at a time across gunicorn workers."""
    try:
        handle = open(path, "a")
    except OSError as error:
        raise LearningError("write_failed", str(error)) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
