"""The booking conversation: name, complaint, day and time, summary, confirmation.

A table of steps, each a function of (draft, message) returning what to say and the next
step, in the manner of python-telegram-bot's ConversationHandler, with fallbacks that work at
every step: "batal" cancels, "ubah" corrects a field, and an FAQ question is answered before
the pending question is asked again. Pure: the time is passed in.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from itertools import pairwise

from . import dates, schedule
from .knowledge import KnowledgeBase
from .messages import BookingDetails, BookingDraft, Decision, Option
from .normalize import typed_words
from .render import fill, format_hours, numbered
from .schedule import NO_FULL

NAME_CONFIRM, NAME, COMPLAINT, WHEN, PICK_SLOT, CHANGE, CONFIRM = (
    "name_confirm", "name", "complaint", "when", "pick_slot", "change", "confirm",
)  # fmt: skip
# Intents that never interrupt a booking as an "FAQ" (they are part of it or say nothing).
_NOT_FAQ = {"booking", "greeting", "thanks", "goodbye", "menu", "fallback"}
_FIELDS = {1: NAME, 2: COMPLAINT, 3: WHEN}
_MAX_NAME, _MAX_COMPLAINT = 80, 300
# A field and its new value in one message: "ubah nama jadi Kevin", "nama: Kevin", "namanya
# Kevin", "ganti keluhan jadi kram".
_INLINE_FIELD = re.compile(
    r"^(?:(?:tolong|eh|kak)\s+)*(?:(?:ubah|ganti|koreksi|ralat|perbaiki|benerin)\s+)?"
    r"(?P<field>nama|keluhan)(?:nya|\s+pasien|\s+saya|\s+sy)?\s*"
    r"(?:(?:jadi|jd|menjadi|adalah|ke)\s+|[:=]\s*|(?:(?<=namanya)|(?<=nama saya)|(?<=nama sy))\s+)(?P<value>\S.*)$",
    re.I,
)
# A numbered choice has at most this many digits: a longer number is not a pick, and int()
# refuses strings of more than 4,300 digits.
MAX_CHOICE_DIGITS = 6
# Control characters that XML 1.0, and so a TwiML reply, cannot carry: the complaint is echoed
# back in the summary, where one of them would make the whole reply unreadable for Twilio.
# The choice id of an offered slot: this prefix and the slot's ISO time, so that a tap maps back
# to exactly that slot, and a slot no longer offered is recognised.
SLOT_CHOICE = "slot:"
# The steps answered with a word, and their choices: (choice id, the dialogue text of its title);
# a tap counts as typing the title.
_WORD_CHOICES = {
    NAME_CONFIRM: (("name:yes", "choice_yes"), ("name:other", "choice_other_name")),
    CONFIRM: (("confirm:yes", "choice_yes"), ("confirm:change", "choice_change"), ("confirm:cancel", "choice_cancel")),
    CHANGE: (
        ("change:name", "choice_field_name"),
        ("change:complaint", "choice_field_complaint"),
        ("change:when", "choice_field_when"),
    ),
}
# The prefixes of every choice id the booking gives (a tap on one not offered now is stale).
CHOICE_PREFIXES = (
    SLOT_CHOICE,
    *sorted({choice.split(":")[0] + ":" for row in _WORD_CHOICES.values() for choice, _ in row}),
)
_UNSENDABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Step:
    """The outcome of one booking message."""

    texts: tuple[str, ...]
    draft: BookingDraft | None  # None: the booking is over (sent or cancelled)
    booking: BookingDetails | None = None  # set when the patient confirmed
    faq_intent: str | None = None  # an FAQ answered on the way


# What a time the patient wrote can have wrong that is asked about again, not guessed around.
_ASKED_AGAIN = (dates.INVALID_DATE, dates.INVALID_TIME, dates.WHICH_DAY, dates.EITHER_DAY)
# Why a wanted time cannot be booked -> the text that says so (with the nearest free slots).
_UNAVAILABLE_TEXT = {
    schedule.CLOSED_DAY: "booking_closed",
    schedule.BEFORE_OPENING: "booking_outside_hours",
    schedule.AFTER_CLOSING: "booking_outside_hours",
    schedule.BREAK: "booking_break",
    schedule.FULL: "booking_full",
}


class BookingFlow:
    def __init__(self, kb: KnowledgeBase, matcher, expiry: timedelta):
        self.kb = kb
        self.schedule = kb.clinic.schedule
        # The slots with no place left (storage knows them; set per message by `step`).
        self.full: frozenset[datetime] = NO_FULL
        self.matcher = matcher
        self.expiry = expiry
        self.normalize = matcher.normalize
        lexicon = kb.lexicon
        self._lexicon = lexicon
        self._field_words = lexicon.booking_field_words
        self._yes = lexicon.affirmations
        self._cancel = lexicon.cancel_words
        self._change = lexicon.change_words
        self._numbers = lexicon.numbers
        self._fillers = lexicon.option_fillers

    # -- starting and expiry ------------------------------------------------------------------

    def start(self, text: str, profile_name: str | None, now: datetime) -> Step:
        """The first question, with whatever the opening message already said about the time."""
        when = dates.parse_when(text, now)
        named = self.schedule.named_treatment(text)
        draft = BookingDraft(step=NAME, updated_at=now.isoformat(), treatment=named.id if named else None)
        if when.day and dates.PAST not in when.problems and dates.INVALID_DATE not in when.problems:
            draft = replace(draft, day=when.day.isoformat())
        if when.at:
            draft = replace(draft, at=when.at.isoformat(timespec="minutes"), period=when.period)
        # "besok jam 25": said at once, and the time asked again when its turn comes.
        aside = (self._text("booking_invalid_time_later"),) if dates.INVALID_TIME in when.problems else ()
        name = _clean_name(profile_name or "", typed=False)
        if name:
            asked = self._text("booking_ask_name_confirm", name=name)
            return Step((*aside, asked), replace(draft, step=NAME_CONFIRM, name=name))
        return Step((*aside, self._text("booking_ask_name")), draft)

    def move(self, upcoming: BookingDetails, now: datetime) -> Step:
        """ "ganti jadwal": a new time for an appointment already made, asked for with the old
        one named; name, complaint and treatment kept."""
        draft = BookingDraft(
            step=WHEN,
            updated_at=now.isoformat(),
            name=upcoming.name,
            complaint=upcoming.complaint,
            treatment=upcoming.treatment or None,
            moving=True,
        )
        asked = self._text("appointment_move", when=dates.describe(upcoming.start))
        return Step((asked, self._question(draft)), draft)

    def expired(self, draft: BookingDraft, now: datetime) -> bool:
        return now - datetime.fromisoformat(draft.updated_at) > self.expiry

    # -- one message ------------------------------------------------------------------------

    def says_yes(self, text: str) -> bool:
        """ "ya", "iya betul", "ya kirim": read from the raw words (the normalizer drops "ya")."""
        said = typed_words(text)
        return bool(said) and set(said) <= self._yes

    def step(self, draft: BookingDraft, text: str, now: datetime, full: frozenset[datetime] = NO_FULL) -> Step:
        """One message of the booking; `full`: the slots with no place left."""
        return (self.seeing(full) if full else self)._step(draft, text, now)

    def seeing(self, full: frozenset[datetime]) -> BookingFlow:
        """This flow for one message, seeing the slots with no place left."""
        flow = copy.copy(self)
        flow.full = full
        return flow

    def _step(self, draft: BookingDraft, text: str, now: datetime) -> Step:
        tokens = self.normalize.tokens(text)
        words = set(tokens)
        short = len(tokens) <= 4
        if short and (words & self._cancel or _says_not_going(tokens)):
            return Step((self._text("appointment_kept" if draft.moving else "booking_cancelled"),), None)
        if draft.step in (CONFIRM, CHANGE):
            inline = self._inline_correction(draft, text, now)
            if inline is not None:
                return inline
        if draft.step in (CONFIRM, CHANGE) and self._says_only_when(text, tokens):
            corrected = self._corrected_when(draft, text, now)
            if corrected is not None:
                return corrected
        if draft.step in (NAME_CONFIRM, NAME, COMPLAINT) and self._says_only_when(text, tokens):
            aside = self._when_aside(draft, text, now)
            if aside is not None:
                return aside
        if short and words & self._change and draft.step not in (NAME, COMPLAINT):
            if words & self._field_words.keys():  # "ubah jam": straight to that field
                return self._on_change(draft, text, tokens, now)
            return self._ask_change(draft, now)
        handler = {
            NAME_CONFIRM: self._on_name_confirm,
            NAME: self._on_name,
            COMPLAINT: self._on_complaint,
            WHEN: self._on_when,
            PICK_SLOT: self._on_pick_slot,
            CHANGE: self._on_change,
            CONFIRM: self._on_confirm,
        }[draft.step]
        return handler(draft, text, tokens, now)

    def _on_name_confirm(self, draft, text, tokens, now) -> Step:
        if self.says_yes(text):
            return self._advance(replace(draft, updated_at=now.isoformat()), now)
        said = set(typed_words(text))
        if said and said <= self._lexicon.booking_not_this_name:
            # "bukan" / "salah": another name, which we ask for.
            asked = replace(draft, step=NAME, name=None, updated_at=now.isoformat())
            return Step((self._text("booking_ask_name"),), asked)
        return self._on_name(draft, text, tokens, now)

    def _on_name(self, draft, text, tokens, now) -> Step:
        faq = self._faq(text, tokens, strict=False)
        if faq:
            return faq
        name = _clean_name(text)
        if not name or name.lower() in self._yes:
            return Step((self._text("booking_ask_name"),), draft)
        return self._advance(replace(draft, name=name, updated_at=now.isoformat()), now)

    def _on_complaint(self, draft, text, tokens, now) -> Step:
        faq = self._faq(text, tokens, strict=True)
        if faq:
            return faq
        complaint = " ".join(_UNSENDABLE.sub(" ", text).split())[:_MAX_COMPLAINT]
        if not tokens:
            return Step((self._text("booking_ask_complaint"),), draft)
        named = self.schedule.named_treatment(text)
        treatment = draft.treatment or (named.id if named else None)
        return self._advance(replace(draft, complaint=complaint, treatment=treatment, updated_at=now.isoformat()), now)

    def _on_when(self, draft, text, tokens, now) -> Step:
        when = dates.parse_when(text, now)
        if when.day is None and when.at is None and not {dates.WHICH_DAY, dates.EITHER_DAY} & set(when.problems):
            faq = self._faq(text, tokens, strict=False)
            if faq:
                return faq
        # A reply may give only the missing half ("jam 3" after "besok"): keep the other half.
        draft = replace(
            draft,
            day=when.day.isoformat() if when.day else draft.day,
            at=when.at.isoformat(timespec="minutes") if when.at else draft.at,
            updated_at=now.isoformat(),
        )
        problems = [p for p in when.problems if p in _ASKED_AGAIN]
        offer = self._period_offer(draft, when.period, now) if when.period and not problems else None
        return offer or self._check_when(draft, problems, now)

    def _period_offer(self, draft: BookingDraft, period: str, now: datetime) -> Step | None:
        """ "besok sore": the free slots of that time of day, up to three spread over it; None
        when there are fewer than two (the default hour is then checked as any other)."""
        if not draft.day or date.fromisoformat(draft.day) < now.astimezone(dates.JAKARTA).date():
            return None
        minutes = self.schedule.treatment(draft.treatment).minutes
        day = date.fromisoformat(draft.day)
        starts = self.schedule.free_in(day, *dates.PERIOD_SPAN[period], minutes, now, self.full)
        if len(starts) < 2:
            return None
        picked = sorted({starts[round(i * (len(starts) - 1) / 2)] for i in range(3)})
        options = numbered([dates.describe(s) for s in picked])
        when = f"{dates.describe_day(picked[0])} {period}"
        slots = tuple(s.isoformat() for s in picked)
        text = self._text("booking_offer", when=when, options=options)
        return Step((text,), replace(draft, step=PICK_SLOT, slots=slots, day=None, at=None, period=None))

    def _inline_correction(self, draft: BookingDraft, text: str, now: datetime) -> Step | None:
        """ "ubah nama jadi Kevin Pratama", "nama: Kevin Pratama", "ganti keluhan jadi kram":
        the new value said with the field, applied at once, and the summary again."""
        found = _INLINE_FIELD.match(text.strip())
        if not found or text.rstrip().endswith("?") or not (draft.day and draft.at):
            return None
        value = found.group("value").strip()
        if found.group("field").lower().startswith("nama"):
            name = _clean_name(value)
            if not name:
                return None
            draft = replace(draft, name=name)
        else:
            complaint = " ".join(_UNSENDABLE.sub(" ", value).split())[:_MAX_COMPLAINT]
            if not complaint:
                return None
            draft = replace(draft, complaint=complaint)
        return self._to_confirm(draft, now)

    def _says_only_when(self, text: str, tokens: list[str]) -> bool:
        """Whether a message at the summary is a new day or time and nothing else: "lusa jam 2",
        "sabtu aja", "ganti jadi jam 4", "sabtu jam 1 bisa?" are; "besok sy kabari lg" (other
        words), "ok besok ya" (agrees: the summary is asked again) and "kalau minggu buka?"
        (a question about something else) are not."""
        words = set(tokens)
        changes = bool(words & self._change)
        if text.rstrip().endswith("?") and not changes and not words & self._lexicon.booking_asks_for_slot:
            return False
        said = set(typed_words(text))
        if said & self._yes and not changes:
            return False
        other = words - dates.WHEN_WORDS - self._lexicon.booking_asks_for_slot - self._fillers - self._change
        other -= self._lexicon.booking_neutral
        return not {w for w in other if not w.isdigit()}

    def _corrected_when(self, draft: BookingDraft, text: str, now: datetime) -> Step | None:
        """A new day or time given at the summary ("ganti jadi lusa jam 2", "jam 4 aja"): the
        correction, checked like any answer to "kapan?", and the summary again. None when the
        message names no day or time, or the ones already in the booking."""
        when = dates.parse_when(text, now)
        if when.day is None and when.at is None:
            if dates.INVALID_DATE in when.problems and draft.day and draft.at:  # "tgl 31 nov"
                return self._kept(draft, self._text("booking_invalid_date"), now)
            if dates.INVALID_TIME in when.problems and draft.day and draft.at:  # "jamnya jam 25 aja"
                return self._kept(draft, self._text("booking_invalid_time"), now)
            return None
        day = when.day.isoformat() if when.day else draft.day
        at = when.at.isoformat(timespec="minutes") if when.at else draft.at
        if (day, at) == (draft.day, draft.at):
            return None
        problems = [p for p in when.problems if p in _ASKED_AGAIN]
        corrected = replace(draft, day=day, at=at, editing=False, updated_at=now.isoformat())
        step = self._check_when(corrected, problems, now)
        if step.draft is not None and step.draft.step == WHEN and draft.day and draft.at:
            return self._kept(draft, step.texts[0], now)  # a past or impossible time
        return step

    def _when_aside(self, draft: BookingDraft, text: str, now: datetime) -> Step | None:
        """A day or time said while the name or complaint is asked ("eh hari jumat aja", "jamnya
        jam 4 aja"): noted, keeping the half not said, and the pending question asked again."""
        when = dates.parse_when(text, now)
        if when.day is None and when.at is None or {dates.PAST, dates.INVALID_DATE} & set(when.problems):
            return None
        noted = replace(
            draft,
            day=when.day.isoformat() if when.day else draft.day,
            at=when.at.isoformat(timespec="minutes") if when.at else draft.at,
            period=when.period if when.at else draft.period,
            updated_at=now.isoformat(),
        )
        if noted.day and noted.at:
            said = dates.describe(
                datetime.combine(date.fromisoformat(noted.day), time.fromisoformat(noted.at), dates.JAKARTA)
            )
        elif noted.day:
            said = dates.describe_day(datetime.combine(date.fromisoformat(noted.day), time(12), dates.JAKARTA))
        else:
            said = f"pukul {noted.at.replace(':', '.')}"
        return Step((self._text("booking_when_noted", when=said), self._question(noted)), noted)

    def _kept(self, draft: BookingDraft, problem: str, now: datetime) -> Step:
        """Why a correction cannot be taken, and the booking as it was, to confirm."""
        shown = self._to_confirm(draft, now)
        return Step((problem, *shown.texts), shown.draft)

    def _on_pick_slot(self, draft, text, tokens, now) -> Step:
        choice = self._choice(tokens)
        if choice is not None and 1 <= choice <= len(draft.slots):
            slot = datetime.fromisoformat(draft.slots[choice - 1])
            picked = replace(draft, day=slot.date().isoformat(), at=slot.time().isoformat(timespec="minutes"), slots=())
            return self._check_when(replace(picked, updated_at=now.isoformat()), (), now)
        return self._on_when(replace(draft, slots=()), text, tokens, now)

    def _on_change(self, draft, text, tokens, now) -> Step:
        choice = self._choice(tokens)
        field = (
            _FIELDS.get(choice)
            if choice
            else next((self._field_words[t] for t in tokens if t in self._field_words), None)
        )
        if field is None:
            return Step((self._text("booking_ask_change"),), draft)
        draft = replace(draft, step=field, editing=True, updated_at=now.isoformat())
        if field == WHEN:
            draft = replace(draft, day=None, at=None)
        return Step((self._question(draft),), draft)

    def _on_confirm(self, draft, text, tokens, now) -> Step:
        if self.says_yes(text):
            start = datetime.combine(date.fromisoformat(draft.day), time.fromisoformat(draft.at), dates.JAKARTA)
            if start < now:
                past = replace(draft, step=WHEN, day=None, at=None, updated_at=now.isoformat())
                return Step((self._text("booking_past"), self._question(past)), past)
            treatment = self.schedule.treatment(draft.treatment)
            if self.schedule.check(start, treatment.minutes, now, self.full).reason == schedule.FULL:
                return self._check_when(draft, (), now)  # taken since it was offered: other slots
            confirmed = self.schedule.auto_confirm
            details = BookingDetails(
                draft.name or "", draft.complaint or "", start, treatment.id, treatment.minutes, confirmed
            )
            sent = self._text("booking_booked" if confirmed else "booking_sent", when=dates.describe(start))
            return Step((sent,), None, booking=details)
        faq = self._faq(text, tokens, strict=False)
        if faq:
            return faq
        return Step((self._summary(draft),), draft)

    # -- helpers ----------------------------------------------------------------------------

    def _advance(self, draft: BookingDraft, now: datetime) -> Step:
        """Ask the next missing field, or show the summary."""
        if draft.editing and draft.name and draft.complaint and draft.day and draft.at:
            return self._to_confirm(draft, now)
        for field, value in ((NAME, draft.name), (COMPLAINT, draft.complaint)):
            if not value:
                nxt = replace(draft, step=field)
                return Step((self._question(nxt),), nxt)
        if draft.day and draft.at:
            # "besok sore" in the first message: that afternoon's free slots, as when it is the answer.
            offer = self._period_offer(draft, draft.period, now) if draft.period else None
            return offer or self._check_when(replace(draft, period=None), (), now)
        nxt = replace(draft, step=WHEN)
        return Step((self._question(nxt),), nxt)

    def _check_when(self, draft: BookingDraft, problems, now: datetime) -> Step:
        draft = replace(draft, step=WHEN)
        if dates.INVALID_DATE in problems:
            return Step((self._text("booking_invalid_date"),), replace(draft, day=None))
        if dates.INVALID_TIME in problems:
            return Step((self._text("booking_invalid_time"),), replace(draft, at=None))
        if dates.WHICH_DAY in problems:
            return Step((self._text("booking_which_day"),), draft)
        if dates.EITHER_DAY in problems:
            return Step((self._text("booking_either_day"),), draft)
        if not draft.day and not draft.at:
            return Step((self._question(draft),), draft)
        if not draft.day:
            return Step((self._text("booking_no_date"),), draft)
        if date.fromisoformat(draft.day) < now.astimezone(dates.JAKARTA).date():
            return Step((self._text("booking_past"), self._question(draft)), replace(draft, day=None, at=None))
        if not draft.at:
            return Step((self._text("booking_no_time"),), draft)
        start = datetime.combine(date.fromisoformat(draft.day), time.fromisoformat(draft.at), dates.JAKARTA)
        if start < now:
            return Step((self._text("booking_past"), self._question(draft)), replace(draft, day=None, at=None))
        check = self.schedule.check(start, self.schedule.treatment(draft.treatment).minutes, now, self.full)
        if not check.ok:
            options = numbered([dates.describe(s) for s in check.suggestions])
            text = self._text(_UNAVAILABLE_TEXT[check.reason], when=dates.describe(start), options=options)
            slots = tuple(s.isoformat() for s in check.suggestions)
            return Step((text,), replace(draft, step=PICK_SLOT, slots=slots, day=None, at=None, period=None))
        return self._to_confirm(draft, now)

    def _to_confirm(self, draft: BookingDraft, now: datetime) -> Step:
        """The summary, once every field is there; otherwise the first missing question."""
        for field, value in ((NAME, draft.name), (COMPLAINT, draft.complaint)):
            if not value:
                missing = replace(draft, step=field, editing=False, slots=(), updated_at=now.isoformat())
                return Step((self._question(missing),), missing)
        confirmed = replace(draft, step=CONFIRM, editing=False, slots=(), updated_at=now.isoformat())
        return Step((self._summary(confirmed),), confirmed)

    def _ask_change(self, draft: BookingDraft, now: datetime) -> Step:
        asked = replace(draft, step=CHANGE, updated_at=now.isoformat())
        return Step((self._text("booking_ask_change"),), asked)

    def _summary(self, draft: BookingDraft) -> str:
        start = datetime.combine(date.fromisoformat(draft.day), time.fromisoformat(draft.at), dates.JAKARTA)
        return self._text(
            "booking_confirm", name=draft.name or "-", complaint=draft.complaint or "-", when=dates.describe(start)
        )

    def question(self, draft: BookingDraft) -> str:
        """The pending question, asked again after an FAQ answer."""
        if draft.step == CONFIRM:
            return self._summary(draft)
        if draft.step == PICK_SLOT and draft.slots:
            options = numbered([dates.describe(datetime.fromisoformat(s)) for s in draft.slots])
            return f"{options}\n{self.kb.texts['options_hint']}"
        return self._question(draft)

    def offer(self, draft: BookingDraft) -> tuple[Option, ...]:
        """The choices the pending question accepts, as buttons: the offered slots (by number),
        or the words of a yes/no or which-field question; none for a free-text question."""
        if draft.step == PICK_SLOT:
            return tuple(
                Option(f"{SLOT_CHOICE}{slot}", dates.describe_short(datetime.fromisoformat(slot)), str(number))
                for number, slot in enumerate(draft.slots, start=1)
            )
        return tuple(
            Option(choice, self.kb.texts[key], self.kb.texts[key]) for choice, key in _WORD_CHOICES.get(draft.step, ())
        )

    def _question(self, draft: BookingDraft) -> str:
        if draft.step == NAME_CONFIRM:
            return self._text("booking_ask_name_confirm", name=draft.name or "")
        if draft.step == NAME:
            return self._text("booking_ask_name")
        if draft.step == COMPLAINT:
            return self._text("booking_ask_complaint")
        if draft.step == CHANGE:
            return self._text("booking_ask_change")
        hours = format_hours(self.kb.clinic.opening_hours, self.kb.texts["closed_day"]) or ""
        return self._text("booking_ask_when", hours=hours).strip()

    def _faq(self, text: str, tokens: list[str], strict: bool) -> Step | None:
        """An FAQ question asked mid-booking: its intent, for the engine to answer before the
        pending question. `strict` (free-text steps) also requires the form of a question."""
        if not tokens:
            return None
        if strict and not ("?" in text or tokens[0] in self._lexicon.booking_question_words):
            return None
        match = self.matcher.match(text)
        if match.decision is Decision.ANSWER and match.intent not in _NOT_FAQ:
            return Step((), None, faq_intent=match.intent)
        return None

    def _choice(self, tokens: list[str]) -> int | None:
        rest = [t for t in tokens if t not in self._fillers]
        if len(rest) != 1:
            return None
        if rest[0].isdigit():
            return int(rest[0]) if len(rest[0]) <= MAX_CHOICE_DIGITS else None
        return self._numbers.get(rest[0])

    def _text(self, key: str, **values: str) -> str:
        return fill(self.kb.texts[key], {"clinic_name": self.kb.clinic.name, **values}).strip()


def _says_not_going(tokens: list[str]) -> bool:
    """ "tidak jadi" (ga jadi, nggak jadi): not going ahead."""
    return any(a == "tidak" and b == "jadi" for a, b in pairwise(tokens))


def _clean_name(text: str, typed: bool = True) -> str:
    """A person's name: letters, spaces and a few marks, title-cased, bounded. From a typed
    reply, "bukan, nama saya ..." / "nama anak sy ..." / "atas nama ..." / "sy ..." are taken
    off first, and what follows a comma (not from a profile name: "Salah Uddin" is a name)."""
    text = text.strip()
    if typed:
        text = re.sub(r"^(bukan|salah|bkn)\b[\s,.!-]*", "", text, flags=re.I)
        text = re.sub(
            r"^(nama\s*((anak|suami|istri|ibu|bapak|ayah|adik|kakak)\s+)?(saya|pasien|sy|aku|ku|nya)?\s*(adalah)?\s*:?\s*"
            r"|atas nama\s+|an\.?\s+|(saya|sy|aku|gw|gue)\s+)",
            "",
            text,
            flags=re.I,
        )
        text = text.split(",")[0]  # "Kevin, sy ibunya": the name is what comes first
    name = re.sub(r"[^\w\s.'-]", "", text).strip()
    name = " ".join(name.split())[:_MAX_NAME]
    return name.title() if name.islower() or name.isupper() else name
