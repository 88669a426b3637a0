"""Insights for the clinic: anonymous daily counts kept as things happen, and the report over
them (the console's Laporan page, its CSV and the JSON API).

A count is (Jakarta day, metric, label) -> n, added in the transaction of what it counts.
Labels are intent and triage rule ids, statuses and durations in seconds, never a phone number,
a name or a message's text, so the counts stay when messages are purged or a patient's data is
erased. The report reads only them, and the unanswered inbox for the phrasings the bot missed
(which go with their messages).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.core import dates, feedback
from bot.core.dialogue import WAITING_FOR_STAFF
from bot.core.messages import ConversationState, Decision, Handoff, Rating, StartBooking, Turn
from bot.core.triage import Level
from bot.store import storage
from bot.store.storage import (
    INBOUND,
    PROCESSING_FAILED,
    RATE_NOTICE,
    RATE_SILENCED,
    DailyCount,
    FeedbackAnswer,
    HandoffCase,
    Message,
)

# Metrics, and what their labels are.
MESSAGES = "messages"  # patient | bot | staff
OUTCOME = "outcome"  # what the bot made of a patient's message (outcome())
INTENT = "intent"  # the topics answered
TRIAGE = "triage"  # emergency | doctor
DANGER_SIGN = "danger_sign"  # the triage rule of an emergency ("model": the second net)
BOOKING = "booking"  # started | requested | confirmed | rejected | cancelled (by the patient, in the chat)
CASE_OPENED = "case_opened"  # the case's reason: booking | human_agent | urgent
CASE_CLOSED = "case_closed"  # the case's reason
FIRST_REPLY = "first_reply"  # seconds from a case's opening to staff's first message, on the opening's day
FEEDBACK_ASKED = "feedback_asked"  # the subject: an intent id, or case:<reason>
HELPFUL = "helpful"
NOT_HELPFUL = "not_helpful"

PATIENT, BOT, STAFF = "patient", "bot", "staff"
ANSWER, CLARIFY, FALLBACK = "answer", "clarify", "fallback"
BOOKING_STEPS = ("started", "requested", "confirmed", "rejected", "cancelled")
CASE_REASONS = ("booking", "human_agent", "urgent")
# What the bot made of a message: by its reason (before any ":") first, for messages that asked
# the bot nothing it could answer or miss (a step of a booking or an erase confirmation, staff
# have the chat...), else by its decision (answer, clarify, fallback).
_OUTCOME_BY_REASON = {
    "booking": "booking_step",
    "erase_confirmed": "privacy_step",
    "erase_cancelled": "privacy_step",
    "erase_unclear": "privacy_step",
    WAITING_FOR_STAFF: "waiting_for_staff",
    "empty": "unreadable",
    "emoji_only": "unreadable",
    "media": "unreadable",
    "after_emergency": "after_emergency",
    "feedback_up": "feedback",
    "feedback_down": "feedback",
    RATE_NOTICE: "rate_limited",
    RATE_SILENCED: "rate_limited",
    PROCESSING_FAILED: "failed",
}
TOP = 10
DEFAULT_DAYS = 30
MAX_DAYS = 366


def day_of(moment: datetime) -> date:
    """The clinic's (Jakarta) day of a moment."""
    return moment.astimezone(dates.JAKARTA).date()


def outcome(decision: str | None, reason: str | None) -> str:
    return _OUTCOME_BY_REASON.get((reason or "").partition(":")[0]) or decision or "unknown"


def case_label(reason: str) -> str:
    """The label of a kind of case among satisfaction subjects (case:booking...)."""
    return f"{feedback.CASE_PREFIX}{reason}"


class Tally:
    """Counts gathered in one transaction, added to daily_counts in one statement at its end."""

    def __init__(self):
        self.counts: Counter[tuple[date, str, str]] = Counter()

    def add(self, moment: datetime | date, metric: str, label: str = "", n: int = 1) -> None:
        day = moment if not isinstance(moment, datetime) else day_of(moment)
        self.counts[(day, metric, label[:64])] += n

    def save(self, session: Session) -> None:
        storage.add_counts(session, self.counts)
        self.counts.clear()


