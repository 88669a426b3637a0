"""Triage: three levels, rules first with their modifiers, a second net that only raises, and
every case the triage issue named, through the engine as a patient's first message."""

from dataclasses import replace

import pytest
from conftest import KNOWLEDGE

from bot.core import knowledge
from bot.core.messages import ConversationState, Decision, Handoff, HandoffReason, Incoming
from bot.core.triage import NONE, Assessment, Level
from bot.quality.evaluation import REFERENCE_NOW


def first_message(engine, text):
    return engine.step(ConversationState(), Incoming(text), REFERENCE_NOW)


def level_of(engine, text) -> Level:
    turn = first_message(engine, text)
    urgent = any(isinstance(a, Handoff) and a.reason is HandoffReason.URGENT for a in turn.actions)
    assert urgent == (turn.triage.level is Level.EMERGENCY), text  # the reply agrees with the triage
    return turn.triage.level


@pytest.mark.parametrize(
    "text",
    [
        # Under-triage the issue found, each now an emergency.
        "betis kiri bengkak dan nyeri, ga merah kok",  # one swollen painful calf without redness
        "anak saya kejang kejang",
        "abis lari maraton kencing warna kayak cola, otot paha sakit banget",
        "kaki digips, sakitnya makin parah dan jari kaki kesemutan",
        "seminggu lalu kaki ketusuk paku karatan, sekarang rahang kaku susah buka mulut",
        "jantung berdebar kencang sekali dan badan lemas mau pingsan",
        # Written in English, or with the sign only at the end of a long message, or alone.
        "my father's face is drooping on one side and his speech is slurred",
        "after taking the herbal capsules my lips and tongue are swollen",
        "pingsan",
        "punggung bawah sakit, sekarang ngompol ga kerasa dan kaki lemas",
        "anak 4 tahun panas tinggi, lehernya kaku",
        "betis 🦵 bengkak 😭 sebelah 😭 nyeri",
        "saya mau cerita dulu ya kak. " * 160 + "barusan ayah saya pingsan di kamar mandi",
        # Found in review: "pegel" does not cancel chest pain; misspelt symptoms are symptoms;
        # a rule's words repeated many times, then a sign.
        "dada kiri sakit dan lengan kiri pegel, keringat dingin",
        "ayah tidak sadarkn diri",
        "kaki kiri lumpu",
        "sakit jalan istirahat hilang " * 40 + "lalu pingsan",
        "bapak saya epilepsinya kambuh dari tadi, belum sadar",  # an epileptic attack happening
        "istri ayan kumat di dapur",
        # Found in review (round 8): laughing, a period or a machine at work cancel nothing.
        "anak sy lg ketawa tiba2 kelojotan",
        "epilepsi adik sy kumat td pas ngakak nonton youtube",
        "anak gadis sy tiba2 pingsan di sekolah, tiap mens nyeri",
        "jari suami putus kena mesin pas lembur kerjaan di pabrik",
        "kedutan normal ga kaki sy lemah sebelah sejak tadi pagi",
        # Round 9: a crisis told indirectly, a nosebleed on warfarin, a large burn, coffee-ground vomit.
        "bapak sejak ibu meninggal gak mau makan, kemarin bilang bentar lagi bapak nyusul ibu",
        "aku udah di atap gedung kantor. cuma mau bilang makasih ya udah baik sama aku",
        "adik bilang ada suara nyuruh dia loncat dari jendela",
        "nenek minum warfarin, mimisan ga berhenti udah sejam",
        "punggung melepuh kena bekam api, kulitnya ngelupas putih",
        "kakek muntah item kayak ampas kopi",
        # Found in review: a visit that did not help is not "better"; a drama or a queue cancels no faint.
        "udah ke dokter 2 hari lalu, kok bisa ga membaik ya, dada kiri nyeri tembus ke lengan",
        "nenek tadi pingsan pas nonton sinetron",
        "adik sy udah 3 hari ga tidur, ngamuk bawa pisau abis main game, ngancam bunuh ibu",
        "bapak mimisan udah 30 menit, tadi sempet berhenti sendiri trus keluar lagi deras",
        "obat tidur mama udah aku ambil semua, nanti malem aku minum",
        "ga kuat ama semuanya",
        # Found by a tester chatting as patients.
        "maaf ya semua kalau sy ada salah, selamat tinggal, tolong jagain anak2 sy",
        "idung berdarah terus ga mau berenti, lg minum obat pengencer darah",
        "abis bekam api kulit punggung melepuh lebar bgt segede telapak tangan",
        # Found by a safety review: a return after discharge, a seizure told with a nervous
        # laugh, a faint with a quick recovery, a choking whose cough stays, a crisis in Sundanese.
        "anak sy dibawa ke igd tadi malam krn kejang demam, boleh pulang. pagi ini main, tp siang ini kejang lagi",
        "maaf ganggu malam2 hehe, anak saya barusan kejang, badannya panas",
        "anak sy 14 th pingsan pas lari di lapangan, langsung seger",
        "anak tersedak pas makan tadi siang, langsung lega, sekarang malam batuk terus dan napasnya berbunyi",
        "hamil 7 bulan, sesak banget dari tadi malam, miring kiri juga tetap sesak",
        "hamil 5 minggu flek dan nyeri perut hebat sebelah kiri",
        "aing hayang maot",
        "maaf dok ganggu hehe, bapak saya nyeri dada sejak 1 jam",  # "hehe" is politeness, not a joke
    ],
)
def test_emergencies_go_to_the_igd_first(engine, text):
    assert level_of(engine, text) is Level.EMERGENCY


