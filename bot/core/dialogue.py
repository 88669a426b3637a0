"""The dialogue engine: (conversation state, incoming message, time) -> replies, actions, state.

Pure: no I/O, no web framework, channel or database; the time comes in as `now`. The edges store the state, send
the replies and carry out the actions (a handoff case for staff, with its booking request).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from itertools import pairwise
from typing import NamedTuple

from . import dates
from .booking import CHOICE_PREFIXES, MAX_CHOICE_DIGITS, BookingFlow
from .feedback import BUTTONS as FEEDBACK_BUTTONS
from .feedback import Feedback
from .knowledge import KnowledgeBase
from .matcher import NAMED_PREFIX, Matcher
from .messages import (
    FALLBACK_INTENT,
    Action,
    BookAppointment,
    CancelBooking,
    ConfirmAttendance,
    ConversationState,
    Decision,
    EraseData,
    Handoff,
    HandoffReason,
    Incoming,
    Match,
    Option,
    Reply,
    ReportData,
    StaffView,
    StartBooking,
    Turn,
)
from .normalize import typed_words
from .questions import MAX_ANSWERS, Question, QuestionFinder
from .render import bulleted, numbered, render
from .schedule import NO_CALENDAR, CalendarView
from .triage import CRISIS, RED_FLAG, Assessment, Level, Parts, Triage
from .understand import IN_MEMORY, ModelSource

_ACTIONS: dict[str, Action] = {
    "start_booking": StartBooking(),
    "handoff_human": Handoff(HandoffReason.HUMAN_AGENT),
    "handoff_urgent": Handoff(HandoffReason.URGENT),
}
# Where an answer goes among the answers to several questions: answers in the order asked, then
# a list to pick from (the menu), then one flow that waits for the patient.
_ANSWER, _LIST, _FLOW = 0, 1, 2
_FLOW_ACTIONS = frozenset({"start_booking", "handoff_human", "erase_request"})
# Beside a request to talk to staff, the other flows (a booking, an erasure) go to staff with it.
_TO_STAFF = "handoff_human"
# After this many messages in a row that the bot could not place, a case is opened for staff.
MISSES_BEFORE_HANDOFF = 2
NO_STAFF = StaffView()
# The reason of a message that waits for staff (answered with the holding message, or a short
# acknowledgement once the patient has been told).
WAITING_FOR_STAFF = "waiting_for_staff"
# After an emergency, each message is answered with the urgent direction again for this long
# (or until staff close the case).
EMERGENCY_FOLLOW_UP = timedelta(hours=12)
# The answer to a doctor-level message that asks about no topic the bot knows.
# Said while staff have the chat or after an emergency: acknowledged, not answered as a topic.
_ACKNOWLEDGED = frozenset({"thanks", "goodbye", "greeting"})
DEFAULT_BOOKING_EXPIRY = timedelta(hours=2)
_PRIVACY_ACTIONS = ("erase_request", "data_summary")
# The acknowledgement of an attachment sent with a caption, by its kind (content type).
_MEDIA_RECEIVED = {
    "image": "media_received_image",
    "application": "media_received_document",
    "text": "media_received_document",
    "video": "media_received_video",
}
# "batal janji", "ganti jadwal": a message about the appointment has at most this many words.
_APPOINTMENT_MAX_TOKENS = 6
# "ya saya hadir" without an appointment word counts at most this long.
_ATTEND_MAX_TOKENS = 3
_CANCEL, _MOVE, _ATTEND = "cancel", "move", "attend"
# The answer to "hapus semua data Anda?" counts only this soon after it.
ERASE_CONFIRM_WINDOW = timedelta(minutes=10)
# The choice id of a topic offered in a numbered list (menu, clarify question, follow-ups).
TOPIC_CHOICE = "topic:"
# The erase confirmation's buttons (id, text of the title); a tap counts as typing the title.
ERASE_CHOICE = "erase:"
_ERASE_CHOICES = ((f"{ERASE_CHOICE}yes", "choice_erase_yes"), (f"{ERASE_CHOICE}no", "choice_erase_no"))
# The appointment reminder's buttons (id, text of the title): a tap counts as typing the title,
# whenever it comes, so it acts on the patient's appointment as it is then (or finds none).
APPOINTMENT_CHOICE = "appointment:"
APPOINTMENT_CHOICES = tuple(
    (f"{APPOINTMENT_CHOICE}{command}", f"choice_appointment_{command}") for command in (_ATTEND, _MOVE, _CANCEL)
)
# Every choice id the bot gives starts with one of these; a tap on another (a button of a
# template sent from outside the bot) is read as its text.
OWN_CHOICES = (TOPIC_CHOICE, ERASE_CHOICE, APPOINTMENT_CHOICE, *CHOICE_PREFIXES)


class Engine:
    """Holds the knowledge base, its triage and its matcher; `step` is the whole dialogue."""

    def __init__(
        self,
        kb: KnowledgeBase,
        matcher: Matcher | None = None,
        booking_expiry: timedelta = DEFAULT_BOOKING_EXPIRY,
        models: ModelSource | None = None,
    ):
        self.kb = kb
        models = models or (matcher.models if matcher else IN_MEMORY)
        self.matcher = matcher or Matcher(kb, models)
        self.triage = Triage(kb, self.matcher.rules, models, self.matcher.normalize, self.matcher.training)
        self.booking = BookingFlow(kb, self.matcher, booking_expiry)
        self.questions = QuestionFinder(self.matcher)
        self.feedback = Feedback(kb)
        self._numbers = kb.lexicon.numbers
        self._fillers = kb.lexicon.option_fillers
        self._affirmations = kb.lexicon.affirmations
        self._cancel = kb.lexicon.cancel_words
        self._practical = frozenset(kb.practical_intents)
        self.words = kb.dialogue_words
        self.calendar = NO_CALENDAR

    def step(
        self,
        state: ConversationState,
        incoming: Incoming,
        now: datetime | None = None,
        staff: StaffView = NO_STAFF,
        calendar: CalendarView = NO_CALENDAR,
    ) -> Turn:
        """One patient message. `now` defaults to the current time in Jakarta; `staff` says
        whether staff have the chat (an open case) and when they last replied; `calendar`, the
        slots with no place left and the patient's next appointment (storage knows them)."""
        if calendar is not self.calendar:
            return self._seeing(calendar).step(state, incoming, now, staff, calendar)
        now = (now or datetime.now(dates.JAKARTA)).astimezone(dates.JAKARTA)
        said = self._said(state, incoming, now, staff)
        if said != incoming.text and self._urgent_words(incoming.text, state):
            said = incoming.text  # a danger sign typed beside a tap: the words count, not the tap
        if said is None:
            return self._offering(self._stale_choice(self._lapsed(state, now, staff)), staff)
        incoming = replace(incoming, text=said)
        assessment, parts = self.assess(incoming.text or "", state.danger_parts)
        proceed = partial(
            self._step, incoming=incoming, now=now, first=not state.started, assessment=assessment, staff=staff
        )
        turn = self.feedback.around(
            replace(state, started=True), incoming.text or "", now, assessment, staff, proceed, incoming.choice_id
        )
        turn = replace(turn, state=replace(turn.state, danger_parts=parts), triage=assessment)
        turn = self._acknowledge_media(incoming, turn)
        if not state.started and turn.replies:
            # A new patient learns first that this is an automated assistant, unless the message
            # is urgent: then the urgent advice comes first and the introduction after it.
            intro = Reply(self.text("first_contact"))
            replies = (*turn.replies, intro) if _urgent(turn.actions) else (intro, *turn.replies)
            turn = replace(turn, replies=replies)
        return self._offering(turn, staff)

    def offer(self, state: ConversationState, staff: StaffView = NO_STAFF) -> tuple[Option, ...]:
        """The choices the conversation's pending question accepts as a tap: the erase
        confirmation's yes/no, the booking's (slots, yes/no, which field) or the numbered topics
        showing; none while staff have the chat, an emergency's follow-up or the satisfaction
        question waits."""
        if state.erase_asked_at:
            return tuple(Option(choice, self.text(key), self.text(key)) for choice, key in _ERASE_CHOICES)
        if staff.has_chat or state.emergency_at or state.feedback_on:
            return ()
        if state.booking is not None:
            return self.booking.offer(state.booking)
        return tuple(
            Option(f"{TOPIC_CHOICE}{intent}", self.kb.intents[intent].title or intent, str(number))
            for number, intent in enumerate(state.options, start=1)
            if intent in self.kb.intents
        )

    def appointment_choices(self) -> dict[str, str]:
        """The appointment reminder's buttons: id -> title, which is what a tap counts as."""
        return {choice: self.text(key) for choice, key in APPOINTMENT_CHOICES}

    def _offering(self, turn: Turn, staff: StaffView) -> Turn:
        """The turn with its last reply carrying the choices it leaves open (as data)."""
        options = self.offer(turn.state, staff)
        if not options or not turn.replies:
            return turn
        return replace(turn, replies=(*turn.replies[:-1], replace(turn.replies[-1], options=options)))

    def _said(self, state: ConversationState, incoming: Incoming, now: datetime, staff: StaffView) -> str | None:
        """What a message says: its text, or for a tapped choice of the bot's what the patient could
        have typed for it (its number or word); None for one the conversation does not offer now."""
        choice = incoming.choice_id
        if choice and choice.startswith(APPOINTMENT_CHOICE):
            return self.appointment_choices().get(choice, incoming.text)
        if not choice or choice in FEEDBACK_BUTTONS or not choice.startswith(OWN_CHOICES) or staff.has_chat:
            return incoming.text  # while staff have the chat, a tap is a message for them
        offered = {option.id: option.said for option in self.offer(self._lapsed(state, now, staff), staff)}
        return offered.get(choice)

    def _urgent_words(self, text: str | None, state: ConversationState) -> bool:
        return bool(text) and self.assess(text, state.danger_parts)[0].level is Level.EMERGENCY

    def _stale_choice(self, state: ConversationState) -> Turn:
        """A tap on a choice not offered now (an old message, or another conversation's)."""
        reply = Reply(self.text("choice_stale"))
        match = Match(Decision.FALLBACK, FALLBACK_INTENT, 0.0, reason="choice_stale")
        return Turn((reply, *self._booking_resume(state)), (), replace(state, started=True), match)

    def _seeing(self, calendar: CalendarView) -> Engine:
        """This engine for one message, seeing the calendar as storage has it."""
        engine = copy.copy(self)
        engine.calendar = calendar
        engine.booking = self.booking.seeing(calendar.full)
        return engine

    def _acknowledge_media(self, incoming: Incoming, turn: Turn) -> Turn:
        """A photo, document or video sent with a caption: received, said before the answer
        to the caption (not before urgent advice, which comes first)."""
        key = _MEDIA_RECEIVED.get(_media_kind(incoming.media_types))
        if key is None or not (incoming.text or "").strip() or not turn.replies or _urgent(turn.actions):
            return turn
        first = replace(turn.replies[0], text=f"{self.text(key)}\n{turn.replies[0].text}")
        return replace(turn, replies=(first, *turn.replies[1:]))

    def assess(self, text: str, carried: Parts = ()) -> tuple[Assessment, Parts]:
        """The triage of a message (before anything else), and the parts of rules told over
        two messages that it carries to the next one."""
        return self.triage.assess(self.matcher.read(text.strip()), carried)

    def _step(
        self,
        state: ConversationState,
        incoming: Incoming,
        now: datetime,
        first: bool,
        assessment: Assessment,
        staff: StaffView,
    ) -> Turn:
        """The message goes down PRECEDENCE; the first concern that takes it answers it."""
        text = (incoming.text or "").strip()
        tokens = self.matcher.normalize.tokens(text)
        message = _Message(self._lapsed(state, now, staff), incoming, text, tokens, now, first, assessment, staff)
        for concern in PRECEDENCE:
            turn = concern.take(self, message)
            if turn is not None:
                return self._advised(turn, assessment) if concern.advised else turn
        raise AssertionError("the last concern of PRECEDENCE takes every message")

    def _lapsed(self, state: ConversationState, now: datetime, staff: StaffView) -> ConversationState:
        """The state without what has run out: an abandoned booking (answered afresh), an erase
        request too old for its answer to count, an emergency followed up long enough or taken
        up by staff."""
        if state.booking and self.booking.expired(state.booking, now):
            state = replace(state, booking=None)
        if state.erase_asked_at and now - datetime.fromisoformat(state.erase_asked_at) > ERASE_CONFIRM_WINDOW:
            state = replace(state, erase_asked_at=None)
        if state.emergency_at:
            since = datetime.fromisoformat(state.emergency_at)
            if now - since > EMERGENCY_FOLLOW_UP or (staff.replied_at and staff.replied_at > since):
                state = replace(state, emergency_at=None)
        return state

    # -- the concerns, in the order of PRECEDENCE: each takes the message (a Turn) or passes (None)

    def _take_emergency(self, m: _Message) -> Turn | None:
        return self._emergency(m.state, m.assessment, m.now) if m.assessment.level is Level.EMERGENCY else None

    def _take_erase_answer(self, m: _Message) -> Turn | None:
        if not m.state.erase_asked_at:
            return None
        turn = self._confirm_erase(m.state, m.text, m.tokens)
        if turn is None:
            m.state = replace(m.state, erase_asked_at=None)  # a real question lapses the request
        return turn

    def _take_privacy_command(self, m: _Message) -> Turn | None:
        privacy = self._privacy_command(m.text, m.tokens)
        if privacy is None:
            return None
        busy = m.staff.has_chat or m.state.booking or m.state.emergency_at
        if not busy and len(self.questions.find(m.text, privacy)) > 1:
            return None  # "data apa yg disimpan? trus cara hapusnya gmn": answered as several questions
        if m.staff.has_chat and self._about_an_appointment(privacy, m.tokens):
            return None  # "hapus janji saya" while staff have the chat: for staff
        return self._privacy(m.state, privacy, m.now, m.tokens)

    def _take_after_emergency(self, m: _Message) -> Turn | None:
        return self._after_emergency(m.state, m.text, m.assessment) if m.state.emergency_at else None

    def _take_staff_chat(self, m: _Message) -> Turn | None:
        return self._while_staff(m.state, m.text, m.now, m.assessment, m.staff) if m.staff.has_chat else None

    def _take_booking(self, m: _Message) -> Turn | None:
        if m.state.booking and (m.tokens or self.booking.says_yes(m.text)):
            return self._continue_booking(m.state, m.incoming, m.now)
        return None

    def _take_option(self, m: _Message) -> Turn | None:
        """A pick from the numbered list showing ("2", "yang kedua"); a number outside it, or
        "iya" to it, asked again; a small number when no list shows: the menu it was meant for."""
        choice = self._option_choice(m.tokens)
        options = m.state.options
        if not options:
            if 1 <= (choice or 0) <= len(self.kb.menu_items):
                menu = Match(Decision.ANSWER, "menu", 1.0, reason="number_without_menu")
                return self._answer(m.state, menu, m.incoming, m.now)
            return None
        if choice is not None and 1 <= choice <= len(options):
            match = Match(Decision.ANSWER, options[choice - 1], 1.0, reason="option")
            return self._answer(m.state, match, m.incoming, m.now)
        said = typed_words(m.text)
        if choice is not None or (said and set(said) <= self._affirmations):
            reply = Reply(self.text("invalid_option").replace("{n}", str(len(options))))
            return Turn((reply,), (), m.state, None)
        return None

    def _take_appointment(self, m: _Message) -> Turn | None:
        return self._appointment(m.state, m.incoming, m.tokens, m.now)

    def _take_wordless(self, m: _Message) -> Turn | None:
        """No word to read: media, a location, emoji only, or nothing."""
        if m.tokens:
            return None
        if m.incoming.media_types or m.incoming.has_location:
            key = "voice_note" if _media_kind(m.incoming.media_types) == "audio" else "media"
        else:
            key = "emoji_only" if m.text else "empty"
        return Turn((Reply(self.text(key)),), (), m.state, Match(Decision.FALLBACK, FALLBACK_INTENT, 0.0, reason=key))

    def _take_intent(self, m: _Message) -> Turn:
        """A question (or several): answered, asked about, or not understood."""
        state, text = m.state, m.text
        context = state.options or (
            *self._follow_ups(state.last_intent),
            *([state.last_intent] if state.last_intent else []),
        )
        match = self.matcher.match(text, context=context)
        if match.decision is not Decision.ANSWER and m.assessment.level is Level.DOCTOR:
            # A complaint worth a doctor's visit in no topic the bot knows ("tensi sy 160/100"):
            # the advice (added by _advised) and what the clinic can do; not a miss, and not the
            # answer about twitching.
            reason = Match(Decision.FALLBACK, FALLBACK_INTENT, match.score, match.candidates, reason="triage_doctor")
            return Turn((Reply(self.text("doctor_only")),), (), replace(state, options=()), reason)
        questions = self.questions.find(text, match)
        flows = [q.match.intent for q in questions if self._place(q.match.intent) == _FLOW]
        if len(flows) > 1 and not any(self.kb.intents[i].action == _TO_STAFF for i in flows):
            questions = ()  # two flows at once ("hapus data, terus mau booking"): read as one
        salam = bool(self.words.salam & set(m.tokens))
        if len(questions) > 1:
            return self._answer_several(state, questions, m.incoming, m.now, salam=salam, first=m.first)
        if questions:
            match = questions[0].match  # the narrower of a broad question and a narrower one of it
        if match.decision is Decision.ANSWER:
            return self._answer(state, match, m.incoming, m.now, salam=salam, first=m.first)
        if match.decision is Decision.CLARIFY:
            return self._clarify(state, match)
        return self._fallback(state, match, m.now)

    # -- triage -----------------------------------------------------------------------------

    def _emergency(self, state, assessment: Assessment, now: datetime) -> Turn:
        """Go to the IGD / call 119 now; staff are alerted as urgent, every time."""
        intent = self.kb.intents[assessment.intent or RED_FLAG]
        body, _ = render(intent.answer, self.kb)
        if assessment.note:
            body = f"{body}\n{assessment.note}"
        match = Match(Decision.ANSWER, intent.id, assessment.score, reason=f"triage:{assessment.rule}")
        handoff = Handoff(HandoffReason.URGENT, detail=_triage_detail(assessment))
        after = replace(state, options=(), booking=None, last_intent=intent.id, misses=0, emergency_at=now.isoformat())
        return Turn((Reply(body),), (handoff,), after, match)

    def _after_emergency(self, state, text: str, assessment: Assessment) -> Turn:
        """A follow-up to an emergency: the urgent direction again, short, and a safe answer to
        what was asked (coming to the clinic instead is not one)."""
        match = self.matcher.match(text) if text else Match(Decision.FALLBACK, FALLBACK_INTENT, 0.0, reason="empty")
        said = match.intent if match.decision is Decision.ANSWER else None
        if said in _ACKNOWLEDGED:
            second = self.text("emergency_thanks")
        elif state.last_intent == CRISIS or not text:
            second = None
        else:
            second = self.text("emergency_not_clinic")
        # After thoughts of suicide, the mental-health line again, not the emergency department.
        again = self.text("crisis_again" if state.last_intent == CRISIS else "emergency_again")
        texts = [again, *([second] if second else [])]
        reason = Match(Decision.ANSWER, match.intent, match.score, match.candidates, reason="after_emergency")
        return Turn((Reply("\n".join(texts)),), (), state, reason)

    def _advised(self, turn: Turn, assessment: Assessment) -> Turn:
        """A doctor-level message: the advice to see a doctor first, then the answer (once per
        rule in a conversation; the model's advice once)."""
        if assessment.level is not Level.DOCTOR or assessment.rule in turn.state.advised:
            return turn
        reason = assessment.note or self.text("doctor_reason_unknown")
        advice = self.text("doctor_advice").replace("{reason}", reason)
        replies = (
            (Reply(f"{advice}\n\n{turn.replies[0].text}"), *turn.replies[1:]) if turn.replies else (Reply(advice),)
        )
        state = replace(turn.state, advised=(*turn.state.advised, assessment.rule))
        return replace(turn, replies=replies, state=state)

    # -- answers ----------------------------------------------------------------------------

    def _answer(
        self,
        state,
        match: Match,
        incoming: Incoming,
        now: datetime,
        salam: bool = False,
        first: bool = False,
        answered: frozenset[str] = frozenset(),
        offer: bool = True,
    ) -> Turn:
        """Answer one intent. `answered`: intents answered in this turn (not offered again as
        follow-ups); `offer`: whether the answer ends with follow-ups to pick from (only the last
        of several answers does)."""
        intent = self.kb.intents[match.intent]
        if intent.id == FALLBACK_INTENT:
            return self._fallback(state, match, now)
        if intent.id == "greeting" and state.last_intent is None and not state.misses:
            # A first hello gets the introduction anyway: show what the bot can do instead.
            intent = self.kb.intents["menu"]
        if intent.id == "booking":
            return self._start_booking(state, match, incoming, now)
        if intent.action in _PRIVACY_ACTIONS:
            return self._privacy(state, match, now, self.matcher.normalize.tokens(incoming.text or ""))
        if intent.id == "menu":
            options, prompt = self.kb.menu_items, self.kb.menu_prompt
        else:
            options, prompt = intent.follow_up, self.text("follow_up_prompt")
        body = self._greeted(render(intent.answer, self.kb)[0], intent.id, match, salam, first)
        actions = (_ACTIONS[intent.action],) if intent.action else ()
        if _handoff(actions):
            return self._hand_over(state, (body,), actions, match, now, intent.id)
        if intent.id == "menu" and not offer:
            # The menu before a question the patient answers next: its topics, not numbers to pick.
            body = f"{body}\n{bulleted([self.kb.intents[i].title for i in options])}"
        options = [i for i in options if i not in answered] if offer else []
        if options:
            titles = [self.kb.intents[i].title for i in options]
            body = f"{body}\n\n{prompt}\n{numbered(titles)}"
        new_state = replace(state, options=tuple(options), last_intent=intent.id, misses=0, booking=None)
        return Turn((Reply(body),), actions, new_state, match)

    def _greeted(self, body: str, intent_id: str, match: Match, salam: bool, first: bool) -> str:
        """An answer with the reply to "assalamualaikum", or to a greeting before the question."""
        if salam:
            return f"{self.text('salam_reply')}\n{body}"
        if match.greeted and intent_id != "greeting" and not first:
            return f"{self.text('greeting_prefix')} {body}"
        return body

    def _answer_several(
        self, state, questions: tuple[Question, ...], incoming: Incoming, now: datetime, salam: bool, first: bool
    ) -> Turn:
        """A message that asks several things: each answered in the order asked, as its own
        WhatsApp message, at most MAX_ANSWERS; the menu after them and the flow that waits for
        the patient (a booking, an erase confirmation, a handoff) last; a last part the bot is
        unsure of asked about; the rest named as skipped. The flow reads the whole message
        ("harga brp? saya mau booking, besok jam 10")."""
        clear = [q for q in questions if q.match.decision is Decision.ANSWER]
        flows = [q for q in clear if self._place(q.match.intent) == _FLOW]
        to_staff = [q for q in flows if self.kb.intents[q.match.intent].action == _TO_STAFF][:1]
        carried = [q for q in flows if q not in to_staff] if to_staff else []
        flows = to_staff or flows
        clear = [q for q in clear if q not in carried]
        unclear = [q for q in questions if q.match.decision is Decision.CLARIFY]
        waits = bool(flows or unclear)  # the turn ends with a question the patient must answer
        chosen = [q for q in clear if self._place(q.match.intent) in (_ANSWER, _LIST)]
        chosen = chosen[: MAX_ANSWERS - bool(flows)] + flows
        ordered = sorted(chosen, key=lambda q: self._place(q.match.intent))
        skipped = [self.kb.intents[q.match.intent].title for q in clear if q not in chosen]
        if flows:
            unclear = []  # the flow's question is the one the patient answers next
        answered = frozenset(q.match.intent for q in ordered)
        replies: list[Reply] = []
        actions: list = []
        taken: list[Match] = []
        last_start = 0  # where the replies of the last answer (or the question) start
        for index, question in enumerate(ordered):
            match = question.match if index == 0 else replace(question.match, greeted=False)
            offer = index == len(ordered) - 1 and not unclear
            part = incoming if self._place(match.intent) == _FLOW else replace(incoming, text=question.text)
            turn = self._answer(
                state, match, part, now, salam=salam and index == 0, first=first, answered=answered, offer=offer
            )
            last_start = len(replies)
            replies += turn.replies
            actions += turn.actions
            taken.append(turn.match or match)
            state = turn.state
        for question in unclear:
            turn = self._clarify(state, question.match, "clarify_other")
            last_start = len(replies)
            replies += turn.replies
            taken.append(question.match)
            state = turn.state
        if carried:
            also = Reply(
                self.text("handoff_also").replace(
                    "{topics}", ", ".join(self.kb.intents[q.match.intent].title for q in carried)
                )
            )
            replies = [*replies[:last_start], also, *replies[last_start:]]
            last_start += 1
            taken[-1:-1] = [q.match for q in carried]
        if skipped:
            note = Reply(self.text("questions_skipped").replace("{topics}", ", ".join(skipped)))
            # After the answers, but before a question the patient must answer next.
            replies = [*replies[:last_start], note, *replies[last_start:]] if waits else [*replies, note]
        first_match = replace(taken[0], reason=f"questions:{len(taken)}")
        return Turn(tuple(replies), tuple(actions), state, first_match, questions=tuple(taken))

    def _place(self, intent_id: str) -> int:
        """Where an intent's answer goes among the answers to several questions."""
        intent = self.kb.intents[intent_id]
        if intent.action in _FLOW_ACTIONS:
            return _FLOW
        return _LIST if intent_id == "menu" else _ANSWER

    def _clarify(self, state, match: Match, key: str = "clarify") -> Turn:
        """Ask which of two topics the patient meant, as a numbered list."""
        options = self.matcher.clarify_options(match)
        titles = [self.kb.intents[i].title for i in options]
        reply = Reply(f"{self.text(key)}\n{numbered(titles)}\n{self.text('options_hint')}")
        return Turn((reply,), (), replace(state, options=options), match)

    def _fallback(self, state, match: Match, now: datetime) -> Turn:
        named = match.reason.removeprefix(NAMED_PREFIX)
        if match.reason.startswith(NAMED_PREFIX) and named in self.kb.intents:
            # A topic the bot recognises but does not handle: its own guidance, not a miss.
            body, _ = render(self.kb.intents[named].answer, self.kb)
            return Turn((Reply(body),), (), replace(state, options=(), last_intent=named, misses=0), match)
        misses = state.misses + 1
        if misses >= MISSES_BEFORE_HANDOFF:
            actions = (Handoff(HandoffReason.HUMAN_AGENT),)
            return self._hand_over(state, (self.text("fallback_again"),), actions, match, now, None)
        body, _ = render(self.kb.intents[FALLBACK_INTENT].answer, self.kb)
        return Turn((Reply(body),), (), replace(state, options=(), misses=misses), match)

    def _hand_over(self, state, texts, actions, match, now: datetime, intent_id: str | None) -> Turn:
        """A case for staff: staff have the chat from now on (the edge knows it from the open
        case). What the bot says here tells the patient staff will reply, so it counts as the
        holding message."""
        texts = [*texts, *self._out_of_hours(now)]
        after = replace(state, options=(), booking=None, last_intent=intent_id, misses=0, held_at=now.isoformat())
        return Turn(tuple(Reply(t) for t in texts), actions, after, match)

    def _while_staff(self, state, text: str, now: datetime, assessment: Assessment, staff: StaffView) -> Turn:
        """Staff have the chat. Practical questions the bot knows (address, hours, prices) are
        still answered and thanks acknowledged, with when staff will reply; anything else waits
        for staff, each with a reply so the patient knows it arrived: the holding message when the
        patient has not been told since staff last wrote (the handover's own text counts as told),
        else a short acknowledgement."""
        match = self.matcher.match(text) if text else Match(Decision.FALLBACK, FALLBACK_INTENT, 0.0, reason="empty")
        said = match.intent if match.decision is Decision.ANSWER else None
        if said in self._practical:
            body, _ = render(self.kb.intents[said].answer, self.kb)
            turn = Turn(
                (Reply("\n".join((body, self.text("staff_will_reply")))),), (), replace(state, last_intent=said), match
            )
            return self._advised(turn, assessment)
        waiting = Match(Decision.FALLBACK, match.intent, match.score, match.candidates, reason=WAITING_FOR_STAFF)
        if said in _ACKNOWLEDGED:
            texts = (self.text("staff_thanks"), *self._out_of_hours(now))
            return Turn((Reply("\n".join(texts)),), (), state, replace(waiting, decision=Decision.ANSWER, intent=said))
        held = state.held_at is not None and not (
            staff.replied_at and staff.replied_at > datetime.fromisoformat(state.held_at)
        )
        texts = (self.text("staff_holding_again" if held else "staff_holding"), *self._out_of_hours(now))
        after = state if held else replace(state, held_at=now.isoformat())
        turn = Turn((Reply("\n".join(texts)),), (), after, waiting)
        return self._advised(turn, assessment)

    def _out_of_hours(self, now: datetime) -> tuple[str, ...]:
        """When the clinic is closed, when staff will be back; nothing while it is open."""
        hours = self.kb.clinic.opening_hours
        opening = dates.next_opening(now, hours) if hours and not dates.is_open(now, hours) else None
        return (self.text("out_of_hours").replace("{next_opening}", dates.describe(opening)),) if opening else ()

    # -- the patient's own data -------------------------------------------------------------

    def _privacy_command(self, text: str, tokens: list[str]) -> Match | None:
        """ "hapus data saya" / "data saya": answered even mid-booking or while staff have the chat."""
        if not self.words.privacy & set(tokens):
            return None
        match = self.matcher.match(text)
        intent = self.kb.intents.get(match.intent)
        if match.decision is Decision.ANSWER and intent is not None and intent.action in _PRIVACY_ACTIONS:
            return match
        return None

    def _about_an_appointment(self, match: Match, tokens: list[str]) -> bool:
        """ "hapus janji saya": an erase request about an appointment, not the patient's data."""
        return self.kb.intents[match.intent].action == "erase_request" and bool(self.words.appointment & set(tokens))

    def _privacy(self, state, match: Match, now: datetime, tokens: list[str] = ()) -> Turn:
        intent = self.kb.intents[match.intent]
        body, _ = render(intent.answer, self.kb)
        if self._about_an_appointment(match, tokens):
            # "hapus janji saya" is about an appointment, which staff handle: not the data.
            return self._fallback(
                state,
                replace(match, decision=Decision.FALLBACK, intent=FALLBACK_INTENT, reason="booking_not_data"),
                now,
            )
        if intent.action == "erase_request":
            asked = replace(state, erase_asked_at=now.isoformat(), options=())
            return Turn((Reply(body),), (), asked, match)
        summary = f"{body}\n{self.text('data_summary')}"
        replies = (Reply(summary), *self._booking_resume(state))
        return Turn(replies, (ReportData(),), replace(state, options=()), match)

    def _booking_resume(self, state) -> tuple[Reply, ...]:
        """After a detour in the middle of a booking, the pending question again."""
        if state.booking is None:
            return ()
        return (Reply(f"{self.text('booking_resume')}\n{self.booking.question(state.booking)}"),)

    def _confirm_erase(self, state, text: str, tokens: list[str]) -> Turn | None:
        """The answer to the erase confirmation. Any no keeps the data; a plain yes erases; a
        real question lapses the request and is answered; anything else is asked again, saying
        that nothing was deleted yet."""
        said = set(typed_words(text))
        if said & self.words.erase_no or set(tokens) & self._cancel:
            match = Match(Decision.ANSWER, "privacy_erase", 1.0, reason="erase_cancelled")
            kept = replace(state, erase_asked_at=None)
            return Turn((Reply(self.text("erase_cancelled")), *self._booking_resume(kept)), (), kept, match)
        yes = self._affirmations | self.words.erase_yes
        if said & yes and said <= yes | self.words.erase_fillers:
            match = Match(Decision.ANSWER, "privacy_erase", 1.0, reason="erase_confirmed")
            return Turn((Reply(self.text("erase_done")),), (EraseData(),), ConversationState(), match)
        match = self.matcher.match(text)
        intent = self.kb.intents.get(match.intent)
        if match.decision is Decision.ANSWER and intent is not None and intent.action not in _PRIVACY_ACTIONS:
            return None
        unclear = Match(Decision.CLARIFY, "privacy_erase", 1.0, reason="erase_unclear")
        return Turn((Reply(self.text("erase_unclear")),), (), state, unclear)

    # -- booking ----------------------------------------------------------------------------

    def _appointment(self, state, incoming: Incoming, tokens: list[str], now: datetime) -> Turn | None:
        """The patient's appointment changed or cancelled ("ganti jadwal", "batal janji") at
        any time, even while staff have the chat; a new time being chosen goes on there too."""
        if state.booking is not None:
            return self._continue_booking(state, incoming, now) if state.booking.moving else None
        command = self._appointment_command(incoming.text or "", tokens)
        if command is None:
            return None
        match = Match(Decision.ANSWER, "booking", 1.0, reason=f"appointment:{command}")
        upcoming = self.calendar.upcoming
        if upcoming is None:
            return Turn((Reply(self.text("appointment_none")),), (), replace(state, options=()), match)
        when = dates.describe(upcoming.start)
        if command == _CANCEL:
            reply = Reply(self.text("appointment_cancelled").replace("{when}", when))
            return Turn((reply,), (CancelBooking(),), replace(state, options=()), match)
        if command == _ATTEND:
            reply = Reply(self.text("appointment_attending").replace("{when}", when))
            return Turn((reply,), (ConfirmAttendance(),), replace(state, options=()), match)
        step = self.booking.move(upcoming, now)
        return Turn(tuple(Reply(t) for t in step.texts), (), replace(state, booking=step.draft, options=()), match)

    def _appointment_command(self, text: str, tokens: list[str]) -> str | None:
        """ "batal janji" -> cancel, "ganti jadwal" -> move: a short message naming an
        appointment and what to do with it; "ya saya hadir", "konfirmasi janji" -> attend."""
        words = set(tokens)
        if len(tokens) > _APPOINTMENT_MAX_TOKENS:
            return None
        lexicon = self.kb.lexicon
        if words & lexicon.appointment_words:
            if words & self._cancel or any(a == "tidak" and b == "jadi" for a, b in pairwise(tokens)):
                return _CANCEL
            if words & lexicon.move_words:
                return _MOVE
        elif len(tokens) > _ATTEND_MAX_TOKENS:
            return None
        if words & lexicon.attend_words and not words & lexicon.negations and "?" not in text:
            return _ATTEND
        return None

    def _start_booking(self, state, match: Match, incoming: Incoming, now: datetime) -> Turn:
        intro, _ = render(self.kb.intents["booking"].answer, self.kb)
        step = self.booking.start(incoming.text or "", incoming.profile_name, now)
        replies = (Reply("\n".join((intro, *step.texts))),)
        new_state = replace(state, options=(), last_intent="booking", misses=0, booking=step.draft)
        return Turn(replies, (StartBooking(),), new_state, match)

    def _continue_booking(self, state, incoming: Incoming, now: datetime) -> Turn:
        step = self.booking.step(state.booking, incoming.text or "", now)
        booking_match = Match(Decision.ANSWER, "booking", 1.0, reason=f"booking:{state.booking.step}")
        if step.faq_intent:
            # A question on the way: answer it, then ask the pending question again.
            faq = self.kb.intents[step.faq_intent]
            match = Match(Decision.ANSWER, faq.id, 1.0, reason="booking_faq")
            if faq.action:
                return self._answer(replace(state, booking=None), match, incoming, now)
            body, _ = render(faq.answer, self.kb)
            touched = replace(state, booking=replace(state.booking, updated_at=now.isoformat()))
            return Turn((Reply(body), *self._booking_resume(state)), (), touched, match)
        if step.booking is not None:
            # A new time for an appointment already made: the old one goes, the new one is held
            # for staff (who then have the chat), or booked at once when the clinic confirms so.
            moved = (CancelBooking(),) if state.booking.moving else ()
            if step.booking.confirmed:
                after = replace(state, booking=None, options=(), last_intent="booking", misses=0)
                actions = (*moved, BookAppointment(step.booking))
                return Turn(tuple(Reply(t) for t in step.texts), actions, after, booking_match)
            actions = (*moved, Handoff(HandoffReason.BOOKING, booking=step.booking))
            return self._hand_over(state, step.texts, actions, booking_match, now, "booking")
        new_state = replace(state, booking=step.draft, options=())
        return Turn(tuple(Reply(t) for t in step.texts), (), new_state, booking_match)

    # -- helpers ----------------------------------------------------------------------------

    def _option_choice(self, tokens: list[str]) -> int | None:
        """The number a reply picks ("2", "yang kedua", "no 3"), or None if it is not a pick."""
        rest = [t for t in tokens if t not in self._fillers]
        if len(rest) != 1:
            return None
        word = rest[0]
        if word.isdigit():
            return int(word) if len(word) <= MAX_CHOICE_DIGITS else None
        return self._numbers.get(word)

    def _follow_ups(self, intent_id: str | None) -> tuple[str, ...]:
        intent = self.kb.intents.get(intent_id) if intent_id else None
        return intent.follow_up if intent else ()

    def urgent(self, text: str, state: ConversationState | None = None) -> bool:
        """Whether a message is an emergency (answered even when nothing else would be),
        with the parts of a sign the conversation's last message showed."""
        return self.assess(text, state.danger_parts if state else ())[0].level is Level.EMERGENCY

    def text(self, key: str) -> str:
        """A fixed text of knowledge/dialogue.yaml, with the clinic's name filled in."""
        return self.kb.texts[key].replace("{clinic_name}", self.kb.clinic.name)