def count_inbound(tally: Tally, now: datetime, message: dict, before: ConversationState, turn: Turn | None) -> None:
    """What one stored patient message adds (`turn`: the dialogue step, None when the flood
    limit silenced it)."""
    tally.add(now, MESSAGES, PATIENT)
    kind = outcome(message["decision"], message["reason"])
    tally.add(now, OUTCOME, kind)
    if turn is None:
        return
    if kind == ANSWER:
        for match in turn.questions or (turn.match,):
            if match.decision is Decision.ANSWER:
                tally.add(now, INTENT, match.intent)
    assessment = turn.triage
    if assessment is not None and assessment.level is not Level.NONE:
        tally.add(now, TRIAGE, assessment.level.label)
        if assessment.level is Level.EMERGENCY:
            tally.add(now, DANGER_SIGN, assessment.rule or "model")
    if any(isinstance(a, StartBooking) for a in turn.actions):
        tally.add(now, BOOKING, "started")
    if _booking_cancelled(before, turn):
        tally.add(now, BOOKING, "cancelled")
    subject = feedback.asked(before, turn.state)
    if subject is not None:
        tally.add(now, FEEDBACK_ASKED, subject)


def _booking_cancelled(before: ConversationState, turn: Turn) -> bool:
    """The patient called off the booking conversation ("batal"): a booking step ended it
    without sending it to staff."""
    stepped = turn.match is not None and turn.match.reason.startswith("booking:")
    return (
        before.booking is not None
        and turn.state.booking is None
        and stepped
        and not any(isinstance(a, Handoff) for a in turn.actions)
    )


def record_rating(
    session: Session, tally: Tally, conversation_id: int, message_id: int, rating: Rating, now: datetime
) -> FeedbackAnswer:
    """Store a patient's answer to the satisfaction question, linked to the topic and the
    patient's message whose answer was rated (the latest before it on that topic, else the one
    just before), or to the case; and count it."""
    case_id = feedback.case_of(rating.subject)
    case = session.get(HandoffCase, case_id) if case_id is not None else None
    rated = None
    if case_id is None:
        earlier = select(Message.id).where(
            Message.conversation_id == conversation_id, Message.direction == INBOUND, Message.id < message_id
        )
        rated = session.execute(
            earlier.where(Message.intent == rating.subject).order_by(Message.id.desc()).limit(1)
        ).scalar()
        rated = rated or session.execute(earlier.order_by(Message.id.desc()).limit(1)).scalar()
    answer = FeedbackAnswer(
        conversation_id=conversation_id,
        message_id=message_id,
        rated_message_id=rated,
        intent=rating.subject if case_id is None else None,
        case_id=case.id if case else None,
        helpful=rating.helpful,
        at=now,
    )
    session.add(answer)
    label = rating.subject if case_id is None else case_label(case.reason if case else "unknown")
    tally.add(now, HELPFUL if rating.helpful else NOT_HELPFUL, label)
    return answer


# -- the report -------------------------------------------------------------------------------


