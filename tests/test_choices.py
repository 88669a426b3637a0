"""Options as data in the core: a reply that lists choices carries them (Reply.options) for a
channel that shows buttons; a tapped choice id counts exactly as typing its number or word; a
choice the conversation does not offer now gets a clear answer."""

from datetime import datetime

import pytest

from bot.core.dates import JAKARTA
from bot.core.messages import ConversationState, Incoming, describe_action

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)


def talk(engine, state, text, choice_id=None):
    turn = engine.step(state, Incoming(text, profile_name="Rina", choice_id=choice_id), NOW)
    return turn, turn.state


def at_slot_offer(engine):
    """A booking up to the offer of Thursday afternoon's free slots."""
    state = ConversationState()
    for text in ("mau booking besok sore", "ya"):
        _, state = talk(engine, state, text)
    return talk(engine, state, "betis kram tiap malam")


def test_the_slot_offer_carries_its_slots_and_keeps_the_numbered_text(engine):
    turn, state = at_slot_offer(engine)
    offer = turn.replies[-1]
    assert [o.title for o in offer.options] == ["Kam 26 Nov 15.00", "Kam 26 Nov 16.00", "Kam 26 Nov 17.30"]
    assert [o.said for o in offer.options] == ["1", "2", "3"]
    assert [o.id for o in offer.options] == [f"slot:{s}" for s in state.booking.slots]
    assert "2. Kamis, 26 November 2026 pukul 16.00" in offer.text
    assert all(not r.options for r in turn.replies[:-1])


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_tapped_slot_books_exactly_that_slot(engine, index):
    turn, state = at_slot_offer(engine)
    chosen = turn.replies[-1].options[index]
    turn, state = talk(engine, state, chosen.title, chosen.id)
    slot = datetime.fromisoformat(chosen.id.removeprefix("slot:"))
    assert (state.booking.step, state.booking.day, state.booking.at) == (
        "confirm",
        slot.date().isoformat(),
        slot.strftime("%H:%M"),
    )
    assert [o.id for o in turn.replies[-1].options] == ["confirm:yes", "confirm:change", "confirm:cancel"]


def test_typed_numbers_and_words_still_work(engine):
    _, state = at_slot_offer(engine)
    _, typed = talk(engine, state, "yang kedua")
    assert typed.booking.at == "16:00"
    turn, done = talk(engine, typed, "ya")
    assert done.booking is None and [describe_action(a) for a in turn.actions] == ["handoff:booking"]


def test_the_confirmation_buttons_send_change_and_cancel(engine):
    turn, state = at_slot_offer(engine)
    _, state = talk(engine, state, "2")
    turn, changed = talk(engine, state, "Ubah", "confirm:change")
    assert changed.booking.step == "change"
    assert [o.title for o in turn.replies[-1].options] == ["Nama", "Keluhan", "Waktu"]
    _, field = talk(engine, changed, "Waktu", "change:when")
    assert field.booking.step == "when"
    _, cancelled = talk(engine, state, "Batal", "confirm:cancel")
    assert cancelled.booking is None


@pytest.mark.parametrize(
    "choice_id",
    [
        "slot:2026-11-26T11:00:00+07:00",  # a slot never offered in this conversation
        "confirm:yes",  # a button of a later step
        "topic:pricing",  # a menu row, while a booking is going on
        "change:when",  # a button of another step
    ],
)
def test_a_choice_not_offered_gets_the_clear_answer_and_the_question_again(engine, choice_id):
    turn, state = at_slot_offer(engine)
    after_turn, after = talk(engine, state, "Kam 26 Nov 11.00", choice_id)
    assert after_turn.replies[0].text == engine.kb.texts["choice_stale"]
    assert after_turn.match.reason == "choice_stale"
    assert after.booking == state.booking  # nothing picked, nothing lost
    assert "2. Kamis, 26 November 2026 pukul 16.00" in after_turn.replies[-1].text
    assert after_turn.replies[-1].options == turn.replies[-1].options


def test_an_old_slot_button_after_the_booking_moved_on_is_stale(engine):
    turn, state = at_slot_offer(engine)
    first, second = turn.replies[-1].options[:2]
    _, state = talk(engine, state, first.title, first.id)
    again, after = talk(engine, state, second.title, second.id)
    assert again.replies[0].text == engine.kb.texts["choice_stale"]
    assert after.booking.at == "15:00"


