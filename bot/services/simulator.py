"""The simulator's view of storage: a simulated patient's conversation as the chat shows it,
and the same conversation as a replay fixture whose expectations come from what happened.

Messages reach the bot only through the real webhook (bot/web/simulator.py); this
module reads what the webhook and the staff console stored.

A recorded fixture must replay green offline, where turns run at the fixtures' fixed clock, and
live at any hour. So every expectation is checked before it is written: the conversation is
replayed against the engine at each of replay.PROBE_CLOCKS, and an expectation is kept only when
every replay agrees with what the patient actually got; the others become notes (and comments
in the file). The `contains` snippet is a short phrase of the turn's replies, with no digits
(dates and times move), that every replay shows and, when possible, no other turn does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.core import dates
from bot.core.messages import ConversationState, local_id
from bot.quality import replay
from bot.services.console import message_dict
from bot.services.live import LiveEngine
from bot.store import storage
from bot.store.storage import INBOUND, OUTBOUND, Conversation, HandoffCase, Message

_WORD = re.compile(r"\S+")
# Snippet sizes in words, by preference: short enough to survive small rewrites of a text.
_SNIPPET_WORDS = (4, 3, 5, 6, 2)
_MIN_LETTERS = 8


class SimulatorError(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Note:
    """An expectation left out of a recorded fixture: what the patient got (`live`) differs
    from a replay at the fixed clock `clock` (`replayed`)."""

    turn: int
    key: str
    live: str
    replayed: str
    clock: str

    def comment(self) -> str:
        return f"{self.key} not asserted: live {self.live}, but {self.replayed} when replayed at {self.clock}"

    def as_dict(self) -> dict:
        return {"turn": self.turn, "key": self.key, "live": self.live, "replayed": self.replayed, "clock": self.clock}


@dataclass(frozen=True)
class Recording:
    yaml: str
    turns: int
    notes: tuple[Note, ...]


def message_view(message: Message) -> dict:
    """A stored message for the chat view: the console's shape plus what the bot understood."""
    view = message_dict(message)
    view.update(
        reply_to=message.in_reply_to_id, score=message.score, reason=message.reason, actions=message.actions or []
    )
    return view


class Simulator:
    def __init__(self, sessions: sessionmaker[Session], engines: LiveEngine):
        self.sessions = sessions
        self.engines = engines

    def recent(self, prefix: str | None = None, limit: int = 10) -> list[dict]:
        """The latest conversations (only numbers starting with `prefix` when given)."""
        query = select(Conversation).order_by(Conversation.updated_at.desc()).limit(limit)
        if prefix:
            query = query.where(Conversation.address.like(f"%:{prefix}%"))
        with self.sessions() as session:
            return [
                {"number": local_id(c.address), "name": c.profile_name or ""} for c in session.execute(query).scalars()
            ]

    def messages(self, address: str, after: int = 0) -> list[dict]:
        """Every stored message of the patient's conversation with an id above `after`; when the
        newest is the bot's, it has the choices the conversation offers now (`options`), as a
        reply to a sent message has: a chat opened again shows its pending buttons."""
        with self.sessions() as session:
            query = (
                select(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.address == address, Message.id > after)
                .order_by(Message.id)
            )
            stored = list(session.execute(query).scalars())
            views = [message_view(m) for m in stored]
            if stored and stored[-1].sender == "bot":
                views[-1]["options"] = self._offer(session, stored[-1].conversation_id)
            return views

    def turn(self, message_id: str) -> dict | None:
        """The inbound message with this channel message id and the bot's stored replies to it;
        the last reply has the choices the conversation offers now (`options`), for buttons."""
        with self.sessions() as session:
            message = storage.find_by_channel_id(session, message_id)
            if message is None:
                return None
            replies = session.execute(
                select(Message).where(Message.in_reply_to_id == message.id).order_by(Message.position, Message.id)
            ).scalars()
            views = [message_view(r) for r in replies]
            if views:
                views[-1]["options"] = self._offer(session, message.conversation_id)
            return {"inbound": message_view(message), "replies": views}

    def _offer(self, session: Session, conversation_id: int) -> list[dict]:
        """The choices the conversation's pending question accepts, as the engine offers them."""
        conversation = session.get(Conversation, conversation_id)
        state = ConversationState.from_dict(conversation.state)
        offer = self.engines.current().offer(state, storage.staff_view(session, conversation_id))
        return [{"id": option.id, "title": option.title} for option in offer]

    # -- recording a fixture ----------------------------------------------------------------

    def record(self, address: str, name: str, now: datetime) -> Recording:
        drafts, lived = self._drafts(address)
        engine = self.engines.current()
        fixture = replay.Fixture(name, "", tuple(_fixture_turn(d) for d in drafts if "user" in d or "event" in d))
        probes = []
        for moment in replay.probe_moments():
            results = replay.run_fixture(replay.at_clock(fixture, moment), replay.engine_conversation(engine))
            probes.append((f"{moment:%Y-%m-%d %H:%M}", [r.observed for r in results]))
        notes: list[Note] = []
        played = [d for d in drafts if "user" in d or "event" in d]
        for index, draft in enumerate(played):
            if "user" not in draft:
                continue
            message, replies = lived[index]
            others = "\n".join(text for key, (_, texts) in lived.items() if key != index for text in texts).lower()
            turn_probes = [(clock, observed[index]) for clock, observed in probes]
            draft["expect"], turn_notes = _expectations(index + 1, message, replies, others, turn_probes)
            notes += turn_notes
            draft["comments"] = draft.get("comments", []) + [note.comment() for note in turn_notes]
        local = now.astimezone(dates.JAKARTA)
        description = (
            f"Recorded in the simulator on {local:%Y-%m-%d %H:%M} (Jakarta). Expectations are what the patient got, "
            f"kept where replays at {len(probes)} fixed clocks agree."
        )
        text = replay.dump_fixture(name, drafts, description)
        return Recording(text, len(played), tuple(notes))

    def _drafts(self, address: str) -> tuple[list[dict], dict[int, tuple[Message, list[str]]]]:
        """The conversation as fixture turns (without expectations), and for each user turn
        (by position among the played turns) its stored message and the replies it got."""
        with self.sessions() as session:
            conversation = session.execute(
                select(Conversation).where(Conversation.address == address)
            ).scalar_one_or_none()
            if conversation is None:
                raise SimulatorError("not_found")
            messages = list(
                session.execute(
                    select(Message)
                    .where(Message.conversation_id == conversation.id)
                    .order_by(Message.created_at, Message.id)
                ).scalars()
            )
            closings = list(
                session.execute(
                    select(HandoffCase.closed_at).where(
                        HandoffCase.conversation_id == conversation.id, HandoffCase.closed_at.is_not(None)
                    )
                ).scalars()
            )
            profile_name = conversation.profile_name
        if not any(m.direction == INBOUND for m in messages):
            raise SimulatorError("not_found")
        replies: dict[int, list[str]] = {}
        for message in messages:
            if message.direction == OUTBOUND and message.in_reply_to_id is not None:
                replies.setdefault(message.in_reply_to_id, []).append(message.body)
        timeline = [(m.created_at, 0, m.id, m) for m in messages] + [(closed, 1, 0, None) for closed in closings]
        drafts: list[dict] = []
        lived: dict[int, tuple[Message, list[str]]] = {}
        comments: list[str] = []
        played = 0
        for _, _, _, message in sorted(timeline, key=lambda item: item[:3]):
            if message is None:
                drafts.append({"event": "case_closed", "comments": comments})
                comments, played = [], played + 1
            elif message.direction == OUTBOUND and message.in_reply_to_id is None:
                comments.append(
                    f"{'staff ' + message.staff_name if message.staff_name else 'sent'}: {message.body[:120]}"
                )
            elif message.direction == INBOUND:
                draft = {"user": message.body or message.choice_text or "", "comments": comments}
                if message.media:
                    draft["media"] = [m.get("content_type") or "application/octet-stream" for m in message.media]
                if not lived and profile_name:
                    draft["profile_name"] = profile_name
                lived[played] = (message, replies.get(message.id, []))
                drafts.append(draft)
                comments, played = [], played + 1
        while drafts and "event" in drafts[-1]:  # a case closed after the last message changes nothing
            comments = drafts.pop()["comments"] + comments
            played -= 1
        if comments:
            drafts.append({"comments": comments})
        return drafts, lived


