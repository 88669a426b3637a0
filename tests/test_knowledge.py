"""Loading and validating the knowledge base: every mistake named with its file and line."""

import pytest

from bot.core import knowledge


def problems_of(directory):
    with pytest.raises(knowledge.KnowledgeError) as caught:
        knowledge.load(directory)
    return [str(p) for p in caught.value.problems]


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"test setup: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path, needle):
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_shipped_knowledge_base_is_valid(kb):
    assert set(knowledge.REQUIRED_INTENTS) <= set(kb.intents)
    for intent in kb.intents.values():
        assert intent.answer.strip(), intent.id
        assert intent.id == "fallback" or len(intent.examples) >= 10, intent.id
    assert kb.triage_rules and kb.triage_examples
    assert kb.settings.clarify_threshold <= kb.settings.answer_threshold


def test_shipped_clinic_values_are_marked_as_examples(kb, kb_copy):
    errors, warnings = knowledge.check(kb_copy)
    assert not errors
    assert kb.clinic.example_values
    assert "(contoh)" in kb.clinic.address
    assert any("EXAMPLE values" in str(w) for w in warnings)


def test_yaml_syntax_error_names_file_and_line(kb_copy):
    path = kb_copy / "intents" / "calf.yaml"
    edit(path, "      - betis kram\n", "      - betis kram: [oops\n")
    line = line_of(path, "betis kram: [oops")
    found = problems_of(kb_copy)
    assert len(found) == 1
    assert found[0].startswith(f"knowledge/intents/calf.yaml:{line}: invalid YAML: while parsing a flow sequence")


def test_unknown_key_is_reported_at_its_line(kb_copy):
    path = kb_copy / "intents" / "calf.yaml"
    edit(path, "    title: Kram betis\n", "    title: Kram betis\n    answr: typo\n")
    assert problems_of(kb_copy) == [
        f"knowledge/intents/calf.yaml:{line_of(path, 'answr:')}: intent: unknown key 'answr'"
        " (allowed: action, answer, examples, follow_up, id, out_of_scope, part_of, title)"
    ]


def test_empty_answer_is_reported(kb_copy):
    path = kb_copy / "intents" / "conversation.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  - id: thanks")
    answer_at = text.index("    answer: |", start)
    end = text.index("    examples:", answer_at)
    path.write_text(text[:answer_at] + '    answer: ""\n' + text[end:], encoding="utf-8")
    line = line_of(path, 'answer: ""')
    assert problems_of(kb_copy) == [f"knowledge/intents/conversation.yaml:{line}: intent 'thanks' answer is empty"]


def test_duplicate_example_across_intents_names_both_places(kb, kb_copy):
    original = kb.intents["causes"].examples[0]
    variant = original.text.upper() + "??"  # the same after normalization
    path = kb_copy / "intents" / "calf.yaml"
    edit(path, "      - betis kram\n", f"      - betis kram\n      - {variant}\n")
    found = problems_of(kb_copy)
    assert len(found) == 1
    assert f"knowledge/intents/calf.yaml:{line_of(path, variant)}" in found[0]
    assert f"knowledge/intents/twitching.yaml:{original.line}" in found[0]
    assert "'causes'" in found[0] and "'calf_cramp'" in found[0]


def test_missing_required_intent_and_unknown_follow_up(kb_copy):
    path = kb_copy / "intents" / "conversation.yaml"
    edit(path, "  - id: goodbye\n", "  - id: farewell\n")
    edit(kb_copy / "intents" / "calf.yaml", "follow_up: [tcm_treatment, booking]", "follow_up: [tcm_treatment, bookin]")
    found = "\n".join(problems_of(kb_copy))
    assert "knowledge/intents: required intent 'goodbye' is missing" in found
    assert "follow_up names unknown intent 'bookin'" in found


