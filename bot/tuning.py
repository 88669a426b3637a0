"""Grid search of the matcher's weights and thresholds on labelled messages.

Run `python -m bot tune tests/eval/tune.yaml tests/eval/dev.yaml` and copy the printed
settings into knowledge/matcher.yaml. Never tune on tests/eval/heldout.yaml: its figures are
only meaningful while it stays unseen.

Weights change the scores, so each weight combination analyses every message once; thresholds
only change decisions, so all threshold combinations are tried on the cached scores at once
with the matcher's own vectorised `verdicts`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from .core.knowledge import KnowledgeBase
from .core.matcher import RED_FLAG, AnalysisBatch, Matcher
from .core.messages import FALLBACK_INTENT
from .evaluation import Labelled

WEIGHT_GRID = {
    "idf_power": (0.75, 1.0),
    "recall_beta": (1.0, 1.5, 2.0),
    "unknown_weight": (1.0, 2.0, 3.0),
    "fuzzy_weight": (0.3, 0.4, 0.5, 0.6),
    "evidence_weight": (0.15, 0.3),
    "coverage_power": (0.6, 1.0),
}
# A wrong answer misleads a patient; "I cannot answer" costs a turn; a clarify question that
# offers the right topic costs a turn but then succeeds, so it earns part of a correct answer.
WRONG_ANSWER_COST = 1.5
CLARIFY_HIT_VALUE = 0.5
THRESHOLD_GRID = {
    "answer_threshold": tuple(np.round(np.arange(0.30, 0.76, 0.025), 3)),
    "clarify_margin": (0.0, 0.02, 0.04, 0.06, 0.08, 0.1),
    "clarify_gap": (0.0, 0.05, 0.1, 0.15),  # clarify_threshold = answer_threshold - gap
    "red_flag_threshold": (0.5, 0.6, 0.7, 0.8, 0.9, 1.01),
}
_ANSWER, _FALLBACK = 0, 2


@dataclass(frozen=True)
class Trial:
    settings: dict
    accuracy: float
    clarify_hit_rate: float
    wrong_answer_rate: float
    red_flag_recall: float
    out_of_scope_handled: float
    feasible: bool

    def utility(self, clarify_value: float = CLARIFY_HIT_VALUE) -> float:
        return self.accuracy + clarify_value * self.clarify_hit_rate - WRONG_ANSWER_COST * self.wrong_answer_rate


def tune(kb: KnowledgeBase, items: list[Labelled], max_wrong: float = 0.025, progress=None, clarify_value: float | None = None) -> list[Trial]:
    """All trials, best first: feasible ones (targets met) by accuracy less the cost of wrong
    answers, then the rest."""
    trials: list[Trial] = []
    names = list(WEIGHT_GRID)
    combos = list(itertools.product(*WEIGHT_GRID.values()))
    matcher_by_idf: dict[float, Matcher] = {}
    for number, values in enumerate(combos, start=1):
        weights = dict(zip(names, values))
        base = replace(kb.settings, **weights)
        matcher = matcher_by_idf.get(base.idf_power)
        if matcher is None:
            matcher = matcher_by_idf[base.idf_power] = Matcher(replace(kb, settings=base))
        matcher.settings = base
        trials.extend(_threshold_trials(matcher, items, weights, max_wrong))
        if progress:
            progress(number, len(combos))
    value = CLARIFY_HIT_VALUE if clarify_value is None else clarify_value
    trials.sort(key=lambda t: (t.feasible, round(t.utility(value), 6), -t.settings["red_flag_threshold"]), reverse=True)
    return trials


def _threshold_trials(matcher: Matcher, items: list[Labelled], weights: dict, max_wrong: float) -> list[Trial]:
    index = {intent: i for i, intent in enumerate(matcher.intent_ids)}
    expected = np.array([index.get(item.intent, -2) for item in items])
    analyses = [matcher.analyze(item.text) for item in items]
    batch = AnalysisBatch.of(matcher, analyses)
    danger = np.array([bool(a.danger_signs) for a in analyses])
    empty = np.array([a.empty for a in analyses])
    fallback, red = index[FALLBACK_INTENT], index[RED_FLAG]
    is_red, is_oos = expected == red, expected == fallback

    trials = []
    for answer, margin, gap, red_threshold in itertools.product(*THRESHOLD_GRID.values()):
        settings = replace(
            matcher.settings,
            answer_threshold=float(answer),
            clarify_margin=margin,
            clarify_threshold=float(answer) - gap,
            red_flag_threshold=red_threshold,
        )
        decision, intent, _, _, used_sub = matcher.decisions(batch, settings)
        outcome = np.where(decision == _ANSWER, intent, np.where(decision == _FALLBACK, fallback, -1))
        outcome[danger], outcome[empty] = red, fallback
        answered = (decision == _ANSWER) & ~empty | danger
        # A clarify question offers the two best intents of the scores it was decided on.
        second = np.where(used_sub, batch.sub_summary.second, batch.plain_summary.second)
        correct = outcome == expected
        accuracy = float(correct.mean())
        clarify_hits = float(((outcome == -1) & ((intent == expected) | (second == expected))).mean())
        wrong = float((answered & ~correct).mean())
        red_recall = float((outcome[is_red] == red).mean()) if is_red.any() else 1.0
        oos = float((outcome[is_oos] == fallback).mean()) if is_oos.any() else 1.0
        feasible = wrong <= max_wrong and red_recall == 1.0 and oos >= 0.9
        chosen = {**weights, **{k: float(getattr(settings, k)) for k in ("answer_threshold", "clarify_margin", "clarify_threshold", "red_flag_threshold")}}
        trials.append(Trial(chosen, accuracy, clarify_hits, wrong, red_recall, oos, feasible))
    return trials


def format_trials(trials: list[Trial], count: int = 10) -> str:
    lines = []
    for trial in trials[:count]:
        flag = "ok " if trial.feasible else "   "
        settings = ", ".join(f"{k}={v:g}" for k, v in trial.settings.items())
        lines.append(
            f"{flag}acc {trial.accuracy:.3f}  clarify-hit {trial.clarify_hit_rate:.3f}  wrong {trial.wrong_answer_rate:.3f}  red {trial.red_flag_recall:.2f}  "
            f"oos {trial.out_of_scope_handled:.2f}  | {settings}"
        )
    return "\n".join(lines)