def test_menu_rows_carry_the_topics_and_a_tap_answers_that_topic(engine):
    turn, state = talk(engine, ConversationState(), "menu")
    options = turn.replies[-1].options
    assert len(options) == len(engine.kb.menu_items) and options[0].said == "1"
    pricing = next(o for o in options if o.id == "topic:pricing")
    tapped, _ = talk(engine, state, pricing.title, pricing.id)
    typed, _ = talk(engine, state, pricing.said)
    assert tapped.match.intent == typed.match.intent == "pricing"
    assert tapped.replies == typed.replies


def test_the_clarify_question_carries_its_two_topics(engine):
    turn, state = talk(engine, ConversationState(started=True), "kaki")
    assert turn.match.decision.value == "clarify"  # a bare body part: which topic?
    assert [o.id for o in turn.replies[-1].options] == [f"topic:{i}" for i in state.options]
    assert "1. " in turn.replies[-1].text


def test_a_button_the_bot_did_not_give_is_read_as_its_text(engine):
    """A quick reply of a template sent from outside the bot (its own ids): the text counts."""
    turn, state = at_slot_offer(engine)
    _, after = talk(engine, state, "2", "promo_december")
    assert after.booking.at == "16:00"


def test_no_options_on_a_text_question_or_after_the_conversation_moved_on(engine):
    turn, state = talk(engine, ConversationState(), "mau booking")
    assert turn.replies[-1].options[0].id == "name:yes"
    turn, state = talk(engine, state, "bukan")
    assert turn.replies[-1].options == ()  # "Boleh tahu nama pasien?": typed
    stale, _ = talk(engine, state, "Ya", "name:yes")  # the name question was answered already
    assert stale.replies[0].text == engine.kb.texts["choice_stale"]


def test_the_name_buttons_keep_the_profile_name_or_ask_for_another(engine):
    turn, state = talk(engine, ConversationState(), "mau booking")
    yes, other = turn.replies[-1].options
    assert (yes.title, other.title) == ("Ya", "Bukan")
    _, kept = talk(engine, state, yes.title, yes.id)
    assert (kept.booking.step, kept.booking.name) == ("complaint", "Rina")
    _, asked = talk(engine, state, other.title, other.id)
    assert (asked.booking.step, asked.booking.name) == ("name", None)


@pytest.mark.parametrize(("index", "erased"), [(0, True), (1, False)], ids=["yes, erase", "no, keep"])
def test_the_erase_confirmation_has_buttons_that_erase_or_keep(engine, index, erased):
    """A destructive step asked with buttons too: "Ya, hapus" erases, "Tidak, simpan" keeps."""
    _, state = talk(engine, ConversationState(), "kapan klinik buka?")
    turn, state = talk(engine, state, "hapus data saya")
    offered = turn.replies[-1].options
    assert [o.id for o in offered] == ["erase:yes", "erase:no"]
    assert [o.title for o in offered] == ["Ya, hapus", "Tidak, simpan"]
    turn, state = talk(engine, state, offered[index].title, offered[index].id)
    assert [describe_action(a) for a in turn.actions] == (["erase_data"] if erased else [])
    assert turn.match.reason == ("erase_confirmed" if erased else "erase_cancelled")
    assert not turn.replies[-1].options and state.erase_asked_at is None


def test_a_danger_sign_typed_beside_a_tap_is_triaged_not_taken_as_the_tap(engine):
    """Bad input (a JSON channel can send text and a choice together): the words count."""
    turn, state = at_slot_offer(engine)
    tapped = turn.replies[-1].options[0]
    turn, _ = talk(engine, state, "nyeri dada hebat dan sesak napas sekarang", tapped.id)
    assert turn.triage.level.name == "EMERGENCY" and "119" in " ".join(r.text for r in turn.replies)
    stale, _ = talk(
        engine, ConversationState(), "nyeri dada hebat dan sesak napas sekarang", "slot:2026-11-27T09:00:00+07:00"
    )
    assert stale.triage.level.name == "EMERGENCY"
