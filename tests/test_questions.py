"""Several questions in one message: each found, each answered in the order asked, a booking
started after the answers, a danger sign first and alone, the unclear part asked about, and
bad input (five questions, the same one twice, a sticker, 5,000 characters) never an error."""

import pytest

from bot.core.messages import ConversationState, Decision, Handoff, HandoffReason, Incoming, StartBooking
from bot.core.questions import MAX_ANSWERS
from bot.quality import evaluation
from bot.quality.evaluation import REFERENCE_NOW


def first_message(engine, text, **incoming):
    return engine.step(ConversationState(), Incoming(text, **incoming), REFERENCE_NOW)


def answered(turn) -> list[str]:
    return [m.intent for m in turn.questions if m.decision is Decision.ANSWER]


@pytest.mark.parametrize(
    "text, intents",
    [
        ("harga akupuntur berapa? terus alamatnya di mana?", ["pricing", "clinic_info"]),
        ("1. buka jam brp\n2. bisa bpjs ga", ["clinic_info", "insurance_bpjs"]),
        ("halo kak, kopi bikin betis kedutan ga? sama biar ga kambuh gimana ya", ["cause_caffeine", "prevention"]),
        # A part listed after a comma with a joining word asks what the part before asked.
        ("tolong kasih tau jam buka hari minggu, sama harga bekam", ["clinic_info", "pricing"]),
        # Two questions typed with nothing between them.
        ("brp tarif akupunktur skrg terapisnya bisa dateng ke rumah gak", ["pricing", "home_visit"]),
        ("kedutan otot tuh sebenernya apaan sih mau daftar buat sabtu besok bisa", ["about_twitching", "booking"]),
        # A part that only adds a condition, but about another topic.
        ("kurang magnesium bikin kedutan ya? kalo jarang minum air?", ["cause_electrolyte", "cause_dehydration"]),
        # ... or a narrower topic of the question before: that question narrowed.
        ("knp betis sy kedutan kalo lg banyak pikiran? gmn biar gk kambuh?", ["cause_stress", "prevention"]),
        # A first half that ends as a yes/no question, then a second one.
        ("kurang kalsium bisa bikin kedutan gak sih akupunktur bisa bantu ga", ["cause_electrolyte", "tcm_treatment"]),
        # A part joined by "trus" that asks with a tag ("kan").
        ("lagi menyusui boleh diakupuntur gk trus jarumnya steril kan", ["pregnancy_breastfeeding", "needle_hygiene"]),
        # Run together in five words; a first half ending with the tag "ya".
        ("bpjs bisa gak terapisnya siapa aja", ["insurance_bpjs", "practitioner"]),
        ("kopi bikin kedutan ya brp biaya akupunturnya", ["cause_caffeine", "pricing"]),
    ],
)
def test_each_question_is_found_in_the_order_asked(engine, text, intents):
    questions = engine.questions.find(text, engine.matcher.match(text))
    assert [q.match.intent for q in questions] == intents


@pytest.mark.parametrize(
    "text",
    [
        "kenapa betis kedutan terus ya",  # "terus" here is "all the time", not "and then"
        "betis saya kedutan, kenapa ya?",  # a story and its question are one question
        "halo kak, harga akupuntur berapa? makasih",  # a greeting and thanks are not questions
        "saya mau konsultasi langsung sama sinshe lewat chat",  # "sama" here is "with"
        # No cut where one reading is surer as a whole, nor after a word that waits for more.
        "hormon stres bs bikin kontraksi otot betis?",
        "kalsium rendah bs bikin otot kedut?",
        "harga akupuntur brp? kalau 5 sesi?",  # the condition belongs to the price
        "pola hidup yg bener biar otot betis ga kedutan tu kyk gmn",  # "biar ... ga" negates, it does not ask
        "bukan soal harga ya, tapi jarum bekasnya dibuang atau dipakai lagi?",  # what is not asked
    ],
)
def test_one_question_stays_one(engine, text):
    questions = engine.questions.find(text, engine.matcher.match(text))
    assert len(questions) == 1 and questions[0].text == text
    assert first_message(engine, text).questions == ()


def test_two_answers_come_as_two_messages_in_order_without_repeating_the_introduction(engine):
    turn = first_message(engine, "harga akupuntur berapa? terus alamatnya di mana?")
    assert answered(turn) == ["pricing", "clinic_info"]
    texts = [r.text for r in turn.replies]
    assert "asisten otomatis" in texts[0] and "Rp" in texts[1] and "Jl." in texts[2]
    assert sum("asisten otomatis" in t for t in texts) == 1
    # The follow-ups offered do not offer again what was just answered.
    assert "pricing" not in turn.state.options and turn.state.options


