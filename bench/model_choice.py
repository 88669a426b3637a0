"""Which classifier for the intent model: candidates trained on the same features, compared on
the tuning sets (never the held-out ones), each with its own best single cutoff.

    python bench/model_choice.py

For every candidate: training time, then accuracy and wrong-answer rate on tests/eval tune,
dev, calib and hard_dev, with one cutoff on its top score (below it: out of scope) picked for
accuracy minus wrong answers over all four. Danger-sign rules, greetings and clarify questions
are left out: this compares the classifiers alone. docs/UNDERSTANDING.md records a run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from corpus import load_average, machine  # noqa: E402

from bot.core import knowledge  # noqa: E402
from bot.core.matcher import Matcher  # noqa: E402
from bot.core.repair import words_of  # noqa: E402
from bot.core.understand import ANALYZERS, Doc  # noqa: E402
from bot.quality import evaluation  # noqa: E402

SETS = ("tune", "dev", "calib", "hard_dev")


def candidates():
    from sklearn.linear_model import LogisticRegression, RidgeClassifier, SGDClassifier
    from sklearn.svm import LinearSVC

    return {
        "LinearSVC C=0.5": LinearSVC(C=0.5, random_state=0, max_iter=5000),
        "LinearSVC C=1": LinearSVC(C=1, random_state=0, max_iter=5000),
        "LinearSVC C=4": LinearSVC(C=4, random_state=0, max_iter=5000),
        "LogisticRegression C=10": LogisticRegression(C=10, max_iter=2000),
        "SGD modified_huber": SGDClassifier(loss="modified_huber", alpha=1e-5, random_state=0, max_iter=50, tol=None),
        "RidgeClassifier": RidgeClassifier(alpha=1.0, solver="sparse_cg"),
    }


def main() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    matcher = Matcher(knowledge.load(ROOT / "knowledge"))
    training = matcher.training

    def doc(text: str) -> Doc:
        reading = matcher._read(text)
        return Doc.of(text, words_of(reading.resolved, reading.words), matcher.settings.max_tokens)

    union = FeatureUnion(
        [(f.__name__, TfidfVectorizer(analyzer=f, sublinear_tf=True, lowercase=False)) for f in ANALYZERS]
    )
    features = union.fit_transform(training.docs)
    labelled = {name: evaluation.load_labelled(ROOT / "tests" / "eval" / f"{name}.yaml") for name in SETS}
    queries = {name: union.transform([doc(item.text) for item in items]) for name, items in labelled.items()}
    expected = {name: np.array([item.intent for item in items]) for name, items in labelled.items()}
    print(f"machine: {machine()}; {load_average()}")
    print(f"{len(training.docs)} training examples, {features.shape[1]} n-gram features; figures on tuning sets only\n")
    print(f"{'candidate':<26} {'train s':>7} | " + " | ".join(f"{name:>15}" for name in SETS) + " | sum acc - wrong")
    for name, model in candidates().items():
        start = time.perf_counter()
        model.fit(features, training.labels)
        seconds = time.perf_counter() - start
        scores = {s: model.decision_function(q) for s, q in queries.items()}
        low = min(float(v.max(axis=1).min()) for v in scores.values())
        high = max(float(v.max(axis=1).max()) for v in scores.values())
        best = None
        for cut in np.linspace(low, high, 200):
            rows = []
            for s in SETS:
                top = scores[s].argmax(axis=1)
                predicted = np.where(scores[s].max(axis=1) >= cut, model.classes_[top], "fallback")
                accuracy = float((predicted == expected[s]).mean())
                wrong = float(((predicted != expected[s]) & (predicted != "fallback")).mean())
                rows.append((accuracy, wrong))
            total = sum(a - w for a, w in rows)
            if best is None or total > best[0]:
                best = (total, rows)
        cells = " | ".join(f"{a * 100:5.1f}% / {w * 100:4.1f}%" for a, w in best[1])
        print(f"{name:<26} {seconds:>7.1f} | {cells} | {best[0]:.3f}")


if __name__ == "__main__":
    main()
