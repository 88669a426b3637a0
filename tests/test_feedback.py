"""The satisfaction question in the pure core (bot.core.feedback, called by the dialogue engine):
when it is asked, how its answer is read, and that ignoring it breaks nothing."""

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from bot.core.dates import JAKARTA
from bot.core.dialogue import NO_STAFF, Engine
from bot.core.feedback import FEEDBACK_INTENT, asked, case_of, case_subject
from bot.core.messages import ConversationState, Incoming, Rating, StaffView

MORNING = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)
QUESTION = "membantu?\n1. 👍 Ya, membantu\n2. 👎 Kurang membantu"


def chat(engine, *messages, state=None, start=MORNING, staff=NO_STAFF):
    """Messages a minute apart; returns the turns."""
    state = state or ConversationState()
    turns = []
    for minute, text in enumerate(messages):
        turn = engine.step(state, Incoming(text), start + timedelta(minutes=minute), staff)
        turns.append(turn)
        state = turn.state
    return turns


def text_of(turn) -> str:
    return "\n".join(r.text for r in turn.replies)


def test_thanks_after_a_topic_asks_about_that_topic_and_a_thumbs_up_is_a_rating(engine):
    causes, thanks, rating = chat(engine, "knp betis kedutan trs", "oke makasih infonya kak", "👍")
    assert QUESTION not in text_of(causes)  # it offers follow-ups by number: no question beside them
    assert f"Apakah jawaban tentang *{engine.kb.intents['causes'].title}* tadi {QUESTION}" in text_of(thanks)
    assert len(thanks.replies) == 1 and thanks.state.feedback_on == "causes"
    assert asked(causes.state, thanks.state) == "causes"
    assert rating.actions == (Rating(True, "causes"),)
    assert (rating.match.intent, rating.match.reason) == (FEEDBACK_INTENT, "feedback_up")
    assert text_of(rating) == engine.kb.texts["feedback_thanks"]
    assert rating.state.feedback_on is None and asked(thanks.state, rating.state) is None


@pytest.mark.parametrize(
    "reply, helpful",
    [("👍", True), ("👍🏽", True), ("1", True), ("ya membantu", True), ("iya sangat membantu kak", True),
     ("membantu bgt, makasih", True),
     ("👎", False), ("2", False), ("kurang", False), ("tidak", False), ("ga membantu", False), ("kurang jelas kak",
     False),
     ("tidak membantu", False), ("ya tapi masih bingung", False)],
)  # fmt: skip
def test_the_answer_is_read_from_numbers_emoji_and_words(engine, reply, helpful):
    *_, rating = chat(engine, "knp betis kedutan trs", "makasih", reply)
    assert rating.actions == (Rating(helpful, "causes"),)
    expected = engine.kb.texts["feedback_thanks" if helpful else "feedback_sorry"]
    assert text_of(rating) == expected


@pytest.mark.parametrize("other", ["berapa harga akupunktur?", "kalau kopi ngaruh ga?", "3", "ok"])
def test_a_patient_who_ignores_it_gets_the_answer_to_what_they_said(engine, other):
    *_, ignored = chat(engine, "knp betis kedutan trs", "makasih", other)
    alone = engine.step(ConversationState(started=True), Incoming(other), MORNING)
    assert ignored.actions == alone.actions == ()
    assert ignored.match.intent == alone.match.intent != FEEDBACK_INTENT
    assert ignored.state.feedback_on is None


def test_never_twice_in_a_day_and_again_the_next_day(engine):
    turns = chat(engine, "knp betis kedutan trs", "makasih", "1", "kalau kram betis kenapa?", "makasih ya", "dadah")
    assert sum(QUESTION in text_of(t) for t in turns) == 1
    evening = chat(
        engine, "gmn cara mencegahnya", "makasih", state=turns[-1].state, start=MORNING.replace(hour=23, minute=50)
    )
    assert QUESTION not in text_of(evening[-1])
    tomorrow = chat(engine, "gmn cara mencegahnya", "makasih", state=turns[-1].state, start=MORNING + timedelta(days=1))
    assert QUESTION in text_of(tomorrow[-1]) and tomorrow[-1].state.feedback_on == "prevention"


