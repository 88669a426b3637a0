"""The learned intent model: exact features, determinism, the cache on disk, and the rule that
answering never needs scikit-learn."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import EVAL, ROOT

from bot.core import knowledge
from bot.core.matcher import Matcher
from bot.core.understand import ANALYZERS, Doc, IntentModel, ModelSource, Training, train
from bot.models import KEEP, DiskModels
from bot.quality import evaluation

SAMPLE_TEXTS = [
    "knp betis kedutan trs",
    "hrg akpntr brp",
    "cra mncgah kedtan btis gmn",
    "mw bokking dong bsk",
    "trmksh bnyk",
    "why does my calf keep twitching",
    "sikilku kedutan wae, kudu piye",
    "",
    "🙏🙏",
    "kedutan " * 400,
]


@pytest.fixture(scope="module")
def small_training(matcher) -> Training:
    """Every fourth example of the shipped knowledge: quick to train, same shape of data."""
    t = matcher.training
    return Training(t.docs[::4], t.labels[::4], t.c)


def test_answering_reproduces_scikit_learn_exactly(matcher):
    """The numpy scoring of the cached arrays is scikit-learn's own pipeline, not an
    approximation: the same decision function to the last digits."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, make_pipeline
    from sklearn.svm import LinearSVC

    t = matcher.training
    union = FeatureUnion(
        [(f.__name__, TfidfVectorizer(analyzer=f, sublinear_tf=True, lowercase=False)) for f in ANALYZERS]
    )
    pipeline = make_pipeline(union, LinearSVC(C=t.c, random_state=0, max_iter=5000)).fit(t.docs, t.labels)
    docs = [Doc.of(text, matcher.normalize.tokens(text), matcher.settings.max_tokens) for text in SAMPLE_TEXTS]
    expected = pipeline.decision_function(docs)
    ours = np.array([matcher.model.margins(doc) for doc in docs])
    assert list(pipeline.classes_) == list(matcher.model.classes)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-9)


def test_the_same_inputs_train_the_same_model(small_training):
    first, second = train(small_training).arrays(), train(small_training).arrays()
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)


def test_two_loads_give_the_same_answers(kb):
    """Two matchers built independently (no shared memory of models) answer alike."""
    items = evaluation.load_labelled(EVAL / "hard_dev.yaml")
    one, two = Matcher(kb, ModelSource()), Matcher(kb, ModelSource())
    for item in items:
        assert one.match(item.text) == two.match(item.text), item.text


def test_the_fingerprint_follows_every_input(small_training):
    key = small_training.fingerprint()
    assert key == Training(small_training.docs, small_training.labels, small_training.c).fingerprint()
    relabelled = Training(small_training.docs, ("greeting", *small_training.labels[1:]), small_training.c)
    reworded = Training((Doc("halo", ("halo",)), *small_training.docs[1:]), small_training.labels, small_training.c)
    retuned = Training(small_training.docs, small_training.labels, small_training.c * 2)
    assert len({key, relabelled.fingerprint(), reworded.fingerprint(), retuned.fingerprint()}) == 4


def test_a_cold_start_trains_and_caches_a_warm_start_reads(tmp_path, small_training):
    cold = DiskModels(tmp_path)
    model = cold.get(small_training)
    assert cold.last.startswith("trained") and cold.path(small_training.fingerprint()).is_file()
    warm = DiskModels(tmp_path)
    again = warm.get(small_training)
    assert warm.last.startswith("read from")
    doc = Doc.of("knp betis kedutan", ["kenapa", "betis", "kedutan"])
    np.testing.assert_array_equal(model.margins(doc), again.margins(doc))


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"not a numpy archive"),
        lambda path: path.write_bytes(path.read_bytes()[:200]),
        lambda path: np.savez(
            path.open("wb"), classes=np.array(["a", "b"]), coef=np.zeros((3, 2)), intercept=np.zeros(2)
        ),
        lambda path: np.savez(path.open("wb"), classes=np.array([{"pickled": "object"}], dtype=object)),
    ],
    ids=["garbage", "truncated", "missing arrays", "pickled object"],
)
def test_a_damaged_cache_file_is_retrained_and_replaced(tmp_path, small_training, damage):
    DiskModels(tmp_path).get(small_training)
    path = DiskModels(tmp_path).path(small_training.fingerprint())
    damage(path)
    models = DiskModels(tmp_path)
    model = models.get(small_training)
    assert models.last.startswith("trained") and "unreadable" in models.last
    assert DiskModels(tmp_path).get(small_training).classes == model.classes
    assert IntentModel.from_arrays(np.load(path, allow_pickle=False)).classes == model.classes