def test_unknown_placeholder_and_bad_opening_hours(kb_copy):
    edit(kb_copy / "intents" / "services.yaml", "📍 {address}", "📍 {adress}")
    edit(kb_copy / "clinic.yaml", 'monday: "09:00-18:00"', 'monday: "18:00-09:00"')
    found = "\n".join(problems_of(kb_copy))
    assert "unknown placeholder {adress}" in found
    assert f"knowledge/clinic.yaml:{line_of(kb_copy / 'clinic.yaml', 'monday:')}: opening_hours.monday" in found


def test_slang_that_maps_to_slang_breaks_idempotence_and_is_rejected(kb_copy):
    path = kb_copy / "lexicon.yaml"
    edit(path, "    knp: kenapa\n", "    knp: gmn\n")
    found = problems_of(kb_copy)
    assert found == [
        f"knowledge/lexicon.yaml:{line_of(path, 'knp: gmn')}: slang 'knp' -> 'gmn': 'gmn' is itself slang or a particle"
    ]


def test_missing_file_and_many_problems_reported_together(kb_copy):
    (kb_copy / "triage.yaml").unlink()
    edit(kb_copy / "matcher.yaml", "answer_threshold:", "answer_treshold:")
    found = "\n".join(problems_of(kb_copy))
    assert "knowledge/triage.yaml:1: file is missing" in found
    assert "unknown key 'answer_treshold'" in found


def test_check_returns_errors_without_raising(kb_copy):
    edit(kb_copy / "intents" / "calf.yaml", "  - id: calf_cramp\n", "  - id: Calf Cramp\n")
    errors, _ = knowledge.check(kb_copy)
    assert any("ids are lowercase words" in str(e) for e in errors)


def test_a_danger_sign_anywhere_flag_must_be_true_or_false(kb_copy):
    path = kb_copy / "triage.yaml"
    edit(path, "    anywhere: true\n", "    anywhere: kadang\n")
    (problem,) = problems_of(kb_copy)
    assert problem.startswith(f"knowledge/triage.yaml:{line_of(path, 'anywhere: kadang')}: ")
    assert "anywhere" in problem


def test_taught_examples_are_added_and_the_ones_that_cannot_be_are_left_out(kb):
    taught = [
        knowledge.Taught(1, "prevention", "rajin pilates ngaruh ga"),
        knowledge.Taught(2, "no_longer_there", "apa saja"),
        knowledge.Taught(3, "prevention", kb.intents["fallback"].examples[0].text),
        knowledge.Taught(4, "prevention", "🙏🙏"),
        knowledge.Taught(5, "prevention", "Rajin pilates ngaruh ga?"),  # the same words again
        knowledge.Taught(6, "fallback", "apa lagi ya"),
    ]
    merged, skipped = knowledge.with_taught(kb, taught)
    added = merged.intents["prevention"].examples[len(kb.intents["prevention"].examples) :]
    assert [(e.text, e.file, e.line) for e in added] == [("rajin pilates ngaruh ga", knowledge.TAUGHT_SOURCE, 1)]
    assert [(t.id, why) for t, why in skipped] == [
        (2, "unknown_intent"),
        (3, "conflict:fallback"),
        (4, "empty"),
        (6, "unknown_intent"),
    ]
    assert (
        kb.intents["prevention"].examples
        == merged.intents["prevention"].examples[: len(kb.intents["prevention"].examples)]
    )