@pytest.mark.parametrize(
    "text",
    [
        "kalo lagi menyusui boleh minum herbal buat pegal?",  # "menyusui" is not "menyusut"
        "habis lari ngos ngosan, betis pegel, normal kan?",
        "saya operasi caesar 3 tahun lalu, sekarang betis suka kram",
        "kemarin latihan dada berat di gym, sekarang betis juga pegal",
        "susah bicara sama suami soal berobat, dia ga mau ke klinik",
        "harganya bikin pingsan ga kak akupunkturnya?",
        "betis digigit nyamuk jadi bengkak dikit",
        "tiap malam kaki rasanya gelisah pengen digerak-gerakin terus",
        "ban motor kempes jadi telat, boleh mundur jamnya?",
        "jalanan lumpuh total karena banjir, saya reschedule ya",
        "saya tidak bisa berdiri lama karena kerja",
        "betis kiri bengkak merah. kayaknya digigit nyamuk",  # `unless` of an anywhere rule: the whole message
        "lagi menyusui, boleh minum jamu pegal linu?",
        "naik tangga kantor 6 lantai karena lift mati, ngos2an, skrg betis pegel",  # exertion in the clause before
        "kmrn pingsan? engga kok, cuma pusing dikit pas berdiri cepet",  # the sign repeated as a question, then denied
        "kemeja sy kekecilan, sesak di perut. ada herbal buat langsing?",
        "arti mimpi digigit ular apa ya kak",  # a dream, not a bite
        "saya penderita epilepsi, boleh ikut terapi akupunktur?",  # a condition named, asked about care
        "susah menelan kapsul herbal yang besar, ada bentuk lain?",  # a pill too big, not a sign
        "kaki rasanya mau putus abis jalan jauh, pegel bgt, bisa pijat?",  # a figure of speech
        "aku ketawa sampe kejang2 baca chat kamu",
        "pengen ketabrak jodoh aja deh 😂",
        "abis pijat betis agak nyeri kalo dipencet, tp jalan normal, ga bengkak",  # "normal ga" here denies
        "kondisinya aman, ga ada nyeri dada",
        "ibu saya wafat 2 bulan lalu, adik nanti nyusul ke klinik jam 3 ya",
        "lagi jemur baju di atap, makasih udah bales kak",
        "bawa pisau buat potong kue",
        "mimisan 20 menit, skrg udah mampet kok",
        "melepuh di jari, kulitnya putih dikit",
        "selamat tinggal 2026, semoga tahun depan lebih baik",
    ],
)
def test_look_alikes_raise_no_alarm(engine, text):
    assert level_of(engine, text) is not Level.EMERGENCY


