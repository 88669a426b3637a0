"""The booking flow on its own: steps that the replay fixtures do not reach."""

from datetime import datetime

import pytest

from bot.core.dates import JAKARTA
from bot.core.messages import BookingDraft, ConversationState, Incoming

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)


def test_a_time_given_before_the_complaint_asks_for_the_complaint_not_the_summary(engine):
    draft = BookingDraft(step="when", name="Rina", updated_at=NOW.isoformat())
    step = engine.booking.step(draft, "besok jam 11", NOW)
    assert step.draft.step == "complaint"
    assert step.draft.day == "2026-11-26" and step.draft.at == "11:00"
    assert step.texts == (engine.kb.texts["booking_ask_complaint"].strip(),)


@pytest.mark.parametrize(
    "first, expected",
    [
        ("mau booking akupuntur besok sore", "offer"),  # regression (issue 18): it went straight to 16:00
        ("mau booking akupuntur besok jam 3 sore", "15:00"),  # an hour said: taken as it is
    ],
)
def test_a_time_of_day_in_the_first_message_offers_its_free_slots(engine, first, expected):
    started = engine.booking.start(first, "Rina", NOW)
    named = engine.booking.step(started.draft, "ya", NOW)
    step = engine.booking.step(named.draft, "betis kram tiap malam", NOW)
    if expected == "offer":
        assert step.draft.step == "pick_slot" and step.draft.period is None
        assert [s[11:16] for s in step.draft.slots] == ["15:00", "16:00", "17:00"]
        assert "sore" in step.texts[0]
        picked = engine.booking.step(step.draft, "2", NOW)
        assert (picked.draft.step, picked.draft.day, picked.draft.at) == ("confirm", "2026-11-26", "16:00")
    else:
        assert (step.draft.step, step.draft.day, step.draft.at) == ("confirm", "2026-11-26", expected)


def test_an_hour_said_on_the_way_replaces_the_time_of_day(engine):
    started = engine.booking.start("mau booking besok sore", None, NOW)
    noted = engine.booking.step(started.draft, "jam 4 aja", NOW)
    assert (noted.draft.at, noted.draft.period) == ("16:00", None)


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


def _at_summary(engine):
    draft = BookingDraft(step="complaint", name="Rina", day="2026-11-26", at="15:00", updated_at=NOW.isoformat())
    step = engine.booking.step(draft, "betis kedutan terus", NOW)
    assert step.draft.step == "confirm"
    return step.draft


def test_a_new_day_and_time_at_the_summary_correct_the_booking(engine):
    step = engine.booking.step(_at_summary(engine), "ganti jadi lusa jam 2", NOW)
    assert (step.draft.step, step.draft.day, step.draft.at) == ("confirm", "2026-11-27", "14:00")
    assert "Rina" in step.texts[0] and "betis kedutan terus" in step.texts[0]


def test_a_new_time_alone_at_the_summary_keeps_the_day(engine):
    step = engine.booking.step(_at_summary(engine), "jam 4 sore aja", NOW)
    assert (step.draft.step, step.draft.day, step.draft.at) == ("confirm", "2026-11-26", "16:00")


def test_a_correction_to_a_closed_time_offers_open_slots(engine):
    step = engine.booking.step(_at_summary(engine), "ganti jam 11 malam", NOW)
    assert step.draft.step == "pick_slot" and step.draft.slots


def test_the_same_day_again_at_the_summary_is_not_a_change(engine):
    draft = _at_summary(engine)
    step = engine.booking.step(draft, "besok ya", NOW)
    assert step.draft == draft and step.booking is None  # the summary again: ya / ubah / batal


def test_a_question_about_another_day_at_the_summary_keeps_the_booking(engine):
    draft = _at_summary(engine)
    turn = engine.step(ConversationState(started=True, booking=draft), Incoming("kalau minggu buka?"), NOW)
    assert turn.match.intent == "clinic_info"  # answered as a question ...
    assert turn.state.booking.step == "confirm"  # ... and the booking stands, summary pending
    assert (turn.state.booking.day, turn.state.booking.at) == (draft.day, draft.at)
    asked = engine.booking.step(draft, "bisa ganti lusa?", NOW)
    assert (asked.draft.step, asked.draft.day, asked.draft.at) == ("confirm", "2026-11-27", "15:00")