def test_a_booking_request_beside_a_question_is_started_after_the_answer(engine):
    turn = first_message(engine, "akupuntur bisa bantu kedutan? sekalian mau daftar akupuntur besok jam 3 sore")
    assert answered(turn) == ["tcm_treatment", "booking"]
    assert any(isinstance(a, StartBooking) for a in turn.actions)
    assert turn.state.booking is not None
    assert "akupunktur" in turn.replies[1].text.lower() and "nama" in turn.replies[-1].text.lower()


def test_a_practical_fact_requested_beside_a_booking_is_answered_before_it_starts(engine):
    """ "sama tolong info alamatnya" only requests, but the address is no detail of the booking."""
    turn = first_message(engine, "mau daftar akupuntur sabtu jam 10 ya, sama tolong info alamat kliniknya")
    assert answered(turn) == ["clinic_info", "booking"]
    assert turn.state.booking is not None


def test_a_danger_sign_beside_a_question_comes_first_and_alone(engine):
    turn = first_message(engine, "harga paket akupuntur brp? oiya suami saya dari tadi pagi mulutnya mencong")
    assert any(isinstance(a, Handoff) and a.reason is HandoffReason.URGENT for a in turn.actions)
    assert "119" in turn.replies[0].text
    assert not any("Rp" in r.text for r in turn.replies)


def test_the_clear_question_is_answered_and_the_unclear_one_asked_about(engine):
    turn = first_message(engine, "harga akupuntur brp? terus kalau betisnya aneh gimana?")
    assert answered(turn) == ["pricing"]
    assert [m.decision for m in turn.questions] == [Decision.ANSWER, Decision.CLARIFY]
    assert "Rp" in turn.replies[1].text
    assert engine.text("clarify_other") in turn.replies[-1].text
    assert len(turn.state.options) == 2  # a number picks one


def test_five_questions_get_the_first_three_answers_and_a_note_naming_the_rest(engine):
    text = (
        "1. buka jam brp 2. harga akupuntur brp 3. bisa home visit 4. kopi bikin kedutan ga 5. gimana cara mencegahnya"
    )
    turn = first_message(engine, text)
    assert answered(turn) == ["clinic_info", "pricing", "home_visit"]
    assert len(answered(turn)) == MAX_ANSWERS
    note = turn.replies[-1].text
    for skipped in ("cause_caffeine", "prevention"):
        assert engine.kb.intents[skipped].title in note


def test_the_same_question_twice_is_answered_once(engine):
    turn = first_message(engine, "harga akupuntur berapa? biaya akupunturnya berapa ya? terus alamatnya di mana?")
    assert answered(turn) == ["pricing", "clinic_info"]


def test_a_question_with_a_sticker_and_a_very_long_message_are_answered(engine):
    turn = first_message(engine, "harga akupuntur berapa? terus alamatnya di mana?", media_types=("image/webp",))
    assert answered(turn) == ["pricing", "clinic_info"]
    long = (
        "betis saya pegal sekali setelah kerja seharian. " * 110
    ) + "harga akupuntur berapa? terus alamatnya di mana?"
    assert len(long) > 5000
    turn = first_message(engine, long)
    assert turn.replies and all(r.text for r in turn.replies)


def test_a_narrower_topic_answers_its_broader_one(engine):
    """ "kopi bikin kedutan? ... kenapa betis kedutan": the caffeine answer is the cause asked."""
    turn = first_message(engine, "kenapa betis kedutan ya? apa gara2 kopi?")
    assert "causes" not in answered(turn)


def test_evaluation_counts_messages_with_every_question_answered(engine):
    items = [
        evaluation.Labelled("harga akupuntur berapa? terus alamatnya di mana?", "pricing", 1, ("clinic_info",)),
        evaluation.Labelled("harga akupuntur berapa?", "pricing", 2, ("home_visit",)),
        evaluation.Labelled("alamatnya di mana?", "clinic_info", 3),
    ]
    summary = evaluation.summarize(evaluation.run(engine, items))
    assert summary["several_questions"] == 2
    assert summary["all_answered"] == 0.5 and summary["some_answered"] == 0.5 and summary["none_answered"] == 0
    assert summary["extra_answers"] == 0


def test_two_privacy_requests_are_both_taken_up(engine):
    """ "what do you keep? and how do I erase it": the summary, then the erase question (a flow
    that waits for the patient, so it comes last)."""
    turn = first_message(engine, "data sy disimpen apa aja? trs cara hapusnya gmn")
    assert answered(turn) == ["privacy_data", "privacy_erase"]
    assert [type(a).__name__ for a in turn.actions] == ["ReportData"]
    assert turn.state.erase_asked_at is not None
    assert "ya hapus" in turn.replies[-1].text