def test_no_after_a_question_is_no_alarm(engine):
    """ "tidak kok" answering a question about a danger sign is a no, not a sign."""
    state = first_message(engine, "kedutan gini bahaya ga sih?").state
    turn = engine.step(state, Incoming("tidak kok, ga sesak"), REFERENCE_NOW)
    assert turn.triage.level is not Level.EMERGENCY and not turn.actions


@pytest.mark.parametrize(
    "text, rule",
    [
        ("betis kedutan udah 3 minggu ga ilang", "long_twitching"),
        ("kedutannya sekarang pindah ke lengan sama pipi juga", "spreading_twitching"),
        ("otot betis kanan makin kecil dibanding kiri", "muscle_wasting"),
        ("ayah 65 th akhir-akhir ini sering tersandung kalau jalan", "stumbling_more"),
        ("sejak minum obat kolesterol betis sering kram", "cramps_on_new_medicine"),
        # Signs that sound acute but came slowly, over weeks: a doctor soon, not the IGD.
        ("sering keselek kalau minum, makin lama makin sering sebulan ini", "choking_often"),
        ("suami ngorok keras, suka berenti napas pas tidur, siang ngantuk terus", "sleep_apnoea"),
        ("anakku 2 th belum bisa jalan dan belum ada kata2", "late_to_walk_or_talk"),
        ("sy hamil 20 mgg, mau akupuntur buat mual. ada flek2 dikit 3 hari ini", "spotting_in_pregnancy"),
        ("saya cuci darah, boleh makan pisang buat kram betis?", "kidney_disease_diet"),
        ("sy hepatitis b, boleh minum ramuan herbal?", "herbs_with_liver_disease"),
        # "boleh ga ..." asks; it does not deny what follows.
        ("boleh gak minum jamu sambil minum warfarin?", "herbs_with_blood_thinner"),
        ("abis bekam kulit melepuh", "burn_blister"),
    ],
)
def test_the_middle_level_says_see_a_doctor_and_still_answers(engine, text, rule):
    turn = first_message(engine, text)
    assert (turn.triage.level, turn.triage.rule) == (Level.DOCTOR, rule)
    assert not turn.actions
    advice, answer = next(r.text for r in turn.replies if "periksa ke dokter" in r.text).split("\n\n", 1)
    assert "bukan keadaan darurat" in advice and "IGD" in advice  # the advice, then the answer
    assert answer.strip() and "periksa ke dokter dalam beberapa hari ini" not in answer


def test_a_typo_never_makes_or_unmakes_a_symptom(engine):
    """Repair may correct "menyusui" for the intent model; triage counts only what was typed."""
    reading = engine.matcher.read("menyusui")
    assert engine.triage.by_rules(reading)[0] == NONE
    assert engine.assess("sesak")[0].level is Level.EMERGENCY  # typed as a symptom: stays one


def test_the_second_net_raises_and_lowers_only_a_lasting_complaint(engine):
    emergency = Assessment(Level.EMERGENCY, "fainting", "red_flag", None, 1.0)
    calm = {"emergency": 0.0, "crisis": 0.0, "doctor": 0.0, "none": 1.0}
    assert engine.triage.decide(emergency, calm) is emergency
    alarmed = {**calm, "emergency": 0.99}
    raised = engine.triage.decide(NONE, alarmed)
    assert (raised.level, raised.rule, raised.intent) == (Level.EMERGENCY, "model", "red_flag")
    doctor = Assessment(Level.DOCTOR, "long_twitching", None, "kedutan", 1.0)
    assert engine.triage.decide(doctor, {**calm, "doctor": 0.99}) is doctor
    assert engine.triage.decide(NONE, {**calm, "crisis": 0.99}).intent == "crisis"
    # Not raised above a doctor rule in a message that tells the complaint came over weeks.
    slow = replace(doctor, lasting=True)
    assert engine.triage.decide(slow, alarmed) is slow
    # Lowered: a rule's emergency told as lasting weeks, the net sure it is a doctor's visit.
    sure = {**calm, "doctor": 0.99, "none": 0.0}
    lasting = replace(emergency, lasting=True)
    lowered = engine.triage.decide(lasting, sure)
    assert (lowered.level, lowered.rule, lowered.intent) == (Level.DOCTOR, "model", None)
    # ... never without the lasting words, never below the threshold or when the net is as sure
    # of an emergency, and never thoughts of suicide.
    assert engine.triage.decide(emergency, sure) is emergency
    threshold = engine.kb.settings.lasting_threshold
    assert engine.triage.decide(lasting, {**sure, "doctor": threshold - 0.01}) is lasting
    assert engine.triage.decide(lasting, {**sure, "emergency": 0.99}) is lasting
    crisis = Assessment(Level.EMERGENCY, "suicidal_thoughts", "crisis", None, 1.0, lasting=True)
    assert engine.triage.decide(crisis, sure) is crisis


