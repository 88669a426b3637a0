"""The dialogue engine: state in, replies and actions out, pure."""

import subprocess
import sys
from dataclasses import replace
from datetime import datetime

import pytest

from bot.core import knowledge
from bot.core.dates import JAKARTA
from bot.core.dialogue import Engine
from bot.core.messages import ConversationState, Decision, Handoff, HandoffReason, Incoming, StartBooking


def talk(engine, *messages, state=None):
    """Send messages in order; return the list of turns."""
    state = state or ConversationState()
    turns = []
    for message in messages:
        incoming = message if isinstance(message, Incoming) else Incoming(message)
        turn = engine.step(state, incoming)
        turns.append(turn)
        state = turn.state
    return turns


def text_of(turn):
    return "\n".join(r.text for r in turn.replies)


def test_first_message_says_it_is_an_automated_assistant_once(engine):
    first, second = talk(engine, "knp betis kedutan trs", "gmn cara mencegahnya")
    assert "asisten otomatis" in first.replies[0].text
    assert len(first.replies) == 2
    assert first.match.intent == "causes"
    assert "asisten otomatis" not in text_of(second)
    assert second.match.intent == "prevention"


def test_first_hello_gets_the_introduction_and_the_menu(engine):
    (turn,) = talk(engine, "pagi kak")
    assert turn.match.intent == "greeting"
    assert "asisten otomatis" in turn.replies[0].text
    assert "1. Apa itu kedutan otot" in turn.replies[1].text
    assert turn.state.options == engine.kb.menu_items


def test_menu_is_numbered_and_accepts_numbers_and_number_words(engine):
    menu, pick, menu_again, pick_word = talk(engine, "menu", "8", "menu", "yang kedua")
    assert menu.match.intent == "menu"
    for index, intent_id in enumerate(engine.kb.menu_items, start=1):
        assert f"{index}. {engine.kb.intents[intent_id].title}" in text_of(menu)
    assert pick.match.intent == engine.kb.menu_items[7]
    assert pick.match.reason == "option"
    assert pick_word.match.intent == engine.kb.menu_items[1]


def test_number_outside_the_offered_options_keeps_them(engine):
    menu, wrong, right = talk(engine, "menu", "42", "1")
    assert "Balas angka 1 sampai 10" in text_of(wrong)
    assert wrong.state.options == menu.state.options
    assert right.match.intent == engine.kb.menu_items[0]


def test_follow_up_options_after_an_answer_accept_a_number(engine):
    causes, pick = talk(engine, "kenapa betis saya kedutan terus", "5")
    assert causes.state.options == engine.kb.intents["causes"].follow_up
    assert pick.match.intent == "cause_caffeine"


@pytest.mark.parametrize(
    "follow_up, expected",
    [
        ("kalau kopi?", "cause_caffeine"),
        ("klo teh?", "cause_caffeine"),
        ("kalau stres?", "cause_stress"),
        ("kurang minum?", "cause_dehydration"),
    ],
)
def test_short_follow_up_leans_on_the_previous_answer(engine, follow_up, expected):
    _, turn = talk(engine, "knp betis kedutan trs", follow_up)
    assert turn.match.decision is Decision.ANSWER
    assert turn.match.intent == expected


@pytest.fixture(scope="module")
def unclear(matcher):
    """A short message the shipped knowledge base is unsure about (asked "which one?")."""
    for text in ("betis", "kedutan", "kaki", "terus gimana", "jadi gimana", "yoga tiap pagi ngaruh ga ke betis?"):
        if matcher.match(text).decision is Decision.CLARIFY:
            return text
    pytest.fail("no short unsure message clarifies any more: check clarify_threshold and clarify_margin")


def test_clarify_question_offers_two_options_and_accepts_the_number(engine, unclear):
    ask, pick = talk(engine, unclear, "2")
    options = ask.state.options
    assert len(options) == 2
    assert f"1. {engine.kb.intents[options[0]].title}" in text_of(ask)
    assert f"2. {engine.kb.intents[options[1]].title}" in text_of(ask)
    assert pick.match.intent == options[1]
    assert pick.match.decision is Decision.ANSWER


