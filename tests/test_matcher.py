"""The matcher's decisions: answer, clarify or fallback (triage, which comes first, is tests/test_triage.py)."""

from pathlib import Path

import pytest

from bot.core.messages import Decision

EVAL = Path(__file__).parent / "eval"


@pytest.mark.parametrize(
    "text, intent",
    [
        ("knp betis kedutan trs", "causes"),
        ("gmn cara mencegahnya", "prevention"),
        ("mau booking akupuntur besok jam 3", "booking"),
        ("kalo minum kopi bnyk bs kedutan?", "cause_caffeine"),
        ("abis futsal betis kedut2", "cause_fatigue"),
        ("kurang magnesium ya?", "cause_electrolyte"),
        ("jam buka klinik", "clinic_info"),
        ("harga akupunktur brp", "pricing"),
        ("betis keram tiap malem", "calf_cramp"),
        ("betis pegel bgt", "calf_pain"),
        ("akupunktur sakit ga", "acupuncture_pain"),
        ("makasih kak", "thanks"),
    ],
)
def test_answers_plain_questions(matcher, text, intent):
    match = matcher.match(text)
    assert (match.decision, match.intent) == (Decision.ANSWER, intent), match


@pytest.mark.parametrize(
    "text, intent",
    [
        ("knp btis sy kedtan trus", "causes"),
        ("akupungtur utk kedutan", "tcm_treatment"),
        ("kekurangan magnesuim", "cause_electrolyte"),
        ("betiskedutan knpya", "causes"),
        ("cara mencgah kedutan", "prevention"),
    ],
)
def test_understands_typos_and_missing_spaces(matcher, text, intent):
    match = matcher.match(text)
    assert (match.decision, match.intent) == (Decision.ANSWER, intent), match


def test_resolves_unknown_words_against_the_vocabulary(matcher, kb):
    ordinary = next(
        w
        for w in sorted(kb.lexicon.common_words)
        if w not in matcher.vocab and len(w) >= 5 and not w.endswith(kb.lexicon.clitics)
    )
    words = ["kedutqn", "betismu", "kopikedutan", "knpya", "zzqx", ordinary]
    assert not set(words) & set(matcher.vocab), "test words must be unknown to the knowledge base"
    resolved = matcher.resolve(words)
    assert [(t.word, t.how) for t in resolved["kedutqn"]] == [("kedutan", "typo")]
    assert [(t.word, t.how) for t in resolved["betismu"]] == [("betis", "clitic")]
    assert [(t.word, t.how) for t in resolved["kopikedutan"]] == [("kopi", "split"), ("kedutan", "split")]
    assert [(t.word, t.how) for t in resolved["knpya"]] == [("kenapa", "split")]
    assert resolved["zzqx"][0].how == "unknown" and resolved["zzqx"][0].similarity == 0
    # An ordinary word is never "corrected" into a knowledge-base word.
    assert resolved[ordinary][0].how == "common"


def test_greeting_with_a_question_answers_the_question(matcher):
    match = matcher.match("halo kak, kenapa betis kedutan?")
    assert (match.decision, match.intent, match.greeted) == (Decision.ANSWER, "causes", True)


def test_question_with_thanks_answers_the_question(matcher):
    match = matcher.match("kalau kopi bikin kedutan gak? makasih")
    assert match.intent == "cause_caffeine"


@pytest.mark.parametrize(
    "text",
    [
        "jual kuota internet?",
        "resep rendang dong",
        "siapa presiden indonesia",
        "sakit gigi geraham",
        "asdfgh",
        "rumah dijual murah",
    ],
)
def test_out_of_scope_falls_back(matcher, text):
    match = matcher.match(text)
    assert match.decision is Decision.FALLBACK, match
    assert match.intent == "fallback"