def test_a_topic_without_follow_ups_is_asked_about_with_its_answer(kb):
    engine = Engine(replace(kb, intents={**kb.intents, "prevention": replace(kb.intents["prevention"], follow_up=())}))
    (answer,) = chat(engine, "gmn cara mencegah kedutan betis")
    assert answer.match.intent == "prevention" and answer.state.options == ()
    assert text_of(answer).endswith(QUESTION) and answer.state.feedback_on == "prevention"
    assert len(answer.replies) == 2  # the first-contact notice, then the answer with the question


def test_never_after_an_emergency_that_day(engine):
    emergency, *_ = chat(engine, "dada saya nyeri bgt dan sesak")
    assert emergency.match.intent == "red_flag" and QUESTION not in text_of(emergency)
    closed = emergency.state.resumed()  # staff closed the urgent case
    state, question = engine.feedback.after_case(closed, MORNING + timedelta(hours=1), 7, urgent=True)
    assert question is None and state.feedback_on is None
    later = chat(engine, "kenapa betis kedutan", "makasih", state=closed, start=MORNING + timedelta(hours=2))
    assert QUESTION not in text_of(later[-1])
    tomorrow = chat(engine, "kenapa betis kedutan", "makasih", state=closed, start=MORNING + timedelta(days=1))
    assert QUESTION in text_of(tomorrow[-1])


def test_an_emergency_while_the_question_waits_is_answered_as_an_emergency(engine):
    *_, urgent = chat(engine, "knp betis kedutan trs", "makasih", "tidak, kaki kanan tiba2 lumpuh")
    assert urgent.match.intent == "red_flag" and not any(isinstance(a, Rating) for a in urgent.actions)


def test_not_while_staff_have_the_chat_nor_in_a_booking_or_privacy_flow(engine):
    staff = chat(engine, "knp betis kedutan trs", "makasih", staff=StaffView(has_chat=True))
    assert QUESTION not in text_of(staff[-1]) and staff[-1].state.feedback_on is None
    booking = chat(engine, "mau booking akupuntur besok jam 3", "berapa harga akupunktur?")
    assert booking[-1].state.booking is not None and QUESTION not in text_of(booking[-1])
    for privacy in ("data saya", "hapus data saya"):
        turns = chat(engine, "knp betis kedutan trs", privacy)
        assert QUESTION not in text_of(turns[-1]) and turns[-1].state.feedback_on is None
    stop = chat(engine, "knp betis kedutan trs", "stop kirim pesan")
    assert QUESTION not in text_of(stop[-1])


def test_an_answer_long_after_the_question_is_no_rating(engine):
    *_, thanks = chat(engine, "knp betis kedutan trs", "makasih")
    late = engine.step(thanks.state, Incoming("1"), MORNING + timedelta(days=2))
    assert late.match.intent == "menu" and late.actions == ()


def test_closing_a_case_asks_about_staff_help_and_links_the_answer_to_the_case(engine):
    state = ConversationState(started=True).resumed()
    state, question = engine.feedback.after_case(state, MORNING, 12, urgent=False)
    assert question == engine.kb.texts["feedback_question_case"] and state.feedback_on == case_subject(12)
    rating = engine.step(state, Incoming("2"), MORNING + timedelta(minutes=3))
    assert rating.actions == (Rating(False, "case:12"),) and case_of("case:12") == 12 and case_of("causes") is None
    again, none = engine.feedback.after_case(rating.state.resumed(), MORNING + timedelta(hours=2), 13, urgent=False)
    assert none is None and again.feedback_on is None  # once a day, whoever asked


def test_the_state_keeps_the_question_through_storage_and_a_closed_case(engine):
    *_, thanks = chat(engine, "knp betis kedutan trs", "makasih")
    assert ConversationState.from_dict(thanks.state.to_dict()) == thanks.state
    assert thanks.state.resumed().feedback_at == thanks.state.feedback_at


@pytest.mark.parametrize("choice, helpful", [("helpful", True), ("not_helpful", False)])
def test_a_tapped_button_answers_like_a_number_and_the_reply_marks_its_question(engine, choice, helpful):
    causes, thanks = chat(engine, "knp betis kedutan trs", "makasih")
    assert causes.replies[-1].split_question() == (causes.replies[-1].text, "")
    before, question = thanks.replies[-1].split_question()
    assert question.startswith("Apakah jawaban tentang") and question.endswith("2. 👎 Kurang membantu")
    assert before and question not in before and thanks.replies[-1].text.startswith(before)
    tapped = engine.step(thanks.state, Incoming("", choice_id=choice), MORNING + timedelta(minutes=2))
    assert tapped.actions == (Rating(helpful, "causes"),)
