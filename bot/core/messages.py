"""Typed values that flow through the dialogue core: what comes in, what the matcher decides,
what goes out, and the side effects the edges must carry out."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Decision(str, Enum):
    """What the matcher concluded about one message."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    FALLBACK = "fallback"


FALLBACK_INTENT = "fallback"


@dataclass(frozen=True)
class Incoming:
    """One message from a patient, already stripped of any platform detail."""

    text: str
    profile_name: str | None = None
    media_types: tuple[str, ...] = ()
    has_location: bool = False


@dataclass(frozen=True)
class Candidate:
    intent: str
    score: float


@dataclass(frozen=True)
class Match:
    """The matcher's verdict on one message.

    `intent` is the intent the bot acts on: the answered intent, the best candidate when
    clarifying, or `fallback`. `reason` says how it was reached (for logs and reports).
    """

    decision: Decision
    intent: str
    score: float
    candidates: tuple[Candidate, ...] = ()
    reason: str = "fuzzy"
    greeted: bool = False

    def as_dict(self) -> dict:
        return {
            "decision": self.decision.value,
            "intent": self.intent,
            "score": round(self.score, 4),
            "candidates": [{"intent": c.intent, "score": round(c.score, 4)} for c in self.candidates],
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Reply:
    text: str


class HandoffReason(str, Enum):
    BOOKING = "booking"
    HUMAN_AGENT = "human_agent"
    URGENT = "urgent"


@dataclass(frozen=True)
class Handoff:
    """Pass the conversation to clinic staff."""

    reason: HandoffReason


@dataclass(frozen=True)
class StartBooking:
    """The patient asked for an appointment; the booking flow takes it from here."""


Action = Handoff | StartBooking


def describe_action(action: Action) -> str:
    """A stable short name for an action, used in fixtures, reports and logs."""
    if isinstance(action, Handoff):
        return f"handoff:{action.reason.value}"
    return "start_booking"


@dataclass(frozen=True)
class Turn:
    """Everything one dialogue step produced."""

    replies: tuple[Reply, ...]
    actions: tuple[Action, ...]
    state: "ConversationState"
    match: Match | None = None


@dataclass(frozen=True)
class ConversationState:
    """What the bot remembers about one conversation between messages.

    `options` are the intent ids the last reply offered as a numbered list (menu, clarify
    question or follow-up suggestions), so that a bare "1" or "2" can pick one.
    """

    started: bool = False
    options: tuple[str, ...] = ()
    last_intent: str | None = None
    misses: int = 0

    def to_dict(self) -> dict:
        return {
            "started": self.started,
            "options": list(self.options),
            "last_intent": self.last_intent,
            "misses": self.misses,
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> "ConversationState":
        data = data or {}
        return cls(
            started=bool(data.get("started", False)),
            options=tuple(data.get("options", ())),
            last_intent=data.get("last_intent"),
            misses=int(data.get("misses", 0)),
        )
