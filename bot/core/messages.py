"""Typed values that flow through the dialogue core: what comes in, what the matcher decides,
what goes out, and the side effects the edges must carry out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum


class Decision(str, Enum):
    """What the matcher concluded about one message."""

    ANSWER = "answer"
    CLARIFY = "clarify"
    FALLBACK = "fallback"


FALLBACK_INTENT = "fallback"


@dataclass(frozen=True)
class InboundMessage:
    """One message as a channel delivered it, in no channel's terms.

    `message_id` is the channel's id of the message (a retried delivery has the same one);
    `sender` is the patient's address, '<channel>:<their id there>' ('whatsapp:+62812...'), the
    key of their conversation; `choice_id`/`choice_text`: a tapped button or list item."""

    message_id: str
    sender: str
    body: str = ""
    profile_name: str | None = None
    media: tuple[tuple[str, str], ...] = ()  # (url, content type)
    latitude: float | None = None
    longitude: float | None = None
    location_label: str | None = None
    choice_id: str | None = None
    choice_text: str | None = None

    @property
    def text(self) -> str:
        """What the patient said: the body, or the label of a tapped choice."""
        return self.body.strip() or (self.choice_text or self.choice_id or "").strip()


# No Indonesian number has a 0 right after the country code, so numbers in this range belong to
# nobody: simulated patients and live replays use them, and a message "sent" to one reaches no one.
TEST_NUMBER_PREFIX = "+6200"


def local_id(address: str) -> str:
    """'whatsapp:+62812...' -> '+62812...': the patient's id on their channel, for staff to read."""
    return address.partition(":")[2] or address


@dataclass(frozen=True)
class Incoming:
    """One message from a patient, already stripped of any platform detail."""

    text: str
    profile_name: str | None = None
    media_types: tuple[str, ...] = ()
    has_location: bool = False
    choice_id: str | None = None  # a tapped button's id (an Option.id, or a feedback button's)


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
class Option:
    """One choice a reply offers, as data for a channel that shows buttons or list rows: `id`
    comes back when it is tapped (Incoming.choice_id) and counts as typing `said` (its number
    in the reply's numbered list, or a word); `title` is what the button shows."""

    id: str
    title: str
    said: str


@dataclass(frozen=True)
class Reply:
    """One message to the patient. `question`: the satisfaction question this text ends with
    (bot.core.feedback), for a channel that sends it on its own (with buttons); empty if none.
    `options`: the choices the text lists, for a channel that can show them as buttons (the
    text keeps its numbered list for the channels that cannot)."""

    text: str
    question: str = field(default="", compare=False)
    options: tuple[Option, ...] = field(default=(), compare=False)

    def split_question(self) -> tuple[str, str]:
        """(the text before the satisfaction question, the question), or (the text, "") when it
        does not end with one."""
        if not self.question or not self.text.endswith(self.question):
            return self.text, ""
        return self.text.removesuffix(self.question).rstrip(), self.question.strip()


class HandoffReason(str, Enum):
    BOOKING = "booking"
    HUMAN_AGENT = "human_agent"
    URGENT = "urgent"


@dataclass(frozen=True)
class BookingDetails:
    """What a patient asked for; staff confirm it (the bot does not own the calendar)."""

    name: str
    complaint: str
    start: datetime  # timezone-aware, Asia/Jakarta
    treatment: str = ""  # an id of clinic.yaml's schedule.treatments
    minutes: int = 30
    confirmed: bool = False  # the clinic confirms chosen slots at once (schedule.auto_confirm)

    def as_dict(self) -> dict:
        return {"name": self.name, "complaint": self.complaint, "start": self.start.isoformat()}


@dataclass(frozen=True)
class Handoff:
    """Pass the conversation to clinic staff (with the booking request, for a booking;
    `detail` tells staff what raised an urgent one)."""

    reason: HandoffReason
    booking: BookingDetails | None = None
    detail: str | None = None


@dataclass(frozen=True)
class BookAppointment:
    """An appointment the clinic confirms at once (clinic.yaml schedule.auto_confirm): booked,
    staff told; no case, so the chat stays with the bot."""

    booking: BookingDetails


def booked(actions) -> BookingDetails | None:
    """The appointment a turn's actions book, held (a handoff's) or confirmed at once."""
    return next((a.booking for a in actions if isinstance(a, Handoff | BookAppointment) and a.booking), None)


@dataclass(frozen=True)
class StaffView:
    """What the edge knows of staff for one chat: whether staff have it (a case is open: the
    one fact, kept by storage) and when they last replied in it."""

    has_chat: bool = False
    replied_at: datetime | None = None


@dataclass(frozen=True)
class StartBooking:
    """The patient asked for an appointment; the booking conversation has begun."""


@dataclass(frozen=True)
class CancelBooking:
    """The patient cancelled their appointment ("batal janji", or moved it): its places go back."""


@dataclass(frozen=True)
class ConfirmAttendance:
    """The patient said they will come to their next appointment (the reminder's button, or
    "ya saya hadir"): staff see it beside the booking."""


@dataclass(frozen=True)
class EraseData:
    """The patient confirmed "hapus data saya": erase everything stored about them."""


@dataclass(frozen=True)
class ReportData:
    """The patient asked what is stored about them: the edge fills in the figures
    ({messages}, {since}, {bookings}, {cases}) of the reply, which only storage knows."""


@dataclass(frozen=True)
class Rating:
    """The patient answered the satisfaction question: whether it helped, and what it was
    about (`subject`: an intent id, or a closed case, see bot.core.feedback)."""

    helpful: bool
    subject: str


