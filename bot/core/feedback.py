"""The satisfaction question: "Apakah jawaban ini membantu? 1. 👍 2. 👎".

Asked at most once a Jakarta day, with a reply that offers no list to pick from (its 1 and 2
would clash with the list's numbers): the answer to a topic without follow-ups, or the reply to
thanks or goodbye after a topic (knowledge/dialogue.yaml, `feedback`); and, through the edge,
when staff close a case. Never on the day of an emergency, while staff have the chat, or in a
booking or privacy flow. The next message either answers it (the words of lexicon.yaml) or is
answered as usual, and the question lapses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from . import dates
from .knowledge import KnowledgeBase
from .messages import FALLBACK_INTENT, ConversationState, Decision, Match, Rating, Reply, StaffView, Turn
from .triage import Assessment, Level

# The intent recorded for a message that answered the question (no topic of the knowledge base).
FEEDBACK_INTENT = "feedback"
CASE_PREFIX = "case:"
# An answer counts only this soon after the question.
ANSWER_WINDOW = timedelta(hours=24)
# The ids of the buttons a channel may offer with the question (the quick-reply template of
# SATISFACTION_CONTENT_SID): a tap counts like typing 1 or 2.
BUTTONS = {"helpful": True, "not_helpful": False}
_MODIFIERS = re.compile("[\U0001f3fb-\U0001f3ff\ufe0f\u200d]")  # skin tones, emoji variation, joiners
_TOKEN = re.compile(r"[^\W_]+|[^\w\s]")


def _staff_have_the_chat(turn: Turn, staff: StaffView) -> bool:
    return staff.has_chat


def _an_emergency(turn: Turn, staff: StaffView) -> bool:
    return turn.state.emergency_at is not None


def _a_flow_waits(turn: Turn, staff: StaffView) -> bool:
    """A booking, a handoff, an erase confirmation or the data summary: the patient's next
    message belongs to it."""
    return bool(turn.actions) or turn.state.booking is not None or turn.state.erase_asked_at is not None


def _a_list_to_pick_from(turn: Turn, staff: StaffView) -> bool:
    return bool(turn.state.options)


def _no_answer(turn: Turn, staff: StaffView) -> bool:
    return not turn.replies or turn.match is None or turn.match.decision is not Decision.ANSWER


# Why a reply may not carry the question (once a day is checked apart: it needs the time).
_NOT_WITH = (_staff_have_the_chat, _an_emergency, _a_flow_waits, _a_list_to_pick_from, _no_answer)


def case_subject(case_id: int) -> str:
    return f"{CASE_PREFIX}{case_id}"


def case_of(subject: str) -> int | None:
    """The case a subject names, or None for a topic."""
    return int(subject.removeprefix(CASE_PREFIX)) if subject.startswith(CASE_PREFIX) else None


def asked(before: ConversationState, after: ConversationState) -> str | None:
    """The subject of the question a step asked, if it asked one."""
    return after.feedback_on if after.feedback_on and after.feedback_at != before.feedback_at else None


class Feedback:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        lexicon = kb.lexicon
        self._yes, self._no = lexicon.feedback_yes, lexicon.feedback_no
        self._words = lexicon.feedback_yes | lexicon.feedback_no | lexicon.feedback_fillers
        self._closing = frozenset(kb.closing_intents)
        self._unrated = frozenset(kb.unrated_intents) | {FALLBACK_INTENT}

    def around(
        self,
        state: ConversationState,
        text: str,
        now: datetime,
        assessment: Assessment,
        staff: StaffView,
        proceed: Callable[[ConversationState], Turn],
        choice_id: str | None = None,
    ) -> Turn:
        """One message: the answer to a waiting question (typed, or a tapped button `choice_id`),
        or the usual turn (`proceed`), which may end with the question."""
        if state.feedback_on is not None:
            helpful = self.verdict(text, choice_id) if self._answerable(state, now, assessment, staff) else None
            if helpful is not None:
                reason = "feedback_up" if helpful else "feedback_down"
                reply = Reply(self.kb.texts["feedback_thanks" if helpful else "feedback_sorry"])
                after = replace(state, feedback_on=None)
                return Turn(
                    (reply,),
                    (Rating(helpful, state.feedback_on),),
                    after,
                    Match(Decision.ANSWER, FEEDBACK_INTENT, 1.0, reason=reason),
                )
            state = replace(state, feedback_on=None)  # not an answer: the question lapses
        turn = proceed(state)
        if assessment.level is Level.EMERGENCY:
            return replace(turn, state=replace(turn.state, feedback_at=now.isoformat()))  # no question today
        subject = self._subject(state, turn, staff, now)
        if subject is None:
            return turn
        question = self.kb.texts["feedback_question"].replace("{topic}", self.kb.intents[subject].title or subject)
        replies = (*turn.replies[:-1], Reply(f"{turn.replies[-1].text}\n\n{question}", question=question))
        return replace(
            turn, replies=replies, state=replace(turn.state, feedback_at=now.isoformat(), feedback_on=subject)
        )

    def after_case(
        self, state: ConversationState, now: datetime, case_id: int, urgent: bool
    ) -> tuple[ConversationState, str | None]:
        """Staff closed a case (`state`: the state resumed after it): the question about their
        help and the state that waits for its answer, unless the case was an emergency or the
        patient was asked today."""
        if urgent or self._today(state.feedback_at, now):
            return state, None
        return replace(state, feedback_at=now.isoformat(), feedback_on=case_subject(case_id)), self.kb.texts[
            "feedback_question_case"
        ]

    def verdict(self, text: str, choice_id: str | None = None) -> bool | None:
        """True for 👍, False for 👎, None when the message is not an answer to the question."""
        if choice_id in BUTTONS:
            return BUTTONS[choice_id]
        said = {
            t
            for t in _TOKEN.findall(_MODIFIERS.sub("", text.lower()))
            if not unicodedata.category(t[0]).startswith("P")
        }
        if not said or not said <= self._words:
            return None
        if said & self._no:
            return False
        return True if said & self._yes else None

    def _answerable(self, state: ConversationState, now: datetime, assessment: Assessment, staff: StaffView) -> bool:
        asked_at = datetime.fromisoformat(state.feedback_at) if state.feedback_at else None
        recent = asked_at is not None and now - asked_at <= ANSWER_WINDOW
        return recent and assessment.level is not Level.EMERGENCY and not staff.has_chat

    def _subject(self, before: ConversationState, turn: Turn, staff: StaffView, now: datetime) -> str | None:
        """The topic this turn's reply asks about: the one it answered, or the one before the
        thanks it answered; None when it must not ask."""
        if self._today(before.feedback_at, now) or any(rule(turn, staff) for rule in _NOT_WITH):
            return None
        said = turn.state.last_intent
        topic = before.last_intent if said in self._closing else said
        intent = self.kb.intents.get(topic) if topic else None
        return topic if intent is not None and intent.action is None and topic not in self._unrated else None

    @staticmethod
    def _today(moment: str | None, now: datetime) -> bool:
        local = now.astimezone(dates.JAKARTA).date()
        return moment is not None and datetime.fromisoformat(moment).astimezone(dates.JAKARTA).date() == local