@pytest.mark.parametrize(
    "text",
    [
        "kebas di ujung jari kaki makin lama makin naik sejak 2 bulan, abis kemoterapi",
        "sudah sebulan sering hampir pingsan kalau berdiri terlalu cepat",
    ],
)
def test_a_sign_that_came_slowly_over_weeks_is_a_doctors_visit(engine, text):
    assert engine.triage.by_rules(engine.matcher.read(text))[0].level is Level.EMERGENCY  # a rule alone would alarm
    assert level_of(engine, text) is Level.DOCTOR


@pytest.mark.parametrize(
    "text",
    [
        "kedutan betis udah sebulan, tapi barusan bapak tiba2 ngomongnya pelo dan mukanya mencong",
        "udah 3 minggu betis pegel, dari kemarin betis kiri doang bengkak dan nyeri, yg kanan biasa",
        "sebulan ini sering pusing, tadi pagi pingsan di kamar mandi dan belum sadar penuh",
    ],
)
def test_a_sudden_sign_in_a_long_story_keeps_its_alarm(engine, text):
    assert level_of(engine, text) is Level.EMERGENCY


def test_an_urgent_alert_tells_staff_what_raised_it(engine):
    turn = first_message(engine, "betis kiri bengkak dan nyeri")
    (handoff,) = turn.actions
    assert (handoff.reason, handoff.detail) == (HandoffReason.URGENT, "one_swollen_calf")


def test_a_sign_told_over_two_messages_is_completed(engine):
    state = first_message(engine, "betis sakit bgt kak").state
    assert state.danger_parts
    turn = engine.step(state, Incoming("minggu lalu abis operasi lutut"), REFERENCE_NOW)
    assert turn.triage.level is Level.EMERGENCY and turn.triage.rule == "leg_pain_after_surgery"


@pytest.mark.parametrize(
    "text, sign",
    [
        ("kaki tiba2 lemes", "sudden_weakness"),
        ("kaki kanan lumpuh", "paralysis"),
        ("kaki ga bisa digerakin", "cannot_move_leg"),
        ("kesemutan menjalar ke paha", "spreading_numbness"),
        ("betis tiba2 bengkak sebelah", "one_swollen_calf"),
        ("betis bengkak merah panas", "one_swollen_calf"),
        ("dada nyeri", "chest_pain"),
        ("sesak nafas", "short_of_breath"),
        ("tadi sempet pingsan", "fainting"),
        ("susah nelen", "trouble_swallowing_or_speaking"),
        ("ngomongnya pelo", "slurred_speech"),
        ("betis nyeri setelah operasi lutut", "calf_pain_after_surgery"),
        # A sign marked `anywhere`: its words in different sentences of one message.
        ("betis sakit bgt kak, sblmnya abis operasi lutut", "leg_pain_after_surgery"),
        ("betis kiri nyeri. minggu lalu saya dioperasi", "leg_pain_after_surgery"),
        ("btis skt bgt. mgg lalu oprasi lutut", "leg_pain_after_surgery"),
        ("betis nyeri. post op lutut 3 hari", "leg_pain_after_surgery"),
        ("betis sakit bgt. abis dibedah minggu lalu", "leg_pain_after_surgery"),
        ("anak demam 3 hari, betis nyeri, ada bintik merah", "fever_with_spots_or_bleeding"),
        ("demam sejak kemarin. tadi mimisan", "fever_with_spots_or_bleeding"),
        ("anak sy demam tinggi dan betisnya sakit", "fever_with_calf_pain"),
        ("tetangga sy tergeletak di teras, ga napas", "not_breathing"),
        ("kakek tidak bernapas dan tidak sadar", "not_breathing"),
        ("ayah henti jantung di rumah", "not_breathing"),
        ("bayi 1 bulan berat badannya turun, muntah hijau", "green_vomit_in_a_baby"),
    ],
)
def test_every_emergency_rule_is_recognised(engine, text, sign):
    turn = first_message(engine, text)
    assert (turn.match.intent, turn.match.decision, turn.triage.level) == ("red_flag", Decision.ANSWER, Level.EMERGENCY)
    assert turn.match.reason == f"triage:{sign}", turn.match