@dataclass
class _Message:
    """One patient message as the concerns read it. A concern that passes may hand the next
    ones a changed state (an erase request lapsed by a real question)."""

    state: ConversationState
    incoming: Incoming
    text: str
    tokens: list[str]
    now: datetime
    first: bool
    assessment: Assessment
    staff: StaffView


class Concern(NamedTuple):
    """One row of the dialogue's precedence: `take` answers the message (a Turn) or passes it
    on (None); `advised`: a doctor-level message gets the advice to see a doctor first."""

    name: str
    take: Callable[[Engine, _Message], Turn | None]
    advised: bool = False


# The dialogue's order of concerns, which is its safety precedence: each in turn may take the
# message, and the first that does answers it. Danger signs before anything; a pending question
# (erase my data?) before a new topic; the patient's privacy rights even mid-booking or while
# staff have the chat; then the follow-up of an emergency; the patient's appointment changed or
# cancelled, even while staff have the chat; staff's chat; and only then the
# conversation proper, where a doctor-level message gets the advice to see a doctor first.
PRECEDENCE: tuple[Concern, ...] = (
    Concern("triage: emergency", Engine._take_emergency),
    Concern("pending confirmation: erase my data", Engine._take_erase_answer),
    Concern("privacy command: data saya / hapus data saya", Engine._take_privacy_command),
    Concern("after an emergency", Engine._take_after_emergency),
    Concern("appointment: change or cancel", Engine._take_appointment),
    Concern("staff have the chat", Engine._take_staff_chat),
    Concern("booking in progress", Engine._take_booking, advised=True),
    Concern("numbered options", Engine._take_option, advised=True),
    Concern("nothing to read", Engine._take_wordless, advised=True),
    Concern("intents", Engine._take_intent, advised=True),
)


def _media_kind(media_types: tuple[str, ...]) -> str | None:
    """The kind of the first attachment: the part of its content type before the slash."""
    return media_types[0].split("/", 1)[0].lower() if media_types else None


def _handoff(actions) -> bool:
    return any(isinstance(a, Handoff) for a in actions)


def _urgent(actions) -> bool:
    return any(isinstance(a, Handoff) and a.reason is HandoffReason.URGENT for a in actions)


def _triage_detail(assessment: Assessment) -> str:
    """For staff: what raised the alarm (a rule, or the triage model and its confidence)."""
    if assessment.by_model:
        return f"model {assessment.score:.2f}"
    return assessment.rule or ""