def test_red_flag_is_answered_first_with_119_and_hands_off(engine):
    (turn,) = talk(engine, "halo kak, betis kedutan terus trs skrg dada nyeri bgt")
    assert turn.match.intent == "red_flag"
    assert "119" in text_of(turn)
    assert turn.actions == (Handoff(HandoffReason.URGENT, detail="chest_pain"),)


def test_booking_emits_start_booking(engine):
    (turn,) = talk(engine, "mau booking akupuntur besok jam 3")
    assert turn.match.intent == "booking"
    assert turn.actions == (StartBooking(),)


def test_asking_for_a_person_hands_off(engine):
    (turn,) = talk(engine, "bisa chat sama admin aja?")
    assert turn.match.intent == "human_agent"
    assert turn.actions == (Handoff(HandoffReason.HUMAN_AGENT),)


def test_two_misses_in_a_row_hand_off_to_staff(engine):
    first, second, third = talk(engine, "jual kuota internet?", "harga emas hari ini", "skor bola tadi malam")
    assert first.match.decision is Decision.FALLBACK and first.actions == ()
    assert "menu" in text_of(first)
    assert second.actions == (Handoff(HandoffReason.HUMAN_AGENT),)
    assert "staf" in text_of(second)
    assert third.actions == ()


def test_an_answer_resets_the_miss_count(engine):
    turns = talk(engine, "jual kuota internet?", "kenapa betis kedutan", "harga emas hari ini")
    assert [t.actions for t in turns] == [(), (), ()]


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_message_gets_a_friendly_prompt(engine, text):
    _, turn = talk(engine, "halo", text)
    assert "belum bisa saya baca" in text_of(turn)
    assert turn.actions == () and turn.state.misses == 0


@pytest.mark.parametrize("text", ["😀😀😀", "🙏", "👍", "...", "?!"])
def test_emoji_only_message_is_acknowledged(engine, text):
    _, turn = talk(engine, "halo", text)
    assert "Ada yang bisa saya bantu?" in text_of(turn)
    assert turn.actions == () and turn.state.misses == 0


def test_a_number_without_a_list_shows_the_menu(engine):
    (turn,) = talk(engine, "3")
    assert turn.match.intent == "menu" and "1. Apa itu kedutan otot" in text_of(turn)
    (pick,) = talk(engine, "3", state=turn.state)
    assert pick.match.intent == engine.kb.menu_items[2]


@pytest.mark.parametrize("digits", ["9" * 4301, "081234567890"], ids=["4301-digits", "phone-number"])
def test_a_long_number_is_not_taken_for_a_choice(engine, digits):
    """Regression (fuzzing): int() refuses more than 4,300 digits, and step() raised."""
    menu, number = talk(engine, "menu", digits)
    assert "Balas angka" not in text_of(number)
    assert number.replies and number.match.reason != "option"
    (alone,) = talk(engine, digits)
    assert alone.replies and alone.match.intent != "menu"


def test_a_long_number_while_choosing_a_slot_is_not_a_choice(engine):
    now = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)  # a Wednesday; the clinic is closed on Sunday
    state = ConversationState()
    for text in ("mau booking hari minggu jam 10", "Budi", "betis kedutan"):
        state = engine.step(state, Incoming(text), now).state
    assert state.booking.step == "pick_slot"
    picked = engine.step(state, Incoming("9" * 5000), now)
    assert picked.replies and picked.state.booking.step == "when"


def test_yes_to_a_numbered_question_asks_for_the_number(engine, unclear):
    ask, yes = talk(engine, unclear, "iya")
    assert "Balas angka 1 sampai 2" in text_of(yes)
    assert yes.state.options == ask.state.options


def test_urgent_advice_comes_before_the_introduction(engine):
    (turn,) = talk(engine, "betis saya kedutan dan tiba2 kaki kanan lemes ga bisa diangkat")
    assert "119" in turn.replies[0].text
    assert "asisten otomatis" in turn.replies[1].text


