"""The clinic's schedule (knowledge/clinic.yaml `schedule`): when appointments may start, the
nearest free slots, and how clinic.yaml's mistakes are reported."""

from datetime import date, datetime, time

import pytest

from bot.core import knowledge, schedule
from bot.core.dates import JAKARTA
from bot.core.messages import BookingDraft

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)  # a Wednesday


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=JAKARTA)


@pytest.fixture(scope="module")
def plan(kb) -> schedule.Schedule:
    return kb.clinic.schedule


def test_the_shipped_schedule_is_read(plan):
    assert (plan.places, plan.slot_minutes, plan.auto_confirm) == (2, 30, False)
    assert [t.id for t in plan.treatments] == ["consultation", "acupuncture", "cupping"]
    assert plan.breaks["monday"] == ((time(12), time(13)),)
    assert plan.breaks["friday"] == ((time(11, 30), time(13)),) and plan.breaks["saturday"] == ()
    assert plan.closed[date(2026, 12, 25)] == "Hari Raya Natal"
    assert plan.closed[date(2027, 8, 17)] == "Hari Kemerdekaan RI"


@pytest.mark.parametrize(
    ("start", "minutes", "reason"),
    [
        (at(26, 10), 30, None),
        (at(26, 8, 30), 30, schedule.BEFORE_OPENING),
        (at(26, 17, 30), 30, None),  # ends at closing
        (at(26, 17, 30), 60, schedule.AFTER_CLOSING),  # an hour of acupuncture would not
        (at(26, 12, 30), 30, schedule.BREAK),
        (at(26, 11, 30), 60, schedule.BREAK),  # runs into the break
        (at(27, 11, 30), 30, schedule.BREAK),  # Friday prayers
        (at(28, 12, 0), 30, None),  # no break on Saturday
        (at(29, 10), 30, schedule.CLOSED_DAY),  # Sunday
        (at(25, 10, month=12), 30, schedule.CLOSED_DAY),  # Christmas, a holiday
        (at(24, 10, month=12), 30, schedule.CLOSED_DAY),  # a date the clinic closes
    ],
)
def test_why_a_start_cannot_be_booked(plan, start, minutes, reason):
    assert plan.why_not(start, minutes) == reason


def test_a_full_slot_is_not_offered_and_the_nearest_free_ones_are(plan):
    full = frozenset({at(26, 15), at(26, 15, 30)})
    check = plan.check(at(26, 15), 60, NOW, full)
    assert (check.ok, check.reason) == (False, schedule.FULL)
    assert check.suggestions == (at(26, 14), at(27, 15), at(28, 13))  # the last hour on Saturday
    assert all(plan.why_not(s, 60, full) is None for s in check.suggestions)


def test_an_appointment_covers_every_slot_it_lasts(plan):
    assert plan.cells(at(26, 10, 15), 60) == (at(26, 10), at(26, 10, 30), at(26, 11))


def test_treatments_are_named_by_their_words(plan):
    assert plan.named_treatment("mau akupuntur besok").id == "acupuncture"
    assert plan.named_treatment("Tusuk Jarum aja").id == "acupuncture"
    assert plan.named_treatment("betis kram") is None
    assert plan.treatment(None).id == "consultation"


def test_besok_sore_offers_the_free_slots_of_the_afternoon(engine):
    draft = BookingDraft(step="when", name="Rina", complaint="betis kram", updated_at=NOW.isoformat())
    step = engine.booking.step(draft, "besok sore", NOW)
    assert step.draft.step == "pick_slot"
    assert [s[11:16] for s in step.draft.slots] == ["15:00", "16:00", "17:30"]
    assert "1. Kamis, 26 November 2026 pukul 15.00" in step.texts[0]


def test_a_full_slot_gets_the_nearest_free_ones(engine):
    draft = BookingDraft(step="when", name="Rina", complaint="betis kram", updated_at=NOW.isoformat())
    step = engine.booking.step(draft, "besok jam 3", NOW, full=frozenset({at(26, 15)}))
    assert step.draft.step == "pick_slot" and "sudah penuh" in step.texts[0]
    assert step.draft.slots[0] == at(26, 14, 30).isoformat()


def test_a_slot_taken_before_the_patient_says_yes_is_not_sent(engine):
    draft = BookingDraft(
        step="confirm", name="Rina", complaint="betis kram", day="2026-11-26", at="15:00", updated_at=NOW.isoformat()
    )
    step = engine.booking.step(draft, "ya", NOW, full=frozenset({at(26, 15)}))
    assert step.booking is None and step.draft.step == "pick_slot" and "sudah penuh" in step.texts[0]
    sent = engine.booking.step(draft, "ya", NOW)
    assert sent.booking.start == at(26, 15) and (sent.booking.treatment, sent.booking.minutes) == ("consultation", 30)


SCHEDULE_MISTAKES = """
schedule:
  places_per_slot: 0
  slot_minutes: 30
  treatments:
    - {id: acupuncture, name: Akupunktur, minutes: 45}
  breaks:
    monday: ["13:00-12:00"]
    someday: []
  holidays:
    - {date: 2026-02-30, name: Salah}
    - {date: 2026-01-01, name: Tahun Baru}
    - {date: 2026-01-01, name: Tahun Baru}
"""


def test_schedule_mistakes_name_their_file_and_line(kb_copy):
    clinic = kb_copy / "clinic.yaml"
    text = clinic.read_text().split("\nschedule:")[0] + SCHEDULE_MISTAKES
    clinic.write_text(text)
    errors, _ = knowledge.check(kb_copy)
    lines = text.splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, line in enumerate(lines, start=1) if fragment in line)

    found = {(e.line, e.message.split(":")[0]) for e in errors if e.file.endswith("clinic.yaml")}
    assert (line_of("places_per_slot: 0"), "schedule.places_per_slot must be a whole number from 1 to 1440") in found
    assert (line_of("minutes: 45"), "treatment 'acupuncture' minutes") in found
    assert (line_of("13:00-12:00"), "schedule.breaks.monday") in found
    assert (line_of("someday"), "schedule.breaks") in found
    assert (line_of("2026-02-30"), "schedule.holidays") in found
    assert line_of("2026-01-01") + 1 in {line for line, _ in found}


def test_calendar_word_mistakes_name_their_file_and_line(kb_copy):
    path = kb_copy / "calendar.yaml"
    text = path.read_text().replace("rabu: 2,", "rabu: 9,").replace('default: "16:00"', 'default: "16.00"')
    path.write_text(text)
    errors, _ = knowledge.check(kb_copy)
    lines = text.splitlines()
    found = {(e.line, e.message) for e in errors if e.file.endswith("calendar.yaml")}
    weekday_line = next(i for i, line in enumerate(lines, start=1) if "rabu: 9" in line)
    period_line = next(i for i, line in enumerate(lines, start=1) if '"16.00"' in line)
    assert (weekday_line, "weekdays 'rabu' must be a whole number from 0 to 6") in found
    assert (period_line, "periods.sore.default: write HH:MM") in found


def test_the_word_tables_are_read_from_knowledge(kb):
    from bot.core import dates

    assert dates.WEEKDAYS["jumat"] == 4 and dates.MONTHS["des"] == 12
    assert dates.PERIOD_SPAN["sore"] == (time(15), time(17, 59)) and "jamnya" in dates.WHEN_WORDS
    assert dates.describe(at(26, 15)) == "Kamis, 26 November 2026 pukul 15.00"