def test_pain_and_an_operation_apart_are_a_danger_sign_only_for_the_leg(engine):
    """Post-operative rehabilitation patients are this clinic's own: back pain and an old
    appendix operation in one message must not send them to the emergency department."""
    for text in (
        "Dulu pernah operasi usus buntu 5 tahun lalu. Sekarang punggung sakit kalau duduk lama, bisa fisio?",
        "anak saya sakit demam. sekalian mau tanya ada dokter bedah?",
    ):
        assert rules_found(engine, text) == (), text


def test_a_sign_allowed_anywhere_still_respects_a_negation(engine):
    assert rules_found(engine, "betis ga sakit kok, cuma mau tanya abis operasi boleh akupuntur?") == ()
    # Other signs still need their words close together: chest pain is not "dada" and "sakit" apart.
    assert rules_found(engine, "abis latihan dada di gym. besoknya betis sakit") == ()
    assert rules_found(engine, "betis sakit tapi ga demam") == ()
    # A body part is not a symptom that can be denied: "gak sih betis" leaves "betis" in the message.
    assert (
        engine.matcher.match("normal gak sih betis kedutan kyk ada yg gerak2 di bawah kulit").intent
        == "about_twitching"
    )


@pytest.mark.parametrize(
    "text",
    [
        "halo kak mau nanya kopi bikin kedutan ga, soalnya skrg dada sakit",
        "makasih infonya. btw kaki kiri tiba2 lemes ga bisa gerak",
        "mau booking besok, tp sekarang sesak napas",
    ],
)
def test_an_emergency_anywhere_wins_over_every_other_intent(engine, text):
    assert first_message(engine, text).match.intent == "red_flag"


def rules_found(engine, text) -> tuple[str, ...]:
    reading = engine.matcher.read(text)
    return engine.triage.rules.find(reading.sentences, reading.clauses, reading.resolved)


def problems_of(directory) -> list[str]:
    with pytest.raises(knowledge.KnowledgeError) as raised:
        knowledge.load(directory)
    return [str(p) for p in raised.value.problems]


def line_of(path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if needle in line)


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "    level: doctor\n    note: kedutan yang sudah",
            "    level: soon\n    note: kedutan yang sudah",
            "unknown level 'soon'",
        ),
        ("$long_ago, kempes, sore sore", "$long_agoo, kempes, sore sore", "unknown term list '$long_agoo'"),
        (
            "      - [kedutan, kedut, berkedut, twitch, twitching, twitches, fasikulasi]\n",
            "      - []\n",
            "every group of all_of needs at least one term",
        ),
        (
            "  - id: choking\n    level: emergency\n    if_lasting: doctor\n",
            "  - id: choking\n    level: emergency\n    if_lasting: soon\n",
            "if_lasting can only be 'doctor'",
        ),
    ],
)
def test_a_mistake_in_the_rules_names_file_and_line(kb_copy, old, new, message):
    path = kb_copy / "triage.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    problems = problems_of(kb_copy)
    assert any(p.startswith("knowledge/triage.yaml:") and message in p for p in problems), problems


def test_every_rule_names_an_intent_that_alerts_staff(kb):
    for rule in kb.triage_rules:
        if rule.level == "emergency":
            assert kb.intents[rule.intent].action == "handoff_urgent", rule.id
    assert {rule.level for rule in kb.triage_rules} == {"emergency", "doctor"}
    assert (KNOWLEDGE / "triage.yaml").is_file() and not (KNOWLEDGE / "danger_signs.yaml").exists()


def test_thresholds_come_from_the_knowledge(kb, engine):
    stricter = replace(kb.settings, emergency_threshold=1.01, doctor_threshold=1.01)
    calm = engine.triage.decide(NONE, {"emergency": 0.99, "crisis": 0.0, "doctor": 0.99, "none": 0.0}, stricter)
    assert calm == NONE


