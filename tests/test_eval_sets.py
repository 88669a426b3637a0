"""The evaluation sets: large enough, kept apart from the knowledge base, and passed."""

import re

import pytest
from rapidfuzz import fuzz, process

from bot import evaluation
from bot.core.knowledge import REQUIRED_INTENTS
from conftest import EVAL, ROOT

SAMPLE = ROOT.parent / "shared" / "eval" / "sample-messages.yaml"
SPLITS = ("tune", "dev", "calib", "heldout")


@pytest.fixture(scope="module")
def labelled():
    return {name: evaluation.load_labelled(EVAL / f"{name}.yaml") for name in SPLITS}


def test_sets_are_large_and_cover_every_intent(labelled):
    everything = [item for items in labelled.values() for item in items]
    assert len(everything) >= 400
    assert sum(item.intent == "fallback" for item in everything) >= 60
    for name, items in labelled.items():
        assert {item.intent for item in items} == set(REQUIRED_INTENTS), name


def test_no_message_is_in_two_splits(labelled):
    seen = {}
    for name, items in labelled.items():
        for item in items:
            key = " ".join(item.text.lower().split())
            assert key not in seen, f"{item.text!r} is in {seen.get(key)} and {name}"
            seen[key] = name


def surface(text: str) -> str:
    """The text as typed, minus case, punctuation, emoji and stretched letters: what copying
    would preserve (the bot's own normalizer would also merge slang and synonyms)."""
    text = re.sub(r"([a-z])\1{2,}", r"\1", text.lower())
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def test_knowledge_examples_are_not_copied_from_any_evaluation_set(kb, labelled):
    """Short phrases ("halo", "menu") are vocabulary; anything of three words or more in the
    knowledge base must be clearly different from every evaluation message."""
    normalize = surface
    examples = [(normalize(e.text), e) for intent in kb.intents.values() for e in intent.examples]
    keys = [key for key, _ in examples]
    sets = list(labelled.values()) + ([evaluation.load_labelled(SAMPLE)] if SAMPLE.exists() else [])
    copies = []
    for items in sets:
        for item in items:
            query = normalize(item.text)
            for _, score, index in process.extract(query, keys, scorer=fuzz.ratio, score_cutoff=90, limit=3):
                key, example = examples[index]
                if len(key.split()) >= 3:
                    copies.append(f"{example.file}:{example.line} {example.text!r} ~ {item.text!r} ({score:.0f})")
    assert copies == []


def test_held_out_split_meets_the_targets(engine, labelled):
    summary = evaluation.summarize(evaluation.run(engine, labelled["heldout"]))
    assert evaluation.target_failures(summary) == [], summary


@pytest.mark.skipif(not SAMPLE.exists(), reason="the shared sample lives outside the repository")
def test_shared_sample_style_messages(engine):
    summary = evaluation.summarize(evaluation.run(engine, evaluation.load_labelled(SAMPLE)))
    assert summary["red_flag_recall"] == 1.0
    assert summary["out_of_scope_handled"] == 1.0
    assert summary["wrong_answer_rate"] <= 0.05


def test_labelled_loader_reports_the_line_of_a_bad_item(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text('- {text: "a", intent: greeting}\n- {text: "b"}\n')
    with pytest.raises(evaluation.LabelledSetError, match=r"bad\.yaml:2: labelled message: missing key 'intent'"):
        evaluation.load_labelled(path)


def test_evaluation_counts_clarify_as_not_answered(engine):
    results = evaluation.run(engine, [evaluation.Labelled("kenapa betis kedutan terus ya", "causes", 1)])
    summary = evaluation.summarize(results)
    assert summary["accuracy"] == 1.0 and summary["wrong_answer_rate"] == 0.0
    wrong = evaluation.Result("x", "causes", "pricing", "answer", 0.9, ())
    clarify = evaluation.Result("y", "causes", "causes", "clarify", 0.5, ())
    summary = evaluation.summarize([wrong, clarify])
    assert (summary["accuracy"], summary["wrong_answer_rate"], summary["clarify_rate"]) == (0.0, 0.5, 0.5)
