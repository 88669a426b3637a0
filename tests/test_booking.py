"""The booking flow on its own: steps that the replay fixtures do not reach."""

from datetime import datetime

from bot.core.dates import JAKARTA
from bot.core.messages import BookingDraft

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)


def test_a_time_given_before_the_complaint_asks_for_the_complaint_not_the_summary(engine):
    draft = BookingDraft(step="when", name="Rina", updated_at=NOW.isoformat())
    step = engine.booking.step(draft, "besok jam 11", NOW)
    assert step.draft.step == "complaint"
    assert step.draft.day == "2026-11-26" and step.draft.at == "11:00"
    assert step.texts == (engine.kb.texts["booking_ask_complaint"].strip(),)


def test_a_missing_name_is_asked_before_the_complaint(engine):
    draft = BookingDraft(step="when", complaint="betis pegal", updated_at=NOW.isoformat())
    step = engine.booking.step(draft, "besok jam 11", NOW)
    assert step.draft.step == "name"
    assert step.texts == (engine.kb.texts["booking_ask_name"].strip(),)


def test_control_characters_in_the_complaint_are_not_echoed(engine):
    """Regression (fuzzing): the summary echoed a NUL or ESC typed in the complaint, and TwiML
    with such a character is not XML that Twilio can read."""
    draft = BookingDraft(step="complaint", name="Rina", day="2026-11-26", at="11:00", updated_at=NOW.isoformat())
    step = engine.booking.step(draft, "betis\x00 kanan\x1b[31m kedutan\x0b\ufffe terus", NOW)
    assert step.draft.complaint == "betis kanan [31m kedutan terus"
    assert "Keluhan: betis kanan [31m kedutan terus" in step.texts[0]