class ReportError(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Period:
    """Jakarta days, both ends included."""

    start: date
    end: date

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def bounds(self) -> tuple[datetime, datetime]:
        """The period as moments: from its first midnight to the midnight after it."""
        start = datetime.combine(self.start, time(), dates.JAKARTA)
        return start, datetime.combine(self.end + timedelta(days=1), time(), dates.JAKARTA)


def nearest_rank(histogram: Counter[int], share: float) -> int | None:
    """The value at or below which `share` of the values lie (nearest-rank percentile)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = math.ceil(share * total), 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    return None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class Insights:
    def __init__(self, sessions: sessionmaker[Session], engines, teacher, clock=storage.utcnow):
        self.read_sessions = storage.read_only_sessions(sessions)
        self.engines = engines
        self.teacher = teacher
        self.clock = clock

    def period(self, start: str | None = None, end: str | None = None) -> Period:
        """The period asked for (ISO days); by default the last DEFAULT_DAYS days up to today."""
        today = day_of(self.clock())
        try:
            last = date.fromisoformat(end) if end else today
            first = date.fromisoformat(start) if start else last - timedelta(days=DEFAULT_DAYS - 1)
        except ValueError:
            raise ReportError("bad_period") from None
        if first > last or (last - first).days >= MAX_DAYS:
            raise ReportError("bad_period")
        return Period(first, last)

    def report(self, period: Period) -> dict:
        with self.read_sessions() as session:
            rows = session.execute(
                select(DailyCount.day, DailyCount.metric, DailyCount.label, DailyCount.count).where(
                    DailyCount.day.between(period.start, period.end)
                )
            ).all()
        totals: defaultdict[str, Counter[str]] = defaultdict(Counter)
        per_day: Counter[tuple[date, str]] = Counter()
        for day, metric, label, n in rows:
            totals[metric][label] += n
            if metric == MESSAGES:
                per_day[(day, label)] += n
        kb = self.engines.current().kb
        return {
            "period": {"from": period.start.isoformat(), "to": period.end.isoformat(), "days": len(period.days)},
            "messages": self._messages(period, per_day, totals[MESSAGES]),
            # What patients ask: without the talk about the conversation itself (greetings, thanks, the menu).
            "intents": [
                {"intent": intent, "title": kb.intents[intent].title if intent in kb.intents else intent, "count": n}
                for intent, n in _top(totals[INTENT], leave_out=kb.unrated_intents)
            ],
            "outcomes": self._outcomes(totals[OUTCOME]),
            "triage": {
                "emergency": totals[TRIAGE]["emergency"],
                "doctor": totals[TRIAGE]["doctor"],
                "danger_signs": [{"rule": rule, "count": n} for rule, n in _top(totals[DANGER_SIGN])],
            },
            "bookings": {step: totals[BOOKING][step] for step in BOOKING_STEPS},
            "cases": self._cases(totals[CASE_OPENED], totals[CASE_CLOSED], totals[FIRST_REPLY]),
            "satisfaction": self._satisfaction(kb, totals[FEEDBACK_ASKED], totals[HELPFUL], totals[NOT_HELPFUL]),
            "unanswered": self._unanswered(period),
        }

    @staticmethod
    def _messages(period: Period, per_day: Counter, totals: Counter) -> dict:
        days = [
            {"day": day.isoformat(), **{who: per_day[(day, who)] for who in (PATIENT, BOT, STAFF)}}
            for day in period.days
        ]
        return {"per_day": days, "total": {who: totals[who] for who in (PATIENT, BOT, STAFF)}}

    @staticmethod
    def _outcomes(counts: Counter) -> dict:
        judged = sum(counts[kind] for kind in (ANSWER, CLARIFY, FALLBACK))
        return {
            "counts": {kind: counts[kind] for kind in (ANSWER, CLARIFY, FALLBACK)},
            "rates": {kind: _share(counts[kind], judged) for kind in (ANSWER, CLARIFY, FALLBACK)},
            "other": {kind: n for kind, n in sorted(counts.items()) if kind not in (ANSWER, CLARIFY, FALLBACK) and n},
        }

    @staticmethod
    def _cases(opened: Counter, closed: Counter, replies: Counter) -> dict:
        histogram = Counter({int(seconds): n for seconds, n in replies.items()})
        return {
            "opened": {reason: opened[reason] for reason in CASE_REASONS},
            "opened_total": sum(opened.values()),
            "closed": sum(closed.values()),
            "first_reply": {
                "count": sum(histogram.values()),
                "median_seconds": nearest_rank(histogram, 0.5),
                "p90_seconds": nearest_rank(histogram, 0.9),
            },
        }

    @staticmethod
    def _satisfaction(kb, asked: Counter, helpful: Counter, not_helpful: Counter) -> list[dict]:
        subjects = sorted(
            set(asked) | set(helpful) | set(not_helpful), key=lambda s: (-(helpful[s] + not_helpful[s]), -asked[s], s)
        )
        return [
            {
                "subject": subject,
                "title": kb.intents[subject].title if subject in kb.intents else None,
                "asked": asked[subject],
                "helpful": helpful[subject],
                "not_helpful": not_helpful[subject],
                "share_helpful": _share(helpful[subject], helpful[subject] + not_helpful[subject]),
            }
            for subject in subjects
        ]

    def _unanswered(self, period: Period) -> list[dict]:
        """The most frequent phrasings the bot missed in the period (still in the inbox)."""
        groups = self.teacher.unanswered(*period.bounds())
        return [
            {"text": g["messages"][0]["text"], "count": g["size"], "message_id": g["messages"][0]["id"],
             "rated_down": any(m.get("rated_down") for m in g["messages"])}
            for g in groups[:TOP]
        ]  # fmt: skip


def _top(counts: Counter, leave_out: Iterable[str] = ()) -> Iterable[tuple[str, int]]:
    """The most frequent labels, ties by label."""
    kept = ((label, n) for label, n in counts.items() if n and label not in leave_out)
    return sorted(kept, key=lambda item: (-item[1], item[0]))[:TOP]