# -- the conversation around an emergency ------------------------------------------------------


def test_after_thoughts_of_suicide_the_follow_up_repeats_the_crisis_line(engine):
    state = first_message(engine, "udah cape bgt sama hidup, pengen mati aja").state
    turn = engine.step(state, Incoming("ga ada yang peduli"), REFERENCE_NOW)
    text = "\n".join(r.text for r in turn.replies)
    assert "119 ext 8" in text and "bukan di klinik kami" not in text


def test_privacy_commands_are_answered_after_an_emergency(engine):
    state = first_message(engine, "dada saya nyeri banget").state
    turn = engine.step(state, Incoming("hapus data saya"), REFERENCE_NOW)
    assert turn.match.intent == "privacy_erase" and turn.state.erase_asked_at


def test_a_staff_reply_ends_the_urgent_reminders(engine):
    from bot.core.messages import StaffView

    state = first_message(engine, "dada saya nyeri banget").state
    later = REFERENCE_NOW.replace(hour=11)
    staff = StaffView(has_chat=True, replied_at=later)
    turn = engine.step(state, Incoming("alamatnya di mana?"), later.replace(minute=5), staff)
    assert turn.match.intent == "clinic_info" and "IGD" not in turn.replies[0].text


def test_a_photo_between_the_two_halves_of_a_sign_keeps_the_first(engine):
    state = first_message(engine, "betis sakit bgt kak").state
    state = engine.step(state, Incoming("", media_types=("image/jpeg",)), REFERENCE_NOW).state
    turn = engine.step(state, Incoming("minggu lalu abis operasi lutut"), REFERENCE_NOW)
    assert turn.triage.level is Level.EMERGENCY


# Under-triage a clinician found when reviewing the rules (2026-12-07): words that cancelled a
# real emergency ("dulu", "kedua", "maag", "kerja", "pelan pelan", relatives, places), and
# emergencies no rule named (snake bite, herb poisoning, compartment syndrome after a kick,
# dialysis missed, choking on a sweet, an old stroke worse today).
@pytest.mark.parametrize(
    "text",
    [
        "Dada saya sakit seperti ditindih setelah makan, keringat dingin, lengan kiri pegal",
        "Dada nyeri sejak sejam, saya kira maag kambuh, tapi keringat dingin terus",
        "Betis kiri saya bengkak dan sakit. Dulu tidak pernah begini.",
        "Habis naik pesawat 14 jam, udah lama duduk, sekarang betis kiri bengkak dan sakit",
        "Saya hamil anak kedua, 7 bulan. Betis kiri bengkak, merah dan sakit sejak kemarin",
        "Betis kiri bengkak, merah, nyeri. Kalau dibandingkan kanan kiri bedanya jauh",
        "Digigit ular di betis waktu di kebun, sekarang bengkak dan sakit sekali",
        "Bengkak dari pergelangan sampai betis kiri, nyeri dan hangat",
        "Betis kiri yang ada varisesnya sejak kemarin bengkak, merah, panas dan nyeri",
        "Seminggu lalu operasi caesar, sekarang betis kiri nyeri. Anak pertama dulu tidak begini",
        "Ibu saya tadi pingsan di kamar mandi, dulu belum pernah begini",
        "Kaki kanan tiba-tiba pincang dan harus diseret, saya coba melangkah pelan pelan tetap susah",
        "Bapak saya tiba-tiba bicaranya pelo, ngomongnya jadi pelan pelan",
        "Pulang kerja kaki kiri tiba-tiba tidak bisa digerakkan",
        "Jatuh dari motor, leher sakit, kedua kaki tidak bisa digerakkan",
        "Istri saya mendadak susah ngomong dan mulutnya tidak bisa senyum",
        "Sesak napas, keringat dingin sampai baju basah",
        "Ibu saya tiba-tiba sesak napas di pasar, betisnya memang sakit seminggu ini",
        "Sejak bangun tidur tadi kaki kanan lemas, jalannya keseret",
        "Anak demam lalu kejang, tangan dan kaki kelojotan",
        "Ayah pernah stroke 3 tahun lalu, hari ini jalannya makin sempoyongan dan makin bingung",
        "Sudah 3 hari kedua kaki makin lemah, sekarang tangan juga mulai lemah, minggu lalu habis diare",
        "Saya pasien cuci darah, kemarin tidak datang cuci darah, sekarang kaki kram dan badan lemas sekali",
        "Anak saya keselek permen, napasnya bunyi ngik ngik",
        "Betis kanan ditendang waktu futsal kemarin, sekarang keras kayak papan dan sakitnya luar biasa",
        "Setelah minum ramuan herbal tadi, mulut dan lidah kebas, jantung berdebar tidak teratur",
        "Kaki kanan merah, panas, menjalar ke atas, demam menggigil",
        "Kaki kiri tiba tiba dingin dan nyeri hebat",
    ],
)
def test_what_the_clinician_review_found_is_an_emergency(engine, text):
    assert level_of(engine, text) is Level.EMERGENCY