def test_stored_examples_can_never_stop_the_bot_from_starting(kb_copy):
    """A taught example whose intent was since removed from the files, or a database that
    cannot be reached: the bot starts and serves the files' knowledge."""
    from bot.core.dialogue import Engine
    from bot.services.learning import TaughtExamples
    from bot.services.live import LiveEngine
    from bot.store import storage

    class Stored:
        def version(self):
            return (1, 1)

        def load(self):
            return [knowledge.Taught(1, "gone", "rajin pilates ngaruh ga")]

    engines = LiveEngine(kb_copy, Engine, taught=Stored())
    assert engines.current().matcher.match("kenapa betis kedutan").intent == "causes"
    unreachable = TaughtExamples(
        storage.session_factory(storage.make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1"))
    )
    assert unreachable.version() is None and unreachable.load() is None
    engines = LiveEngine(kb_copy, Engine, interval=0, taught=unreachable)
    assert not engines.refresh() and engines.current().kb.intents


def test_taught_examples_that_could_not_be_read_are_read_again_once_the_database_answers(kb_copy):
    from bot.core.dialogue import Engine
    from bot.services.live import LiveEngine

    class Flaky:
        """The version is readable, the examples not (yet): a database blip at start."""

        def __init__(self):
            self.readable = False

        def version(self):
            return (1, 1, 1)

        def load(self):
            return [knowledge.Taught(1, "prevention", "rajin pilates ngaruh ga")] if self.readable else None

    source = Flaky()
    engines = LiveEngine(kb_copy, Engine, interval=0, taught=source)
    assert engines.current().matcher.match("rajin pilates ngaruh ga").intent != "prevention"
    source.readable = True
    assert engines.refresh()
    assert engines.current().matcher.match("rajin pilates ngaruh ga").intent == "prevention"
    source.readable = False  # unreadable again: what was loaded stays
    (kb_copy / "intents" / "calf.yaml").touch()
    engines.refresh()
    assert engines.current().matcher.match("rajin pilates ngaruh ga").intent == "prevention"


# -- clinic facts about the care, and the review warnings (issue 19) ----------------------------


def test_care_facts_fill_answers_and_an_unknown_one_is_never_guessed(kb):
    from bot.core.render import render

    text, missing = render(kb.intents["session_length"].answer, kb)
    assert kb.clinic.care["session_length"] in text and not missing
    assert kb.clinic.care["herbs_halal"] is None
    text, missing = render(kb.intents["herbal_halal_bpom"].answer, kb)
    assert missing
    assert "Sertifikat halal: staf kami akan menginformasikannya" in text
    assert text.endswith(kb.texts["missing_fact_offer"])


def test_example_care_facts_are_named_for_the_clinic_to_replace(kb_copy):
    path = kb_copy / "clinic.yaml"
    found = [str(p) for p in knowledge.example_values(kb_copy)]
    assert f"knowledge/clinic.yaml:{line_of(path, 'session_length:')}: care.session_length: " in "\n".join(found)
    assert not any("care.bpjs" in p for p in found)  # null: unknown, not an example


def test_an_unknown_care_fact_is_reported_at_its_line(kb_copy):
    path = kb_copy / "clinic.yaml"
    edit(path, "  bpjs: null\n", "  bpjs: null\n  bpjs_number: null\n")
    (problem,) = problems_of(kb_copy)
    assert problem.startswith(f"knowledge/clinic.yaml:{line_of(path, 'bpjs_number')}: care: unknown key 'bpjs_number'")


def review_warnings(directory):
    errors, warnings = knowledge.check(directory)
    assert not errors
    return [str(w) for w in warnings if "answer promises a cure" in str(w) or "answer names a dose" in str(w)]


def test_shipped_answers_promise_no_cure_and_name_no_dose(kb_copy):
    assert review_warnings(kb_copy) == []


def test_answers_that_promise_a_cure_or_name_a_dose_are_warned_at_their_line(kb_copy):
    path = kb_copy / "intents" / "care.yaml"
    edit(
        path,
        "      Terasa nyeri tajam saat terapi?",
        "      Dijamin 100% pasti sembuh! Terasa nyeri tajam saat terapi?",
    )
    edit(
        path,
        "      • jangan menambah, mengurangi,",
        "      • minum 2 kapsul 3x sehari, atau dua sendok\n      • jangan menambah, mengurangi,",
    )
    edit(path, "      Sedang minum obat dokter, hamil,", "      Cukup sekali sehari. Sedang minum obat dokter, hamil,")
    cure, dose = line_of(path, "Dijamin 100%"), line_of(path, "minum 2 kapsul")
    sekali = line_of(path, "Cukup sekali sehari")
    assert review_warnings(kb_copy) == [
        f"knowledge/intents/care.yaml:{cure}: intent 'acupuncture_pain' answer promises a cure: '100%'",
        f"knowledge/intents/care.yaml:{cure}: intent 'acupuncture_pain' answer promises a cure: 'pasti sembuh'",
        f"knowledge/intents/care.yaml:{dose}: intent 'herbal_use' answer names a dose: '2 kapsul'",
        f"knowledge/intents/care.yaml:{dose}: intent 'herbal_use' answer names a dose: '3x sehari'",
        f"knowledge/intents/care.yaml:{dose}: intent 'herbal_use' answer names a dose: 'dua sendok'",
        f"knowledge/intents/care.yaml:{sekali}: intent 'herbal_use' answer names a dose: 'sekali sehari'",
    ]


def test_numbers_that_are_not_doses_and_negated_words_pass(kb_copy):
    path = kb_copy / "intents" / "care.yaml"
    edit(
        path,
        "      Terasa nyeri tajam saat terapi?",
        "      Telepon 119, tunggu 20–30 menit, 2 sesi seminggu. Terasa nyeri tajam saat terapi?",
    )
    assert review_warnings(kb_copy) == []


def test_the_review_word_lists_live_in_the_knowledge_base(kb_copy):
    edit(kb_copy / "review.yaml", "  - mujarab\n", "  - mujarab\n  - cespleng\n")
    edit(kb_copy / "review.yaml", "  - drops\n", "  - drops\n  - menit\n")
    warnings = review_warnings(kb_copy)
    assert any("answer names a dose: '20–30 menit'" in w for w in warnings), warnings
    path = kb_copy / "intents" / "care.yaml"
    edit(path, "      Terasa nyeri tajam saat terapi?", "      Cespleng! Terasa nyeri tajam saat terapi?")
    line = line_of(path, "Cespleng!")
    assert (
        f"knowledge/intents/care.yaml:{line}: intent 'acupuncture_pain' answer promises a cure: 'Cespleng'"
        in review_warnings(kb_copy)
    )


def test_review_file_is_required_and_checked(kb_copy):
    path = kb_copy / "review.yaml"
    edit(path, "dose_units:", "dose_unit:")
    found = "\n".join(problems_of(kb_copy))
    assert "knowledge/review.yaml" in found and "unknown key 'dose_unit'" in found


@pytest.mark.parametrize(
    "intent, words",
    [
        ("cause_electrolyte", ["ginjal", "kalium"]),
        ("prevention", ["ginjal", "kalium"]),
        ("herbs_with_medicines", ["pengencer darah", "perdarahan", "jangan menghentikan"]),
        ("acupuncture_conditions", ["pembekuan darah", "pengencer darah"]),
        ("pregnancy_breastfeeding", ["hamil", "menyusui", "tanpa persetujuan"]),
        ("pacemaker_implants", ["elektro-akupunktur", "pacu jantung"]),
    ],
)
def test_the_caveats_where_advice_can_hurt_stay_in_their_answers(kb, intent, words):
    """docs/KNOWLEDGE-REVIEW.md: potassium and kidney disease, herbs and blood thinners,
    acupuncture and bleeding disorders, pregnancy, electro-acupuncture and pacemakers."""
    answer = kb.intents[intent].answer.lower()
    assert all(word in answer for word in words), [w for w in words if w not in answer]


@pytest.mark.parametrize(
    "intent",
    [
        "herbs_with_medicines",
        "acupuncture_conditions",
        "pacemaker_implants",
        "pregnancy_breastfeeding",
        "children_treatment",
    ],
)
def test_what_depends_on_the_patient_goes_to_the_practitioner_and_the_doctor(kb, intent):
    answer = kb.intents[intent].answer.lower()
    assert "terapis" in answer and "dokter" in answer


def test_the_answers_about_the_care_are_whatsapp_sized(kb):
    from bot.core.render import render

    care = [i for i in kb.intents.values() if i.file.endswith("care.yaml")]
    sizes = {i.id: len(render(i.answer, kb)[0]) for i in care}
    assert len(care) == 17 and max(sizes.values()) <= 650, sizes