def test_a_day_given_where_the_bot_asked_what_to_change_changes_it(engine):
    asked = engine.booking.step(_at_summary(engine), "ubah", NOW)
    assert asked.draft.step == "change"
    step = engine.booking.step(asked.draft, "lusa jam 10", NOW)
    assert (step.draft.step, step.draft.day, step.draft.at) == ("confirm", "2026-11-27", "10:00")


def test_only_a_message_that_is_just_a_new_time_changes_the_booking_at_the_summary(engine):
    draft = _at_summary(engine)
    for keeps in ("besok sy kabari lg", "ok besok ya", "besok sy ada meeting, jd senin aja ya"):
        step = engine.booking.step(draft, keeps, NOW)
        assert (step.draft.day, step.draft.at) == (draft.day, draft.at), keeps
    moved = engine.booking.step(draft, "klo lusa jam 10 ada slot?", NOW)
    assert (moved.draft.step, moved.draft.day, moved.draft.at) == ("confirm", "2026-11-27", "10:00")
    asked = engine.booking.step(draft, "jumat jam 1 bisa ga?", NOW)
    assert (asked.draft.step, asked.draft.day, asked.draft.at) == ("confirm", "2026-11-27", "13:00")


def test_a_past_time_said_at_the_summary_keeps_the_booking_as_it_was(engine):
    draft = _at_summary(engine)
    step = engine.booking.step(draft, "kemarin aja", NOW)
    assert (step.draft.step, step.draft.day, step.draft.at) == ("confirm", draft.day, draft.at)
    assert "sudah lewat" in step.texts[0] and "Rina" in step.texts[1]
    step = engine.booking.step(draft, "tgl 31 nov", NOW)
    assert (step.draft.step, step.draft.day, step.draft.at) == ("confirm", draft.day, draft.at)
    assert step.texts[0] == engine.booking._text("booking_invalid_date") and "Rina" in step.texts[1]


def test_a_field_and_its_new_value_at_the_summary_change_it_at_once(engine):
    draft = _at_summary(engine)
    for said, name in (
        ("ubah nama jadi Rina Pratama", "Rina Pratama"),
        ("nama: rina p.", "Rina P."),
        ("namanya Rini", "Rini"),
    ):
        step = engine.booking.step(draft, said, NOW)
        assert (step.draft.step, step.draft.name, step.draft.day) == ("confirm", name, draft.day), said
        assert f"Nama: {name}" in step.texts[0]
    step = engine.booking.step(draft, "ganti keluhan jadi kram tiap malam", NOW)
    assert (step.draft.step, step.draft.complaint) == ("confirm", "kram tiap malam")
    asked = engine.booking.step(draft, "namanya siapa?", NOW)  # a question (here: who treats), not a name
    assert (asked.draft or draft).name == "Rina"


def test_a_name_given_for_someone_else_is_the_name_alone():
    from bot.core.booking import _clean_name

    assert _clean_name("nama anak sy Kevin, sy ibunya") == "Kevin"
    assert _clean_name("Salah Uddin", typed=False) == "Salah Uddin"


def test_two_days_offered_as_a_choice_are_asked_about_and_the_time_kept(engine):
    draft = BookingDraft(step="when", name="Rina", complaint="kram", updated_at=NOW.isoformat())
    step = engine.booking.step(draft, "senin atau selasa jam 10", NOW)
    assert step.texts == (engine.booking._text("booking_either_day"),)
    assert (step.draft.step, step.draft.day, step.draft.at) == ("when", None, "10:00")
    chosen = engine.booking.step(step.draft, "selasa aja", NOW)
    assert (chosen.draft.step, chosen.draft.day, chosen.draft.at) == ("confirm", "2026-12-01", "10:00")