@pytest.mark.parametrize(
    "text",
    [
        # Found by a tester hunting false alarms, while writing real emergencies that use the
        # words a fix would cancel: each was silenced (a clitic taken off "die", "jaga jaga" or
        # "tugas" cancelling, "tanda tanda" read as a question about a sign).
        "I want to die",
        "pesan terakhirku buat mama",
        "anak keminum baygon barusan, buat jaga jaga harus ke mana?",
        "anak digigit ular tadi di kebun, buat jaga-jaga perlu ke RS?",
        "lagi ngerjain tugas tiba-tiba sakit kepala paling sakit seumur hidup",
        "sesak napas dari tadi, apa ini tanda tanda serangan jantung?",
        "kak betisku kedutan, tapi skrg mati rasanya nyebar ke telapak & jari2 kaki",
    ],
)
def test_what_the_false_alarm_hunt_found_is_still_an_emergency(engine, text):
    assert level_of(engine, text) is Level.EMERGENCY


@pytest.mark.parametrize(
    "text",
    [
        "lini tengah timnas lumpuh total lawan Jepang 😭 btw buka minggu?",
        "bibir kebas barusan abis disuntik bius di dokter gigi, boleh makan?",
        "anak saya main ular tangga, kena gigitan ular terus turun ke bawah, dia nangis 😂",
        "abis nyemprot baygon di kamar, saya minum teh di teras dulu sambil nunggu baunya ilang",
        "bibirnya biru kena tinta pulpen, anak saya suka gigit pulpen",
        "Latihan renang hari ini, stroke gaya bebas saya makin bagus tapi bahu pegal, bisa pijat?",
    ],
)
def test_look_alikes_the_false_alarm_hunt_found_raise_no_alarm(engine, text):
    assert level_of(engine, text) is not Level.EMERGENCY