def test_thoughts_of_self_harm_get_the_crisis_line(engine):
    (turn,) = talk(engine, "udah cape bgt sama hidup, pengen mati aja, betis kedutan ga sembuh2")
    assert turn.match.intent == "crisis"
    assert "119 ext 8" in turn.replies[0].text
    assert turn.actions == (Handoff(HandoffReason.URGENT, detail="self_harm"),)


def test_salam_is_answered_with_salam(engine):
    (turn,) = talk(engine, "assalamualaikum kak, kenapa betis saya kedutan?")
    assert turn.match.intent == "causes"
    assert "Wa'alaikumsalam" in turn.replies[-1].text


def test_media_without_text_says_the_bot_reads_text_only(engine):
    _, turn = talk(engine, "halo", Incoming("", media_types=("image/jpeg",)))
    assert "hanya bisa membaca pesan teks" in text_of(turn)


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("image/jpeg", "Fotonya sudah kami terima"),
        ("application/pdf", "Dokumennya sudah kami terima"),
        ("video/mp4", "Videonya sudah kami terima"),
    ],
)
def test_an_attachment_with_a_caption_is_acknowledged_and_the_caption_answered(engine, kind, said):
    _, turn = talk(engine, "halo", Incoming("knp betis kedutan terus?", media_types=(kind,)))
    assert turn.match.intent == "causes"
    assert turn.replies[0].text.startswith(f"{said} 🙏\n") and "Kedutan di betis" in turn.replies[0].text


def test_a_voice_note_gets_a_kind_request_to_type(engine):
    _, turn = talk(engine, "halo", Incoming("", media_types=("audio/ogg",)))
    assert turn.match.reason == "voice_note"
    assert "belum bisa mendengarkan pesan suara" in text_of(turn) and "diketik" in text_of(turn)


def test_urgent_advice_comes_before_any_acknowledgement_of_a_photo(engine):
    _, turn = talk(engine, "halo", Incoming("betis kiri bengkak merah dan panas", media_types=("image/jpeg",)))
    assert turn.actions[0] == Handoff(HandoffReason.URGENT, detail=turn.actions[0].detail)
    assert "Fotonya" not in text_of(turn)


def test_long_message_is_handled(engine):
    story = "jadi gini kak ceritanya panjang " * 160 + " intinya betis kedutan terus itu karena kopi ya?"
    assert len(story) > 5000
    (turn,) = talk(engine, story)
    assert turn.match.decision in (Decision.ANSWER, Decision.CLARIFY, Decision.FALLBACK)
    assert turn.replies


def test_danger_sign_at_the_end_of_a_very_long_message_still_wins(engine):
    story = "betis kedutan terus dari kemarin " * 200 + " sekarang kaki kanan lumpuh"
    (turn,) = talk(engine, story)
    assert turn.match.intent == "red_flag"


def test_clinic_facts_are_filled_in(engine):
    (turn,) = talk(engine, "alamat klinik di mana")
    assert engine.kb.clinic.address in text_of(turn)
    assert "Senin–Jumat: 09.00–18.00" in text_of(turn)
    assert "Minggu: tutup" in text_of(turn)


def test_missing_clinic_fact_is_never_invented(kb):
    clinic = replace(kb.clinic, address=None, opening_hours={}, prices=())
    engine = Engine(replace(kb, clinic=clinic))
    _, info = talk(engine, "halo", "alamat klinik di mana")
    assert "staf kami akan menginformasikannya" in text_of(info)
    assert "Ketik *admin*" in text_of(info)
    assert "Jl." not in text_of(info)
    _, price = talk(engine, "halo", "berapa harga akupunktur")
    assert "Rp" not in text_of(price)
    assert "staf kami akan menginformasikannya" in text_of(price)