Action = Handoff | BookAppointment | StartBooking | CancelBooking | ConfirmAttendance | EraseData | ReportData | Rating
_ACTION_NAMES = {
    BookAppointment: "book_appointment",
    StartBooking: "start_booking",
    CancelBooking: "cancel_booking",
    ConfirmAttendance: "confirm_attendance",
    EraseData: "erase_data",
    ReportData: "report_data",
}


def describe_action(action: Action) -> str:
    """A stable short name for an action, used in fixtures, reports and logs."""
    if isinstance(action, Handoff):
        return f"handoff:{action.reason.value}"
    if isinstance(action, Rating):
        return f"feedback:{'up' if action.helpful else 'down'}"
    return _ACTION_NAMES[type(action)]


@dataclass(frozen=True)
class Turn:
    """Everything one dialogue step produced."""

    replies: tuple[Reply, ...]
    actions: tuple[Action, ...]
    state: ConversationState
    match: Match | None = None
    # The message's triage (bot.core.triage.Assessment); None when the step made none.
    triage: object | None = None
    # A message that asked several things: the verdict on each question taken up, in order
    # (`match` is the first); empty for a message read as one question.
    questions: tuple[Match, ...] = ()


@dataclass(frozen=True)
class BookingDraft:
    """A booking conversation in progress.

    `step` is what the bot asked last: name_confirm, name, complaint, when, pick_slot, change,
    confirm. `editing` returns to the summary after one field is corrected. `slots` are the
    ISO times offered as a numbered list. Times are ISO strings so the draft stores as JSON.
    """

    step: str
    updated_at: str
    name: str | None = None
    complaint: str | None = None
    day: str | None = None
    at: str | None = None
    slots: tuple[str, ...] = ()
    editing: bool = False
    treatment: str | None = None  # a treatment the patient named (None: the default one)
    moving: bool = False  # a new time for an appointment already made ("ganti jadwal")
    period: str | None = None  # a time of day said without an hour ("besok sore"): its free slots are offered

    def to_dict(self) -> dict:
        return {
            "step": self.step, "updated_at": self.updated_at, "name": self.name, "complaint": self.complaint,
            "day": self.day, "at": self.at, "slots": list(self.slots), "editing": self.editing,
            "treatment": self.treatment, "moving": self.moving, "period": self.period,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict | None) -> BookingDraft | None:
        if not data or "step" not in data:
            return None
        return cls(
            step=data["step"], updated_at=data["updated_at"], name=data.get("name"), complaint=data.get("complaint"),
            day=data.get("day"), at=data.get("at"), slots=tuple(data.get("slots", ())),
            editing=bool(data.get("editing")), treatment=data.get("treatment"), moving=bool(data.get("moving")),
            period=data.get("period"),
        )  # fmt: skip


@dataclass(frozen=True)
class ConversationState:
    """What the bot remembers about one conversation between messages.

    `options` are the intent ids the last reply offered as a numbered list (menu, clarify
    question or follow-up suggestions), so that a bare "1" or "2" can pick one. Whether staff
    have the chat is not kept here: it is the case's status, which the edge passes to each step
    (StaffView). Times are ISO strings so the state stores as JSON.
    """

    started: bool = False
    options: tuple[str, ...] = ()
    last_intent: str | None = None
    misses: int = 0
    booking: BookingDraft | None = None
    # When "hapus data saya" was asked: a confirmation counts only soon after it.
    erase_asked_at: str | None = None
    # Rules marked `anywhere` that the last message showed in part: (rule id, indices of its
    # groups present). "betis sakit bgt" then "minggu lalu abis operasi" completes one.
    danger_parts: tuple[tuple[str, tuple[int, ...]], ...] = ()
    # When the last emergency was answered: follow-ups get the urgent direction again.
    emergency_at: str | None = None
    # When the holding message was last sent while staff have the chat.
    held_at: str | None = None
    # Doctor-level triage rules already advised in this conversation.
    advised: tuple[str, ...] = ()
    # The satisfaction question (bot.core.feedback): when it was last asked, or last ruled out
    # by an emergency (it comes at most once a day, never on an emergency's day), and what the
    # question waiting for its answer is about.
    feedback_at: str | None = None
    feedback_on: str | None = None

    def resumed(self) -> ConversationState:
        """The state after staff close the case: the bot talks again, from a clean slate (but
        the satisfaction question still comes at most once a day)."""
        return ConversationState(started=self.started, feedback_at=self.feedback_at)

    def to_dict(self) -> dict:
        return {
            "started": self.started,
            "options": list(self.options),
            "last_intent": self.last_intent,
            "misses": self.misses,
            "booking": self.booking.to_dict() if self.booking else None,
            "erase_asked_at": self.erase_asked_at,
            "danger_parts": {rule: list(groups) for rule, groups in self.danger_parts},
            "emergency_at": self.emergency_at,
            "held_at": self.held_at,
            "advised": list(self.advised),
            "feedback_at": self.feedback_at,
            "feedback_on": self.feedback_on,
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> ConversationState:
        data = data or {}
        return cls(
            started=bool(data.get("started", False)),
            options=tuple(data.get("options", ())),
            last_intent=data.get("last_intent"),
            misses=int(data.get("misses", 0)),
            booking=BookingDraft.from_dict(data.get("booking")),
            erase_asked_at=data.get("erase_asked_at"),
            danger_parts=tuple(
                (str(rule), tuple(int(i) for i in groups)) for rule, groups in (data.get("danger_parts") or {}).items()
            ),
            emergency_at=data.get("emergency_at"),
            held_at=data.get("held_at"),
            advised=tuple(data.get("advised", ())),
            feedback_at=data.get("feedback_at"),
            feedback_on=data.get("feedback_on"),
        )