@pytest.mark.parametrize(
    "text, level",
    [
        # A sign told in jest (laughter, a heart-eyes emoji) is a figure of speech; a laugh does
        # not silence a sign that is no figure of speech.
        ("kepala gw mau pecah wkwkwk tiap makan seblak", Level.NONE),
        ("aku sesek napas kalo ga ketemu kamu 🥰 bisa diakupuntur ga", Level.NONE),
        ("wkwk kram betis parah abis marathon, eh skrg pipis coklat kayak kopi", Level.EMERGENCY),
        ("dada 💔 sakit nembus ke lengan kiri", Level.EMERGENCY),
        # Asked about, not reported; unless it is happening now, or asks for a way to die.
        ("kalau ada orang digigit ular di kebun, pertolongan pertamanya gimana?", Level.NONE),
        ("temen bilang akupuntur bisa bikin lumpuh kalo salah tusuk, bener ga?", Level.NONE),
        ("kalau orang tua saya barusan pingsan, harus gimana?", Level.EMERGENCY),
        ("herbal apa yang kalau diminum banyak bisa bikin ga bangun lagi", Level.EMERGENCY),
        # Seen by a doctor and getting better; "perlu ke dokter ga?" is no visit.
        ("nyeri dada pas batuk pilek, udah dicek dokter kemarin katanya otot, skrg mendingan", Level.NONE),
        ("tadi 10 menit tangan kanan bapak ga bisa gerak, skrg udh normal lagi. perlu ke dokter ga?", Level.EMERGENCY),
        ("udah ke dokter katanya otot, skrg mendingan, tapi barusan dada sakit lagi", Level.EMERGENCY),
        # A price asked after a sign does not cancel it; a hyperbole does.
        ("kepala tiba2 sakit paling parah seumur hidup, btw harga akupuntur brp", Level.EMERGENCY),
        ("mau pingsan liat macetnya tol tadi, skrg betis pegel nyetir", Level.NONE),
        # A sentence end stops a negation; a sign listed right after a denied one is denied.
        ("pinggang sakit? bukan. betis kiri bengkak sejak pulang mudik naik bus 20 jam", Level.EMERGENCY),
        ("mama sering pusing berputar kalo bangun tidur. ga ada lemah/pelo", Level.DOCTOR),
        # A term with a clitic reads like the message ("ubun2nya" is "ubun ubun").
        ("anak tetangga 3 bulan panas dari pagi, ubun2nya nonjol", Level.EMERGENCY),
        ("anak sy 2th kayaknya nelen baterai kancing dr remot, skrg masih main biasa", Level.EMERGENCY),
        ("anak sy digigit anjing liar di betis, lukanya dalem", Level.EMERGENCY),
        ("anak 3 th ketelen beberapa butir obat darah tinggi neneknya", Level.EMERGENCY),
        ("ibu diabetes dr kmrn lemes, ngantuk terus, ga bisa diajak ngobrol", Level.EMERGENCY),
        ("asma kambuh, udh di nebu 2x ga mempan, ngomong cuma bisa sepatah2 kata", Level.EMERGENCY),
        ("abis disuntik antibiotik badan gatel merah semua, tensi 80/50", Level.EMERGENCY),
        ("pacar sy bilang mau loncat dr apartemen malam ini", Level.EMERGENCY),
        ("istri abis lahiran 3 hari, darahnya banyak bgt ganti pembalut tiap setengah jam", Level.EMERGENCY),
        ("sy minum 20 tablet paracetamol tadi siang, skrg nyesel", Level.EMERGENCY),
        ("kesemutan di mulut, tangan kaku kaya cakar, 2 hari lalu abis operasi tiroid", Level.EMERGENCY),
        ("td kesenggol kabel 20kV, tangan ada luka bakar kecil, ngerasa baik2 aja", Level.EMERGENCY),
        ("lg jalan kemo siklus ke-3, betis pegel2 dan demam 38,6", Level.EMERGENCY),
        ("tadi tmn sy jatuh dr lantai 3, katanya ga papa cuma betis lecet", Level.EMERGENCY),
        ("td sempet kliyengan, setengah badan kiri kayak ga kerasa, skrg udah ilang", Level.EMERGENCY),
        ("kena asam urat tp udah minum obat, skrg udh ga sakit", Level.NONE),
        ("misal ada pasien kejang di klinik, SOP-nya apa?", Level.NONE),
        ("gimana kalau suatu saat betis tiba2 bengkak dan merah sebelah, harus ke mana?", Level.NONE),
        ("sejak kaki sakit sy sedih terus, susah tidur sebulan. ga ada niat nyakitin diri kok", Level.DOCTOR),
        ("kalo betis bengkak sebelah itu bahaya ya? nanya aja, kaki sy sih gapapa", Level.NONE),
        ("nanya aja, betis kiri sy bengkak merah sebelah dari kemarin", Level.EMERGENCY),
        ("suami peminum, lg berhenti minum 2 hari, kaki gemeteran, ngeliat yang aneh2 di tembok", Level.EMERGENCY),
        # Doctor-level signs of general medicine; a bruise with a cause is none.
        ("udah 3 minggu batuk ga sembuh, keringat malam", Level.DOCTOR),
        ("tahi lalat di betis berubah bentuk dan makin gelap", Level.DOCTOR),
        ("tensi di rumah 160/100 tiap pagi, ga ada keluhan", Level.DOCTOR),
        ("kemarin kepleset, lutut memar biru dikit, ga kebentur kepala", Level.NONE),
    ],
)
def test_how_a_sign_is_told_decides_its_level(engine, text, level):
    assert level_of(engine, text) is level
