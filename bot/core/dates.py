"""Indonesian dates and times as patients write them ("besok jam 3 sore", "jumat depan",
"tgl 5", "12 Desember 2026", "setengah 4 sore"), and checking a slot against opening hours.

Pure: `now` is always passed in (Asia/Jakarta local time). No existing library reads informal
Indonesian well, so this is written for this domain: a clinic appointment in the coming weeks.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

JAKARTA = ZoneInfo("Asia/Jakarta")

# The Indonesian words for days, months and times of day live in knowledge/calendar.yaml
# (CalendarWords, read by bot.core.knowledge); the names below stay readable as before
# (dates.WEEKDAYS, ...), taken from that file when first used.
_WORD_TABLES = {
    "WEEKDAYS": "weekdays",
    "MONTHS": "months",
    "DAY_NAMES": "day_names",
    "MONTH_NAMES": "month_names",
    "PERIOD_DEFAULT": "period_default",
    "PERIOD_SPAN": "period_span",
    "WHEN_WORDS": "when_words",
}
_SHIPPED_CALENDAR = Path(__file__).resolve().parents[2] / "knowledge" / "calendar.yaml"


@dataclass(frozen=True)
class CalendarWords:
    """knowledge/calendar.yaml: how patients write days, months and times of day, and how the
    bot writes dates back."""

    weekdays: dict[str, int]
    months: dict[str, int]
    day_names: tuple[str, ...]
    month_names: tuple[str, ...]
    hour_words: dict[str, int]
    regional: dict[str, str]
    # A time of day -> (the hour meant when none is said, the first hour, the last one).
    periods: dict[str, tuple[time, time, time]]
    extra_when_words: frozenset[str]

    @functools.cached_property
    def period_default(self) -> dict[str, time]:
        return {name: span[0] for name, span in self.periods.items()}

    @functools.cached_property
    def period_span(self) -> dict[str, tuple[time, time]]:
        return {name: span[1:] for name, span in self.periods.items()}

    @functools.cached_property
    def when_words(self) -> frozenset[str]:
        """The words of a day or a time ("lusa jam 2 siang", "sabtu depan", "tgl 5 des"): a
        message of these alone at the booking summary changes the booking."""
        return frozenset({*self.weekdays, *self.months, *self.periods, *self.extra_when_words})

    @functools.cached_property
    def regional_word(self) -> re.Pattern:
        return re.compile(r"\b(" + "|".join(map(re.escape, self.regional)) + r")\b")

    @functools.cached_property
    def hour_word(self) -> re.Pattern:
        longest_first = sorted(self.hour_words, key=len, reverse=True)
        return re.compile(r"\b(jam|pukul|pkl|setengah)\s+(" + "|".join(map(re.escape, longest_first)) + r")\b")


@functools.cache
def words() -> CalendarWords:
    """The shipped knowledge/calendar.yaml (read, and checked, once)."""
    from .knowledge import read_calendar_words  # knowledge imports this module

    return read_calendar_words(_SHIPPED_CALENDAR)


def __getattr__(name: str):
    if name in _WORD_TABLES:
        return getattr(words(), _WORD_TABLES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Appointments are booked at most this far ahead; a later date is taken for a typo.
MAX_DAYS_AHEAD = 366
# Problems a parse can report; the dialogue asks about each in Indonesian.
NO_DATE, NO_TIME, PAST, INVALID_DATE, WHICH_DAY = "no_date", "no_time", "past", "invalid_date", "which_day"
# A clock time that does not exist: "jam 25", "jam 10.75".
INVALID_TIME = "invalid_time"
# Two days offered as a choice: "senin atau selasa", "besok ato lusa".
EITHER_DAY = "either_day"


@dataclass(frozen=True)
class When:
    """What a message says about an appointment: a day and/or a time, and what is missing."""

    day: date | None = None
    at: time | None = None
    problems: tuple[str, ...] = ()
    period: str | None = None  # the time is a time of day without an hour ("besok sore")

    @property
    def complete(self) -> bool:
        return self.day is not None and self.at is not None and not self.problems

    def moment(self) -> datetime | None:
        if self.day is None or self.at is None:
            return None
        return datetime.combine(self.day, self.at, JAKARTA)


def _clean(text: str) -> str:
    text = (text or "").lower().replace("'", "").replace("’", "")
    table = words()
    text = table.hour_word.sub(lambda m: f"{m.group(1)} {table.hour_words[m.group(2)]}", text)
    # Dates written with dots ("28.12.2026", "tgl 28.12") before dots become times ("19.30").
    text = re.sub(r"\b(\d{1,2})\.(\d{1,2})\.(\d{2,4})\b", r"\1/\2/\3", text)
    text = re.sub(r"\b(tgl|tanggal)\.?\s*(\d{1,2})\.(\d{1,2})\b", r"\1 \2/\3", text)
    text = re.sub(r"(\d)\s*\.\s*(\d{2})\b", r"\1:\2", text)  # 19.30 -> 19:30 (a time, not a decimal)
    text = re.sub(r"\b(jum)\s*at\b", "jumat", text)
    text = re.sub(r"\b(malem|mlm|malm)\b", "malam", text)  # spoken and typed forms of "malam"
    text = re.sub(r"\b(sre)\b", "sore", text)
    text = table.regional_word.sub(lambda m: table.regional[m.group(1)], text)
    return re.sub(r"\s+", " ", text)


_TIME = re.compile(
    r"(?:\b(?:jam|pukul|pkl|pk|jm)\s*)?\b(?P<half>setengah\s+)?(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?"
    r"(?:\s*(?:an|-an))?\s*(?P<period>pagi|siang|sore|malam|am|pm)?\b"
)
_HAS_CLOCK_WORD = re.compile(r"\b(jam|pukul|pkl|pk|jm|setengah)\b")
_NUMERIC_DATE = re.compile(r"\b(?P<day>\d{1,2})[/-](?P<month>\d{1,2})(?:[/-](?P<year>\d{2,4}))?\b")
_NAMED_DATE = re.compile(r"\b(?:tgl|tanggal|tang)?\s*(?P<day>\d{1,2})\s+(?P<month>[a-z]{3,9})\b(?:\s+(?P<year>\d{4}))?")
_DAY_OF_MONTH = re.compile(r"\b(?:tgl|tanggal|tang|tg)\.?\s*(?P<day>\d{1,2})\b")
_PERIOD = re.compile(r"\b(pagi|siang|sore|malam)\b")


def parse_when(text: str, now: datetime) -> When:
    """Read the day and time of an appointment from `text`, relative to `now` (Asia/Jakarta)."""
    now = now.astimezone(JAKARTA)
    text = _focus(_clean(text), now)
    problems: list[str] = []
    day, used = _parse_day(text, now, problems)
    remainder = text
    for span in used:
        remainder = remainder.replace(span, " ")
    at, period, impossible = _parse_time(remainder)
    if day is None and at is not None and _refers_to_today(text):
        day = now.date()
    if day is None and not problems:
        problems.append(NO_DATE)
    if at is None and impossible:
        problems.append(INVALID_TIME)
    if at is None:
        problems.append(NO_TIME)
    if day is not None and INVALID_DATE not in problems:
        moment = datetime.combine(day, at or time(23, 59), JAKARTA)
        if moment < now:
            problems.append(PAST)
    return When(day, at, tuple(dict.fromkeys(problems)), period)


_CLAUSE_BREAK = re.compile(r"[,.;!?]+|\b(?:tapi|tp|tpi|jadi|jd|soalnya|karena|krn)\b")
# The clause a patient settles on: "besok sy sibuk, senin aja" means Monday.
_SETTLED = re.compile(r"\b(aja|saja|deh|dong)\b")
# A clause that rules its day out: "besok sy sibuk", "sabtu gw ada kondangan".
_BUSY = re.compile(
    r"\b(sibuk|berhalangan|ga bisa|gak bisa|nggak bisa|tidak bisa|gabisa|ada acara|ada meeting|ada kondangan|kerja)\b"
)


def _focus(text: str, now: datetime) -> str:
    """When clauses name different days, the ones that count: a clause that rules its day out
    ("besok sy sibuk") is left out, and of several days left the one the patient settles on
    ("... senin aja") wins. Otherwise the whole text."""
    clauses = [c.strip() for c in _CLAUSE_BREAK.split(text) if c and c.strip()]
    if len(clauses) < 2:
        return text
    days = {c: _parse_day(c, now, [])[0] for c in clauses}
    named = [c for c in clauses if days[c] is not None]
    if len({days[c] for c in named}) < 2:
        return text
    ruled_out = {c for c in named if _BUSY.search(c)}
    if ruled_out and len(ruled_out) < len(named):
        clauses = [c for c in clauses if c not in ruled_out]
        named = [c for c in named if c not in ruled_out]
    settled = [c for c in named if _SETTLED.search(c)]
    if len({days[c] for c in named}) > 1 and len(settled) == 1:
        clauses = [c for c in clauses if c not in named or c == settled[0]]
    return " , ".join(clauses)


def _refers_to_today(text: str) -> bool:
    return bool(re.search(r"\b(hari ini|hr ini|skrg|sekarang|nanti|ntar|tar)\b", text))


_WEEKDAY_NAMES = "senin|selasa|rabu|kamis|jumat|jumaat|sabtu|minggu|ahad"
_DAY_WORD = rf"(?:besok|lusa|{_WEEKDAY_NAMES})"
_EITHER = re.compile(rf"\b(?:hari\s+)?({_DAY_WORD})\s+(?:atau|ato|apa|or)\s+(?:hari\s+)?({_DAY_WORD})\b")


# Days named relative to today, and how many days from today each is.
_RELATIVE_DAYS = (
    (re.compile(r"\b(hari ini|hr ini|sekarang|skrg|nanti|ntar)\b"), 0),
    (re.compile(r"\b(kemarin|kmrn|kemaren|kemarin dulu)\b"), -1),
    (re.compile(r"\b(besok|bsk|besuk|esok)\b"), 1),
    (re.compile(r"\b(lusa)\b"), 2),
)


def _parse_day(text: str, now: datetime, problems: list[str]) -> tuple[date | None, list[str]]:
    today = now.date()
    either = _EITHER.search(text)
    if either and either.group(1) != either.group(2):
        problems.append(EITHER_DAY)
        return None, [either.group(0)]
    for pattern, offset in _RELATIVE_DAYS:
        found = pattern.search(text)
        if found:
            return today + timedelta(days=offset), [found.group(0)]

    months = words().months
    found = next((m for m in _NAMED_DATE.finditer(text) if m.group("month") in months), None)
    if found:
        return _calendar_day(
            int(found.group("day")), months[found.group("month")], found.group("year"), today, problems
        ), [found.group(0)]
    found = _NUMERIC_DATE.search(text)
    if found:
        return _calendar_day(
            int(found.group("day")), int(found.group("month")), found.group("year"), today, problems
        ), [found.group(0)]
    found = _DAY_OF_MONTH.search(text)
    if found:
        # The next date with that day number: "tgl 31" in November is 31 December.
        day_number = int(found.group("day"))
        month, year = today.month, today.year
        for _ in range(13):
            try:
                candidate = date(year, month, day_number)
            except ValueError:
                candidate = None
            if candidate is not None and candidate >= today:
                return candidate, [found.group(0)]
            month, year = (1, year + 1) if month == 12 else (month + 1, year)
        problems.append(INVALID_DATE)
        return None, [found.group(0)]

    # "hari minggu depan" is a Sunday; "minggu depan" alone is next week, day unknown;
    # "kamis minggu depan" is the Thursday of next week.
    found = re.search(
        rf"\b(?:hari\s+)?({_WEEKDAY_NAMES})"
        r"(\s+(?:depan|dpn|besok|(?:minggu|pekan)\s+(?:depan|dpn)))?(\s+ini)?\b",
        text,
    )
    if found:
        name, next_week = found.group(1), bool(found.group(2))
        if name == "minggu" and next_week and not found.group(0).startswith("hari"):
            problems.append(WHICH_DAY)
            return None, [found.group(0)]
        weekday = words().weekdays[name]
        if next_week:
            start_of_next_week = today + timedelta(days=7 - today.weekday())
            return start_of_next_week + timedelta(days=weekday), [found.group(0)]
        return today + timedelta(days=(weekday - today.weekday()) % 7), [found.group(0)]
    if re.search(r"\b(minggu|pekan)\s+(depan|dpn)\b", text):
        problems.append(WHICH_DAY)
    return None, []


def _calendar_day(day_number: int, month: int, year: str | None, today: date, problems: list[str]) -> date | None:
    if year:
        full_year = int(year) + (2000 if len(year) == 2 else 0)
    else:
        full_year = today.year
        # "5 Jan" said in December means next January.
        if (month, day_number) < (today.month, today.day):
            full_year += 1
    try:
        found = date(full_year, month, day_number)
    except ValueError:
        problems.append(INVALID_DATE)
        return None
    if found > today + timedelta(days=MAX_DAYS_AHEAD):
        problems.append(INVALID_DATE)  # an appointment years away is a typo, not a plan
        return None
    return found


def _parse_time(text: str) -> tuple[time | None, str | None, bool]:
    """The time, and the time of day when that is all the text says ("sore"); and whether the
    text names a clock time that does not exist ("jam 25", "pukul 10.75")."""
    best, impossible = None, False
    for found in _TIME.finditer(text):
        clock = bool(_HAS_CLOCK_WORD.search(text[max(0, found.start() - 6) : found.end()]))
        minute_given = found.group("minute") is not None
        period = found.group("period")
        if not (clock or minute_given or period):
            continue  # a bare number is a date or a count, not a time
        hour, minute = int(found.group("hour")), int(found.group("minute") or 0)
        impossible = impossible or ((clock or minute_given) and (hour > 23 or minute > 59))
        if found.group("half"):
            hour, minute = hour - 1, 30
        if hour > 23 or minute > 59 or hour < 0:
            continue
        hour = _with_period(hour, period)
        best = time(hour, minute)
        break
    if best is None:
        found = _PERIOD.search(text)
        if found:
            return words().period_default[found.group(1)], found.group(1), impossible
    return best, None, impossible


def _with_period(hour: int, period: str | None) -> int:
    """A 12-hour clock read as people mean it at a clinic that opens by day."""
    if period == "malam" and hour == 12:
        return 0  # midnight
    if period in ("sore", "malam", "pm"):
        return hour + 12 if hour < 12 else hour
    if period == "siang":
        return hour + 12 if hour < 6 else hour
    if period in ("pagi", "am"):
        return 0 if hour == 12 else hour
    # No period: "jam 3" at a clinic means 15:00; "jam 10" means 10:00.
    return hour + 12 if 1 <= hour <= 6 else hour


def describe(moment: datetime) -> str:
    """'Kamis, 27 November 2026 pukul 15.00' (Asia/Jakarta)."""
    return f"{describe_day(moment)} pukul {moment.astimezone(JAKARTA):%H.%M}"


def describe_day(moment: datetime) -> str:
    """'Kamis, 27 November 2026' (Asia/Jakarta)."""
    local = moment.astimezone(JAKARTA)
    table = words()
    return f"{table.day_names[local.weekday()]}, {local.day} {table.month_names[local.month - 1]} {local.year}"


def describe_short(moment: datetime) -> str:
    """'Kam 27 Nov 15.00' (Asia/Jakarta): a slot on a button, where titles are short."""
    local = moment.astimezone(JAKARTA)
    table = words()
    day, month = table.day_names[local.weekday()][:3], table.month_names[local.month - 1][:3]
    return f"{day} {local.day} {month} {local:%H.%M}"


# -- opening hours ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotCheck:
    ok: bool
    reason: str = ""  # closed_day | before_opening | after_closing | unknown_hours
    suggestions: tuple[datetime, ...] = field(default_factory=tuple)


def check_slot(moment: datetime, hours: dict[str, tuple[str, str] | None], now: datetime, count: int = 3) -> SlotCheck:
    """Is the clinic open for an appointment at `moment`? If not, the nearest open slots."""
    if not hours:
        return SlotCheck(True, "unknown_hours")
    local = moment.astimezone(JAKARTA)
    window = _window_on(local.date(), hours)
    if window is not None and window[0] <= local.time() <= window[1]:
        return SlotCheck(True)
    reason = "closed_day" if window is None else "before_opening" if local.time() < window[0] else "after_closing"
    return SlotCheck(False, reason, tuple(nearest_open(local, hours, now, count)))


def nearest_open(moment: datetime, hours, now: datetime, count: int = 3) -> list[datetime]:
    """Up to `count` open slots from `moment` on: the wanted time of day on the next open days
    when that time is open there, otherwise that day's opening time; never in the past."""
    local = moment.astimezone(JAKARTA)
    earliest = now.astimezone(JAKARTA)
    wanted = local.time()
    found: list[datetime] = []
    day = local.date()
    for _ in range(28):
        window = _window_on(day, hours)
        if window is not None:
            first, last = window
            at = wanted if first <= wanted <= last else first
            if day == local.date() and wanted > last:
                at = last  # later that same day is closed: the day's last slot is nearest
            slot = datetime.combine(day, at, JAKARTA)
            if slot < earliest and day == earliest.date() and earliest.time() <= last:
                slot = datetime.combine(day, _round_up(earliest.time()), JAKARTA)
            if slot >= earliest and slot != local and first <= slot.time() <= last:
                found.append(slot)
        if len(found) >= count:
            break
        day += timedelta(days=1)
    return found