def _fixture_turn(draft: dict) -> replay.FixtureTurn:
    return replay.FixtureTurn(
        user=draft.get("user", ""),
        expect={},
        line=0,
        media=tuple(draft.get("media", ())),
        profile_name=draft.get("profile_name"),
        event=draft.get("event"),
    )


def _expectations(number: int, message: Message, replies: list[str], others: str, probes) -> tuple[dict, list[Note]]:
    """What to expect of one turn: the facts every probe replay agrees with."""
    expect: dict = {}
    notes: list[Note] = []

    def keep(key: str, live, replayed_value) -> None:
        for clock, observed in probes:
            replayed = replayed_value(observed)
            if replayed != live:
                notes.append(Note(number, key, repr(live), repr(replayed), clock))
                return
        expect[key] = live

    if message.intent is not None:
        keep("intent", message.intent, lambda o: o.intent)
    if message.decision is not None:
        keep("decision", message.decision, lambda o: o.decision)
    if message.actions:
        keep("actions", list(message.actions), lambda o: list(o.actions))
    if not replies:
        keep("replies", 0, lambda o: len(o.replies))
    else:
        snippet = choose_snippet(replies, others, ["\n".join(o.replies).lower() for _, o in probes])
        if snippet is None:
            clock, observed = next(((c, o) for c, o in probes if list(o.replies) != replies), probes[0])
            notes.append(
                Note(number, "contains", repr(replies[0][:80]), repr(" | ".join(observed.replies)[:80]), clock)
            )
        else:
            expect["contains"] = [snippet]
    return expect, notes


def choose_snippet(replies: list[str], elsewhere: str, probes: list[str]) -> str | None:
    """A short phrase of `replies` with no digit that every probe text contains; one that the
    lowercased `elsewhere` (the other turns' replies) lacks when there is one. Later replies
    first: a first-contact notice comes before the answer."""
    lines = "\n".join(reversed(replies)).splitlines()
    common = None
    for size in _SNIPPET_WORDS:
        for line in lines:
            words = list(_WORD.finditer(line))
            for start in range(len(words) - size + 1):
                phrase = line[words[start].start() : words[start + size - 1].end()].strip("*_~.,:;!?()")
                lowered = phrase.lower()
                if any(c.isdigit() for c in phrase) or sum(c.isalpha() for c in phrase) < _MIN_LETTERS:
                    continue
                if phrase.count("*") % 2 or phrase.count("_") % 2:  # half of a bold or italic span
                    continue
                if not all(lowered in probe for probe in probes):
                    continue
                if lowered not in elsewhere:
                    return phrase
                common = common or phrase
    return common