# -- free-text corrections of the day or time, at any step ------------------------------------------


@pytest.mark.parametrize("step", ["name_confirm", "name", "complaint", "confirm"])
@pytest.mark.parametrize(
    ("text", "day", "at"),
    [("jamnya jam 4 aja", "2026-11-26", "16:00"), ("eh hari jumat aja", "2026-11-27", "15:00")],
)
def test_a_correction_of_the_hour_or_the_day_keeps_the_other(engine, step, text, day, at):
    draft = BookingDraft(
        step=step, name="Rina", complaint="betis kram", day="2026-11-26", at="15:00", updated_at=NOW.isoformat()
    )
    result = engine.booking.step(draft, text, NOW)
    assert (result.draft.step, result.draft.day, result.draft.at) == (step, day, at)
    assert (result.draft.name, result.draft.complaint) == ("Rina", "betis kram")


def test_a_time_said_while_the_complaint_is_asked_is_noted_and_the_question_asked_again(engine):
    draft = BookingDraft(step="complaint", name="Rina", day="2026-11-26", at="15:00", updated_at=NOW.isoformat())
    result = engine.booking.step(draft, "jamnya jam 4 aja", NOW)
    assert result.texts == (
        "Baik, waktunya saya catat: Kamis, 26 November 2026 pukul 16.00 ✅",
        engine.kb.texts["booking_ask_complaint"].strip(),
    )
    assert engine.booking.step(result.draft, "betis kram", NOW).draft.at == "16:00"


def test_an_hour_that_does_not_exist_is_asked_again_and_changes_nothing(engine):
    """ "jam 25" (issue 18, bad input): a clear answer, not a silent "Jam berapa?"; at the
    summary the booking keeps its time."""
    asking = BookingDraft(step="when", name="Rina", complaint="betis kram", updated_at=NOW.isoformat())
    result = engine.booking.step(asking, "besok jam 25", NOW)
    assert result.texts == (engine.kb.texts["booking_invalid_time"].strip(),)
    assert (result.draft.step, result.draft.day, result.draft.at) == ("when", "2026-11-26", None)
    summary = BookingDraft(
        step="confirm", name="Rina", complaint="betis kram", day="2026-11-26", at="15:00", updated_at=NOW.isoformat()
    )
    kept = engine.booking.step(summary, "jamnya jam 25 aja", NOW)
    assert engine.kb.texts["booking_invalid_time"].strip() in kept.texts[0]
    assert (kept.draft.step, kept.draft.day, kept.draft.at) == ("confirm", "2026-11-26", "15:00")


@pytest.mark.parametrize("text", ["yaudah senin aja", "maksudnya senin jam 2 siang"])
def test_a_new_day_said_while_the_name_is_asked_is_not_taken_for_the_name(engine, text):
    """Found by a tester: after "mo daftar hr minggu jm 9", "yaudah senin aja" was stored as the
    patient's name "Yaudah Senin Aja"."""
    draft = BookingDraft(step="name", day="2026-11-29", at="09:00", updated_at=NOW.isoformat())
    result = engine.booking.step(draft, text, NOW)
    assert (result.draft.step, result.draft.name, result.draft.day) == ("name", None, "2026-11-30")
    assert result.texts[-1] == engine.kb.texts["booking_ask_name"].strip()


def test_an_hour_that_does_not_exist_in_the_first_message_is_said_at_once(engine):
    """ "mau booking bekam besok jam 25": the day is kept, the patient told the hour does not
    exist, and the name asked; the time is asked again in its turn."""
    result = engine.booking.start("mau booking bekam besok jam 25", None, NOW)
    assert result.texts == (
        engine.kb.texts["booking_invalid_time_later"].strip(),
        engine.kb.texts["booking_ask_name"].strip(),
    )
    assert (result.draft.step, result.draft.day, result.draft.at) == ("name", "2026-11-26", None)