def test_close_candidates_ask_which_one(matcher):
    """ "betis" alone could be pain or twitching: with a clarify margin wider than the gap
    between the two, the patient is asked which one (never offered fallback)."""
    from dataclasses import replace

    analysis = matcher.analyze("betis")
    first, second = sorted(analysis.whole, reverse=True)[:2]
    # Sure of the best (above the answer cutoff), unsure of the runner-up (below it), and close.
    cutoff = second + 0.001
    wide = replace(
        matcher.settings,
        answer_threshold=cutoff,
        cutoffs={},
        clarify_margin=first - second + 0.01,
        clarify_threshold=second - 0.01,
    )
    match = matcher.decide(analysis, wide)
    assert match.decision is Decision.CLARIFY and match.reason == "close_candidates", match
    assert len(matcher.clarify_options(match)) == 2 and "fallback" not in matcher.clarify_options(match)
    narrow = replace(wide, clarify_margin=first - second - 0.01)
    assert matcher.decide(analysis, narrow).decision is Decision.ANSWER


def test_an_unsure_best_intent_is_asked_about(matcher):
    match = matcher.match("yoga tiap pagi ngaruh ga ke betis")
    assert (match.decision, match.reason) == (Decision.CLARIFY, "low_confidence"), match
    assert (
        matcher.settings.clarify_threshold
        <= match.score
        < matcher.cutoffs(matcher.settings)[matcher.intent_ids.index(match.intent)]
    )


def test_context_tips_a_short_follow_up_towards_the_offered_topics(matcher, kb):
    alone = matcher.match("kalau teh?")
    after_causes = matcher.match("kalau teh?", context=kb.intents["causes"].follow_up)
    assert after_causes.intent == "cause_caffeine"
    assert after_causes.score > alone.score


def test_empty_and_emoji_only(matcher):
    for text in ("", "   ", "😀😀", "!!!"):
        match = matcher.match(text)
        assert (match.decision, match.reason) == (Decision.FALLBACK, "empty")


def test_result_is_well_formed_for_any_message(matcher):
    for text in [
        "a",
        "1",
        "betis " * 3000,
        "🙏" * 2000 + " kenapa betis kedutan",
        "\x00\x01 kedutan",
        "ق ق ق",
        "ＫＥＤＵＴＡＮ",
    ]:
        match = matcher.match(text)
        assert match.decision in Decision
        assert 0.0 <= match.score <= 1.0
        assert list(match.candidates) == sorted(match.candidates, key=lambda c: -c.score)


def test_is_deterministic(matcher):
    texts = ["knp betis kedutan trs", "kedutan", "jual pulsa", "betis pegel abis lari"]
    first = [matcher.match(t) for t in texts]
    assert [matcher.match(t) for t in texts] == first


def test_typo_repair_follows_the_cutoff_of_its_settings(kb):
    from dataclasses import replace

    from bot.core.matcher import Matcher

    text = "betis kedtan trs"  # "kedtan" is a typo only a loose cutoff corrects
    loose = Matcher(kb)
    strict = Matcher(replace(kb, settings=replace(kb.settings, typo_cutoff=99.0)))
    assert loose.resolve(["kedtan"])["kedtan"][0].word == "kedutan"
    assert strict.resolve(["kedtan"])["kedtan"][0].how == "unknown"
    assert loose.analyze(text).whole.tolist() != strict.analyze(text).whole.tolist()


def test_every_word_the_matcher_knows_can_be_a_whole_message(matcher):
    """Regression: a word known only from a danger sign ("bedah", "berbicara") shares no word
    with any example, and matching it alone raised (the patient got the error apology)."""
    for word in matcher.vocab:
        match = matcher.match(word)
        assert match.intent in matcher.kb.intents, word


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # A denied symptom that asks for reassurance is the question ("it does not hurt, right?").
        ("akupuntur ga sakit kan?", "acupuncture_pain"),
        ("jarum akupunturnya gak sakit kan ya", "acupuncture_pain"),
        # A denied symptom beside the complaint is left out of the reading.
        ("betis ga bengkak kok, cuma pegel tiap sore", "calf_pain"),
    ],
)
def test_a_denied_symptom_is_dropped_unless_it_is_asked_about(matcher, text, intent):
    assert matcher.match(text).intent == intent


def test_a_denial_covers_the_signs_it_names_not_the_request_after_it(matcher):
    """ "ga ada sesak kok, mau daftar bekam sabtu": the denial ends at the signs; the request
    after it is read (it used to be dropped as well, and the message read as a question about
    cupping)."""
    assert matcher.match("ga ada sesak kok, mau daftar bekam sabtu").intent == "booking"
    assert matcher.match("ga sesak kok, cuma pegal").intent == "calf_pain"
