"""The clinic's appointment schedule (knowledge/clinic.yaml `schedule`): when an appointment may
start, which places are left, and the nearest free slots to what a patient asked for.

Time is cut into cells of `slot_minutes` (Asia/Jakarta); an appointment of a treatment covers
the cells from its start until it ends, and each cell has `places` places (therapists or
rooms). Which cells have no place left is storage's to know: the edge passes them in as
`full`. Pure: `now` is always passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from .dates import JAKARTA, SlotCheck
from .messages import BookingDetails
from .normalize import typed_words

WEEKDAY_KEYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# How far ahead free slots are looked for.
SEARCH_DAYS = 28
# Why a wanted start cannot be booked (the booking texts name each).
CLOSED_DAY, BEFORE_OPENING, AFTER_CLOSING, BREAK, FULL = (
    "closed_day",
    "before_opening",
    "after_closing",
    "break",
    "full",
)
NO_FULL: frozenset[datetime] = frozenset()


@dataclass(frozen=True)
class CalendarView:
    """What the edge knows of the calendar for one message: the slots with no place left, and
    the patient's next appointment (held or confirmed), if any."""

    full: frozenset[datetime] = NO_FULL
    upcoming: BookingDetails | None = None


NO_CALENDAR = CalendarView()


@dataclass(frozen=True)
class Treatment:
    """A kind of appointment and how long it takes; `words` recognise it in a message."""

    id: str
    name: str
    minutes: int
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Schedule:
    """Opening hours with their breaks, the days closed (holidays and the clinic's own), the
    cell length, places per cell, the treatments (the first is the default) and whether a
    chosen slot is confirmed at once."""

    hours: dict[str, tuple[time, time] | None]
    breaks: dict[str, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    closed: dict[date, str] = field(default_factory=dict)
    slot_minutes: int = 30
    places: int = 1
    treatments: tuple[Treatment, ...] = (Treatment("consultation", "Konsultasi", 30),)
    auto_confirm: bool = False

    # -- what a message asks for ---------------------------------------------------------------

    def named_treatment(self, text: str) -> Treatment | None:
        """The treatment a message names ("mau akupunktur"), if any."""
        said = f" {' '.join(typed_words(text))} "
        return next((t for t in self.treatments if any(f" {word} " in said for word in t.words)), None)

    def treatment(self, treatment_id: str | None) -> Treatment:
        return next((t for t in self.treatments if t.id == treatment_id), self.treatments[0])

    # -- one start ---------------------------------------------------------------------------

    def cells(self, start: datetime, minutes: int) -> tuple[datetime, ...]:
        """The cells an appointment from `start` covers (Asia/Jakarta)."""
        local = start.astimezone(JAKARTA)
        step = timedelta(minutes=self.slot_minutes)
        midnight = datetime.combine(local.date(), time(0), JAKARTA)
        first = midnight + step * ((local - midnight) // step)
        end = local + timedelta(minutes=minutes)
        found = []
        while first < end:
            found.append(first)
            first += step
        return tuple(found)

    def why_not(self, start: datetime, minutes: int, full: frozenset[datetime] = NO_FULL) -> str | None:
        """Why an appointment cannot start then (a reason above), or None when it can."""
        local = start.astimezone(JAKARTA)
        opening = self.opening(local.date())
        if opening is None:
            return CLOSED_DAY
        end = local + timedelta(minutes=minutes)
        opens, closes = (datetime.combine(local.date(), t, JAKARTA) for t in opening)
        if local < opens:
            return BEFORE_OPENING
        if end > closes:
            return AFTER_CLOSING
        for first, last in self.breaks_on(local.date()):
            if local < datetime.combine(local.date(), last, JAKARTA) and end > datetime.combine(
                local.date(), first, JAKARTA
            ):
                return BREAK
        if any(cell in full for cell in self.cells(local, minutes)):
            return FULL
        return None

    def check(self, start: datetime, minutes: int, now: datetime, full: frozenset[datetime] = NO_FULL) -> SlotCheck:
        """Can an appointment start then? If not, why, and up to three nearest free starts."""
        if not any(self.hours.values()):
            return SlotCheck(True, "unknown_hours")
        reason = self.why_not(start, minutes, full)
        if reason is None:
            return SlotCheck(True)
        return SlotCheck(False, reason, tuple(self.nearest_free(start, minutes, now, full)))

    # -- days ----------------------------------------------------------------------------------

    def opening(self, day: date) -> tuple[time, time] | None:
        """The day's opening hours, or None when the clinic is closed (a weekday off, a
        holiday, a date the clinic closes)."""
        if day in self.closed:
            return None
        return self.hours.get(WEEKDAY_KEYS[day.weekday()])

    def breaks_on(self, day: date) -> tuple[tuple[time, time], ...]:
        return self.breaks.get(WEEKDAY_KEYS[day.weekday()], ())

    def starts_on(self, day: date, minutes: int, full: frozenset[datetime] = NO_FULL) -> list[datetime]:
        """Every free start of an appointment of `minutes` on `day`, on the cell grid."""
        opening = self.opening(day)
        if opening is None:
            return []
        step = timedelta(minutes=self.slot_minutes)
        moment = datetime.combine(day, opening[0], JAKARTA)
        closes = datetime.combine(day, opening[1], JAKARTA)
        found = []
        while moment + timedelta(minutes=minutes) <= closes:
            if self.why_not(moment, minutes, full) is None:
                found.append(moment)
            moment += step
        return found

    def nearest_free(
        self, wanted: datetime, minutes: int, now: datetime, full: frozenset[datetime] = NO_FULL, count: int = 3
    ) -> list[datetime]:
        """Up to `count` free starts, one a day from the wanted day on: on each day the start
        nearest the wanted time of day; never the wanted start itself, never in the past."""
        local = wanted.astimezone(JAKARTA)
        earliest = now.astimezone(JAKARTA)
        wanted_minutes = local.hour * 60 + local.minute
        found: list[datetime] = []
        day = max(local.date(), earliest.date())
        for _ in range(SEARCH_DAYS):
            starts = [s for s in self.starts_on(day, minutes, full) if s >= earliest and s != local]
            if starts:
                found.append(min(starts, key=lambda s: (abs(s.hour * 60 + s.minute - wanted_minutes), s)))
            if len(found) >= count:
                break
            day += timedelta(days=1)
        return found

    def free_in(
        self, day: date, first: time, last: time, minutes: int, now: datetime, full: frozenset[datetime] = NO_FULL
    ) -> list[datetime]:
        """Free starts on `day` from `first` to `last` (a time of day: "besok sore")."""
        earliest = now.astimezone(JAKARTA)
        return [s for s in self.starts_on(day, minutes, full) if first <= s.time() <= last and s >= earliest]