def test_changed_knowledge_is_a_new_model_and_old_ones_are_pruned(tmp_path, small_training):
    models = DiskModels(tmp_path)
    for number in range(KEEP + 3):
        docs = (Doc(f"contoh {number}", (f"contoh{number}",)), *small_training.docs[1:])
        models.get(Training(docs, small_training.labels, small_training.c))
    assert len(list(tmp_path.glob("intent-model-*.npz"))) == KEEP + 1


def test_a_cache_in_a_folder_that_cannot_be_written_still_answers(tmp_path, small_training):
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("")
    models = DiskModels(blocked / "cache")
    assert models.get(small_training).classes
    assert "trained" in models.last


def test_a_warm_start_never_imports_scikit_learn(tmp_path):
    """Answering from the cache needs numpy only (memory and start-up time of a worker)."""
    env = {"MODEL_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = (
        "import sys; from bot.cli import load_engine; from pathlib import Path;"
        "engine = load_engine(Path('knowledge'));"
        "print(engine.matcher.match('knp betis kedutan trs').intent, 'sklearn' in sys.modules)"
    )
    cold = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    warm = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert cold.stdout.split() == ["causes", "True"]
    assert warm.stdout.split() == ["causes", "False"]


def test_a_knowledge_base_of_one_topic_cannot_train_a_model(kb):
    only = {"greeting": kb.intents["greeting"]}
    with pytest.raises(ValueError, match="at least two intents"):
        Matcher(replace(kb, intents=only), ModelSource())


def test_an_intent_with_too_few_examples_is_named_with_its_file_and_line(kb_copy):
    path = kb_copy / "intents" / "privacy.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  - id: privacy_data")
    head, block = text[:start], text[start:]
    examples = block.index("    examples:\n") + len("    examples:\n")
    lines = block[examples:].splitlines(keepends=True)
    kept = [line for line in lines if line.startswith("      - ")][:2]
    path.write_text(head + block[:examples] + "".join(kept), encoding="utf-8")
    for extra in (kb_copy / "examples").glob("*.yaml"):
        extra.write_text(_without_intent(extra.read_text(encoding="utf-8"), "privacy_data"), encoding="utf-8")
    with pytest.raises(knowledge.KnowledgeError) as raised:
        knowledge.load(kb_copy)
    line = head.count("\n") + 1
    assert (
        f"knowledge/intents/privacy.yaml:{line}: intent 'privacy_data' has 2 examples;"
        " the intent model needs at least 5" in str(raised.value)
    )


def _without_intent(text: str, intent_id: str) -> str:
    """An examples file with one intent's section taken out."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line and not line[0].isspace() and not line.startswith("#"):
            skipping = line.startswith(f"{intent_id}:")
        if not skipping:
            out.append(line)
    return "".join(out)


def test_kb_check_reports_the_model(tmp_path, monkeypatch):
    import io

    from bot import cli

    def kb_check() -> str:
        out = io.StringIO()
        assert (
            cli.cmd_kb_check(
                cli.build_parser().parse_args(["--knowledge", str(ROOT / "knowledge"), "kb", "check"]), out=out
            )
            == 0
        )
        return out.getvalue()

    monkeypatch.setenv("MODEL_CACHE_DIR", str(tmp_path))
    assert "intent model: trained in" in kb_check()
    (next(tmp_path.glob("intent-model-*.npz"))).write_bytes(b"\0")
    assert "the cached file was unreadable" in kb_check()
    assert "intent model: read from" in kb_check()


def test_the_intent_model_lives_in_the_pure_core():
    source = (Path(__file__).parent.parent / "bot" / "core" / "understand.py").read_text(encoding="utf-8")
    top_level_imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not any("sklearn" in line or "flask" in line or "twilio" in line for line in top_level_imports)