def test_an_unknown_parking_fact_leaves_its_line_out_and_an_unknown_home_visit_is_for_staff(kb):
    engine = Engine(replace(kb, clinic=replace(kb.clinic, parking=None, home_visit=None)))
    _, info = talk(engine, "halo", "alamat klinik di mana")
    assert "Parkir" not in text_of(info) and "Ketik *admin*" not in text_of(info)
    _, visit = talk(engine, "halo", "bisa home visit?")
    assert visit.match.intent == "home_visit"
    assert "staf kami akan menginformasikannya" in text_of(visit) and "Ketik *admin*" in text_of(visit)
    engine = Engine(replace(kb, clinic=replace(kb.clinic, home_visit="hanya untuk pasien lansia di Jakarta Barat")))
    _, visit = talk(engine, "halo", "bisa home visit?")
    assert "hanya untuk pasien lansia di Jakarta Barat" in text_of(visit) and "Ketik *admin*" not in text_of(visit)


def test_state_survives_a_round_trip_through_storage(engine):
    (turn,) = talk(engine, "menu")
    restored = ConversationState.from_dict(turn.state.to_dict())
    assert restored == turn.state
    (pick,) = talk(engine, "3", state=restored)
    assert pick.match.intent == engine.kb.menu_items[2]


def test_step_is_deterministic_and_does_not_change_its_input(engine):
    state = ConversationState()
    first = engine.step(state, Incoming("knp betis kedutan trs"))
    second = engine.step(state, Incoming("knp betis kedutan trs"))
    assert first == second
    assert state == ConversationState()


def test_core_imports_neither_flask_nor_twilio_nor_storage_nor_metrics():
    code = (
        "import sys; import bot.core.dialogue, bot.core.matcher, bot.core.normalize, bot.core.knowledge; "
        "bad = [m for m in ('flask', 'twilio', 'werkzeug', 'sqlalchemy', 'prometheus_client') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_patient_facing_indonesian_text_is_hard_coded_in_python():
    """Everything a patient reads lives in knowledge/*.yaml, where the clinic can edit it."""
    import ast
    import re
    from pathlib import Path

    indonesian = re.compile(r"\b(maaf|silakan|anda|kami|balas|terima kasih|mohon|ketik)\b", re.IGNORECASE)
    offenders = []
    for path in Path(knowledge.__file__).resolve().parent.parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and indonesian.search(node.value):
                offenders.append(f"{path.name}:{node.lineno}: {node.value[:60]!r}")
    assert offenders == []


def test_the_erase_question_takes_plain_yes_and_no_and_says_when_nothing_happened(engine):
    """The confirmation after "hapus data saya": every common yes erases, any no keeps, a real
    question lapses it, and anything else is asked again, saying nothing was deleted."""
    from datetime import datetime, timedelta

    from bot.core.dates import JAKARTA
    from bot.core.messages import EraseData

    now = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)

    def answer(reply, later=timedelta(0)):
        asked = engine.step(ConversationState(started=True), Incoming("hapus data saya"), now)
        assert asked.state.erase_asked_at
        return engine.step(asked.state, Incoming(reply), now + later)

    for yes in ("ya", "iya kak", "ok", "oke", "ya hapus aja", "gpp hapus aja", "iya hapus semuanya", "setuju"):
        assert answer(yes).actions == (EraseData(),), yes
    for no in ("tidak", "tidak, jangan dihapus", "ga jadi deh", "no", "batal", "jgn"):
        turn = answer(no)
        assert turn.actions == () and turn.match.reason == "erase_cancelled", no
    question = answer("kenapa betis kedutan")
    assert question.match.intent == "causes" and question.state.erase_asked_at is None
    unclear = answer("hmm")
    assert "belum* dihapus" in text_of(unclear) and unclear.state.erase_asked_at
    late = answer("ya", later=timedelta(minutes=11))
    assert late.actions == () and late.state.erase_asked_at is None


def test_privacy_questions_without_the_command_words_are_answered_not_crashed(engine):
    for text in (
        "info pribadi saya disimpan ga?",
        "nomor hp saya kalian simpen ga",
        "tolong hapusin nomor sy dr sistem",
    ):
        (turn,) = talk(engine, text)
        assert turn.match.intent in ("privacy_data", "privacy_erase"), text
    (turn,) = talk(engine, "hapus janji saya")
    assert turn.match.intent == "fallback" and not turn.state.erase_asked_at