def next_opening(now: datetime, hours) -> datetime | None:
    """When the clinic next opens (now, if it is open)."""
    local = now.astimezone(JAKARTA)
    day = local.date()
    for _ in range(14):
        opening = _hours_on(day, hours)
        if opening is not None:
            start, end = opening
            if day != local.date() or local.time() < end:
                return datetime.combine(day, max(start, local.time()) if day == local.date() else start, JAKARTA)
        day += timedelta(days=1)
    return None


def is_open(now: datetime, hours) -> bool:
    local = now.astimezone(JAKARTA)
    opening = _hours_on(local.date(), hours)
    return opening is not None and opening[0] <= local.time() < opening[1]


_WEEKDAY_KEYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _hours_on(day: date, hours) -> tuple[time, time] | None:
    value = hours.get(_WEEKDAY_KEYS[day.weekday()])
    if not value:
        return None
    return time.fromisoformat(value[0]), time.fromisoformat(value[1])


# The last appointment of a day starts this long before closing.
LAST_APPOINTMENT_BEFORE_CLOSING = timedelta(minutes=30)


def _window_on(day: date, hours) -> tuple[time, time] | None:
    """The first and last start time of an appointment on `day`, or None when closed."""
    opening = _hours_on(day, hours)
    if opening is None:
        return None
    last = (datetime.combine(day, opening[1]) - LAST_APPOINTMENT_BEFORE_CLOSING).time()
    return opening[0], last


def _round_up(moment: time) -> time:
    """The next half hour."""
    minutes = moment.hour * 60 + moment.minute
    minutes = -(-minutes // 30) * 30
    return time(min(minutes // 60, 23), minutes % 60)
