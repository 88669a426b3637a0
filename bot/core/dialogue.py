"""The dialogue engine: (conversation state, incoming message, time) -> replies, actions, state.

Pure: no I/O, no Flask or Twilio; the time comes in as `now`. The edges store the state, send
the replies and carry out the actions (a handoff case for staff, with its booking request).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

from . import dates
from .booking import MAX_CHOICE_DIGITS, BookingFlow
from .knowledge import KnowledgeBase
from .matcher import Matcher
from .messages import (
    FALLBACK_INTENT,
    Action,
    ConversationState,
    Decision,
    Handoff,
    HandoffReason,
    Incoming,
    Match,
    EraseData,
    Reply,
    ReportData,
    StartBooking,
    Turn,
)
from .render import numbered, render
from .understand import ModelSource

_ACTIONS: dict[str, Action] = {
    "start_booking": StartBooking(),
    "handoff_human": Handoff(HandoffReason.HUMAN_AGENT),
    "handoff_urgent": Handoff(HandoffReason.URGENT),
}
# After this many messages in a row that the bot could not place, staff take over.
MISSES_BEFORE_HANDOFF = 2
DEFAULT_BOOKING_EXPIRY = timedelta(hours=2)
# Words that make a message worth checking for a privacy command (cheap filter before matching).
_PRIVACY_WORDS = {"data", "hapus", "dihapus", "hapusin", "hapuskan", "hps", "delete", "privasi", "riwayat"}
_PRIVACY_ACTIONS = ("erase_request", "data_summary")
_BOOKING_WORDS = {"janji", "booking", "jadwal", "reservasi", "appointment"}
# Answers to "hapus semua data Anda?", read from the raw words (the normalizer drops "ya").
ERASE_CONFIRM_WINDOW = timedelta(minutes=10)
_ERASE_YES = {"hapus", "hapuskan", "hapusin", "hps", "setuju", "yakin", "delete", "ok", "okay", "okey", "oke", "sip",
              "siap", "yaudah", "gpp", "lanjut", "bener", "benar", "betul", "iyaa", "yaa", "yes"}  # fmt: skip
_ERASE_FILLERS = {"aja", "saja", "dong", "kak", "deh", "semua", "semuanya", "data", "datanya", "saya", "aku", "sy", "min",
                  "sudah", "udah", "ya", "iya", "nya", "tolong", "yg", "yang", "pesan", "chat", "riwayat"}  # fmt: skip
_NO_WORDS = {"tidak", "tdk", "ga", "gak", "ngga", "nggak", "enggak", "engga", "gk", "jangan", "jgn", "no", "batal", "gajadi",
             "cancel", "ogah", "belum", "bukan"}  # fmt: skip


class Engine:
    """Holds the knowledge base and its matcher; `step` is the whole dialogue logic."""

    def __init__(
        self,
        kb: KnowledgeBase,
        matcher: Matcher | None = None,
        booking_expiry: timedelta = DEFAULT_BOOKING_EXPIRY,
        models: ModelSource | None = None,
    ):
        self.kb = kb
        self.matcher = matcher or Matcher(kb, models)
        self.booking = BookingFlow(kb, self.matcher, booking_expiry)
        self._numbers = kb.lexicon.numbers
        self._fillers = kb.lexicon.option_fillers
        self._affirmations = kb.lexicon.affirmations
        self._cancel = kb.lexicon.cancel_words
        self._salam = "assalamualaikum"

    def step(self, state: ConversationState, incoming: Incoming, now: datetime | None = None) -> Turn:
        """One patient message. `now` defaults to the current time in Jakarta."""
        now = (now or datetime.now(dates.JAKARTA)).astimezone(dates.JAKARTA)
        text = (incoming.text or "").strip()
        parts = self.matcher.danger_parts_in(text) if text else ()
        turn = self._step(replace(state, started=True), incoming, now, first=not state.started, parts=parts)
        turn = replace(turn, state=replace(turn.state, danger_parts=() if _urgent(turn.actions) else parts))
        if state.started or not turn.replies:
            return turn
        # A new patient learns first that this is an automated assistant, unless the message
        # is urgent: then the urgent advice comes first and the introduction after it.
        intro = Reply(self.text("first_contact"))
        replies = (*turn.replies, intro) if _urgent(turn.actions) else (intro, *turn.replies)
        return replace(turn, replies=replies)

    def _step(self, state: ConversationState, incoming: Incoming, now: datetime, first: bool, parts: tuple) -> Turn:
        text = (incoming.text or "").strip()
        tokens = self.matcher.normalize.tokens(text)
        if state.booking and self.booking.expired(state.booking, now):
            state = replace(state, booking=None)  # abandoned: forget it, answer afresh
        if state.erase_asked_at and now - datetime.fromisoformat(state.erase_asked_at) > ERASE_CONFIRM_WINDOW:
            state = replace(state, erase_asked_at=None)  # too late to count as the answer
        sign = self.matcher.completed_sign(parts, state.danger_parts)
        if sign is not None:
            # "betis sakit bgt" and then "minggu lalu abis operasi": urgent, whatever else is going on.
            match = Match(Decision.ANSWER, self.matcher.sign_intent(sign), 1.0, reason=f"danger_sign:{sign}")
            if state.paused:
                return self._while_paused(state, text, now, match)
            return self._answer(replace(state, booking=None, options=()), match, incoming, now)
        if not self.urgent(text):
            if state.erase_asked_at:
                turn = self._confirm_erase(state, text, tokens)
                if turn is not None:
                    return turn
                state = replace(state, erase_asked_at=None)
            privacy = self._privacy_command(text, tokens)
            if privacy is not None:
                return self._privacy(state, privacy, now, tokens)
        if state.paused:
            return self._while_paused(state, text, now)
        if state.booking and (tokens or self.booking.says_yes(text)) and not self.urgent(text):
            return self._continue_booking(state, incoming, now)

        if state.options:
            choice = self._option_choice(tokens)
            if choice is not None and 1 <= choice <= len(state.options):
                match = Match(Decision.ANSWER, state.options[choice - 1], 1.0, reason="option")
                return self._answer(state, match, incoming, now)
            said = re.findall(r"[a-z]+", text.lower())
            if choice is not None or (said and set(said) <= self._affirmations):
                # A number outside the list, or "iya" to a numbered question: ask for the number.
                reply = Reply(self.text("invalid_option").replace("{n}", str(len(state.options))))
                return Turn((reply,), (), state, None)
        elif 1 <= (self._option_choice(tokens) or 0) <= len(self.kb.menu_items):
            # A small number when no list is showing: show the menu it was probably meant for.
            return self._answer(state, Match(Decision.ANSWER, "menu", 1.0, reason="number_without_menu"), incoming, now)

        if not tokens:
            if incoming.media_types or incoming.has_location:
                key = "media"
            else:
                key = "emoji_only" if text else "empty"
            return Turn((Reply(self.text(key)),), (), state, Match(Decision.FALLBACK, FALLBACK_INTENT, 0.0, reason=key))

        context = state.options or (*self._follow_ups(state.last_intent), *([state.last_intent] if state.last_intent else []))
        match = self.matcher.match(text, context=context)
        if match.decision is Decision.ANSWER:
            return self._answer(state, match, incoming, now, salam=self._salam in tokens, first=first)
        if match.decision is Decision.CLARIFY:
            options = self.matcher.clarify_options(match)
            titles = [self.kb.intents[i].title for i in options]
            reply = Reply(f"{self.text('clarify')}\n{numbered(titles)}\n{self.text('options_hint')}")
            return Turn((reply,), (), replace(state, options=options), match)
        return self._fallback(state, match, now)

    # -- answers ----------------------------------------------------------------------------

    def _answer(self, state, match: Match, incoming: Incoming, now: datetime, salam: bool = False, first: bool = False) -> Turn:
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
        body, _ = render(intent.answer, self.kb)
        if salam:
            body = f"{self.text('salam_reply')}\n{body}"
        elif match.greeted and intent.id != "greeting" and not first:
            body = f"{self.text('greeting_prefix')} {body}"
        actions = (_ACTIONS[intent.action],) if intent.action else ()
        if _handoff(actions):
            return self._hand_over(state, (body,), actions, match, now, intent.id)
        if options:
            titles = [self.kb.intents[i].title for i in options]
            body = f"{body}\n\n{prompt}\n{numbered(titles)}"
        new_state = replace(state, options=tuple(options), last_intent=intent.id, misses=0, booking=None)
        return Turn((Reply(body),), actions, new_state, match)

    def _fallback(self, state, match: Match, now: datetime) -> Turn:
        named = match.reason.removeprefix("out_of_scope:")
        if match.reason.startswith("out_of_scope:") and named in self.kb.intents:
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
        """Staff take over: the bot pauses for this patient until they close the case."""
        texts = [*texts, *(() if _urgent(actions) else self._out_of_hours(now))]
        paused = ConversationState(started=True, last_intent=intent_id, paused=True, pause_noticed=True)
        return Turn(tuple(Reply(t) for t in texts), actions, paused, match)

    def _while_paused(self, state, text: str, now: datetime, urgent: Match | None = None) -> Turn:
        """Staff have the chat: only danger signs are answered, and once, that staff will reply."""
        if urgent is not None or (text and self.urgent(text)):
            match = urgent or self.matcher.match(text)
            intent = self.kb.intents[match.intent]
            body, _ = render(intent.answer, self.kb)
            return Turn((Reply(body),), (_ACTIONS[intent.action],), state, match)
        paused_match = Match(Decision.FALLBACK, FALLBACK_INTENT, 0.0, reason="paused")
        if state.pause_noticed:
            return Turn((), (), state, paused_match)
        texts = [self.text("paused_notice"), *self._out_of_hours(now)]
        return Turn((Reply("\n".join(texts)),), (), replace(state, pause_noticed=True), paused_match)

    def _out_of_hours(self, now: datetime) -> tuple[str, ...]:
        """When the clinic is closed, when staff will be back; nothing while it is open."""
        hours = self.kb.clinic.opening_hours
        opening = dates.next_opening(now, hours) if hours and not dates.is_open(now, hours) else None
        return (self.text("out_of_hours").replace("{next_opening}", dates.describe(opening)),) if opening else ()

    # -- the patient's own data -------------------------------------------------------------

    def _privacy_command(self, text: str, tokens: list[str]) -> Match | None:
        """"hapus data saya" / "data saya": answered even mid-booking or while staff have the chat."""
        if not _PRIVACY_WORDS & set(tokens):
            return None
        match = self.matcher.match(text)
        intent = self.kb.intents.get(match.intent)
        if match.decision is Decision.ANSWER and intent is not None and intent.action in _PRIVACY_ACTIONS:
            return match
        return None

    def _privacy(self, state, match: Match, now: datetime, tokens: list[str] = ()) -> Turn:
        intent = self.kb.intents[match.intent]
        body, _ = render(intent.answer, self.kb)
        if intent.action == "erase_request" and _BOOKING_WORDS & set(tokens):
            # "hapus janji saya" is about an appointment, which staff handle: not the data.
            return self._fallback(state, replace(match, decision=Decision.FALLBACK, intent=FALLBACK_INTENT, reason="booking_not_data"), now)
        if intent.action == "erase_request":
            asked = replace(state, erase_asked_at=now.isoformat(), options=())
            return Turn((Reply(body),), (), asked, match)
        summary = f"{body}\n{self.text('data_summary')}"
        replies = (Reply(summary), *self._booking_resume(state))
        return Turn(replies, (ReportData(),), replace(state, options=()), match)

    def _booking_resume(self, state) -> tuple[Reply, ...]:
        """After a detour in the middle of a booking, the pending question again."""
        if state.booking is None or state.paused:
            return ()
        return (Reply(f"{self.text('booking_resume')}\n{self.booking.question(state.booking)}"),)

    def _confirm_erase(self, state, text: str, tokens: list[str]) -> Turn | None:
        """The answer to the erase confirmation. Any no keeps the data; a plain yes erases; a
        real question lapses the request and is answered; anything else is asked again, saying
        that nothing was deleted yet."""
        said = set(re.findall(r"[a-z]+", text.lower()))
        if said & _NO_WORDS or set(tokens) & self._cancel:
            match = Match(Decision.ANSWER, "privacy_erase", 1.0, reason="erase_cancelled")
            kept = replace(state, erase_asked_at=None)
            return Turn((Reply(self.text("erase_cancelled")), *self._booking_resume(kept)), (), kept, match)
        yes = self._affirmations | _ERASE_YES
        if said & yes and said <= yes | _ERASE_FILLERS:
            match = Match(Decision.ANSWER, "privacy_erase", 1.0, reason="erase_confirmed")
            return Turn((Reply(self.text("erase_done")),), (EraseData(),), ConversationState(), match)
        match = self.matcher.match(text)
        intent = self.kb.intents.get(match.intent)
        if match.decision is Decision.ANSWER and intent is not None and intent.action not in _PRIVACY_ACTIONS:
            return None
        unclear = Match(Decision.CLARIFY, "privacy_erase", 1.0, reason="erase_unclear")
        return Turn((Reply(self.text("erase_unclear")),), (), state, unclear)

    # -- booking ----------------------------------------------------------------------------

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
            actions = (Handoff(HandoffReason.BOOKING, booking=step.booking),)
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

    def urgent(self, text: str) -> bool:
        """Whether a message shows a danger sign (answered even when nothing else would be)."""
        return bool(self.matcher.danger_signs_in(text))

    def text(self, key: str) -> str:
        """A fixed text of knowledge/dialogue.yaml, with the clinic's name filled in."""
        return self.kb.texts[key].replace("{clinic_name}", self.kb.clinic.name)


def _handoff(actions) -> bool:
    return any(isinstance(a, Handoff) for a in actions)


def _urgent(actions) -> bool:
    return any(isinstance(a, Handoff) and a.reason is HandoffReason.URGENT for a in actions)