def test_only_the_last_answer_offers_follow_ups(engine):
    turn = first_message(engine, "kopi bikin kedutan ga? trus kalo kurang minum ngaruh juga?")
    assert engine.text("follow_up_prompt") not in turn.replies[-2].text
    assert engine.text("follow_up_prompt") in turn.replies[-1].text


def test_two_flows_at_once_are_read_as_one_message(engine):
    """A booking and an erasure both wait for the patient: the message is read as one, never
    one flow dropped as "too long"."""
    turn = first_message(engine, "hapus data saya, terus mau booking akupuntur besok jam 10")
    assert len(turn.questions) <= 1
    assert engine.text("questions_skipped").split("(")[0] not in " ".join(r.text for r in turn.replies)


@pytest.mark.parametrize(
    "text",
    [
        "mau ngomong sama orang, terus alamatnya dmn, sama bisa daftar buat besok",
        # "sama admin" ends the request before it; it must not swallow the address after it.
        "mau ngomong sama admin, terus alamatnya dmn, sama bisa daftar buat besok",
    ],
)
def test_a_request_for_staff_takes_the_other_flows_along(engine, text):
    """Beside "mau ngomong sama admin", a booking goes to staff with the chat: the patient is
    told so, right before the handoff, and the other questions are still answered first."""
    turn = first_message(engine, text)
    assert answered(turn) == ["clinic_info", "booking", "human_agent"]
    assert [type(a) for a in turn.actions] == [Handoff] and turn.actions[0].reason is HandoffReason.HUMAN_AGENT
    texts = [r.text for r in turn.replies]
    also = engine.text("handoff_also").replace("{topics}", engine.kb.intents["booking"].title)
    assert texts.index(also) == len(texts) - 2 and "staf" in texts[-1]
    assert not any(isinstance(a, StartBooking) for a in turn.actions)


def test_the_booking_reads_the_whole_message(engine):
    turn = first_message(engine, "harga akupuntur brp? saya mau booking, besok jam 10 bisa?")
    assert answered(turn) == ["pricing", "booking"]
    assert (turn.state.booking.day, turn.state.booking.at) == ("2026-11-26", "10:00")


def test_a_date_with_a_full_stop_is_not_a_list_number(engine):
    assert engine.questions.pieces("mau booking tanggal 28. terus alamatnya dimana?")[0] == "mau booking tanggal 28"


@pytest.mark.parametrize(
    "text", ["kedutan terus menerus bahaya ga?", "betis kedutan, bahaya ga?", "harga akupuntur brp kalau 5 sesi?"]
)
def test_a_statement_beside_a_question_is_not_a_second_question(engine, text):
    assert first_message(engine, text).questions == ()


def test_questions_after_a_long_story_are_read(engine):
    story = ", ".join(["jadi gini kak", "saya umur 45", "kerja kantoran", "tiap hari naik krl", "berdiri lama"] * 3)
    turn = first_message(engine, f"{story}. kira2 penyebab kedutan betis apa? terus harga akupuntur brp?")
    assert answered(turn) == ["causes", "pricing"]


def test_an_answer_the_bot_could_not_give_is_not_counted_as_answered(engine):
    turn = first_message(engine, "alamatnya dimana? terus hapus jadwal saya")
    assert answered(turn) == ["clinic_info"]


def test_the_menu_before_a_booking_lists_its_topics_without_numbers(engine):
    """The booking asks the next question, so the menu's topics come as a list to read, not
    numbers to pick (a number would answer the booking)."""
    turn = first_message(engine, "bisa bantu apa aja? terus saya mau booking akupuntur hari selasa")
    assert answered(turn) == ["menu", "booking"]
    assert [type(a) for a in turn.actions] == [StartBooking]
    menu = next(r.text for r in turn.replies if engine.kb.intents["about_twitching"].title in r.text)
    assert "• " + engine.kb.intents["about_twitching"].title in menu and "1." not in menu
    assert engine.kb.menu_prompt not in menu and turn.state.options == ()


def test_a_broad_question_and_a_narrower_one_get_the_narrower_answer(engine):
    """ "Kenapa kedutan? Apa karena stres?": the answer about stress, which tells why."""
    turn = first_message(engine, "kenapa betis kedutan terus ya? apa karena stres?")
    assert (turn.match.intent, turn.questions) == ("cause_stress", ())
    assert engine.kb.intents["cause_stress"].part_of == "causes"
