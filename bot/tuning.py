"""Choose the intent model's regularization and the decision thresholds on labelled messages.

`python -m bot tune tests/eval/dev.yaml tests/eval/calib.yaml --write` tries every combination
of THRESHOLD_GRID for each value of C_GRID (the model is trained once per C), then lowers or
raises single intents' cutoffs where that measurably helps, and writes the winner into
knowledge/matcher.yaml. Never tune on a held-out set: its figures mean something only while it
stays unseen.

Thresholds only change decisions, so every threshold combination is tried on one analysis of
the messages with the matcher's own vectorised `decisions`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .core.knowledge import KnowledgeBase, MatcherSettings
from .core.matcher import ANSWER, FALLBACK, NAMED_REASON, Matcher
from .core.messages import FALLBACK_INTENT
from .core.understand import ModelSource
from .evaluation import RED_FLAG, Labelled

C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
THRESHOLD_GRID = {
    "answer_threshold": tuple(np.round(np.arange(0.30, 0.61, 0.02), 3)),
    "clarify_margin": (0.0, 0.02, 0.04, 0.06, 0.08),
    "clarify_gap": (0.04, 0.08, 0.12),  # clarify_threshold = answer_threshold - gap
    "red_flag_threshold": (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8),
}
CUTOFF_GRID = tuple(np.round(np.arange(0.20, 0.71, 0.02), 3))
# A wrong answer misleads a patient; "I cannot answer" costs a turn; a clarify question that
# offers the right topic costs a turn but then succeeds, so it earns part of a correct answer.
WRONG_ANSWER_COST = 1.0
CLARIFY_HIT_VALUE = 0.25
# The highest wrong-answer rates a setting may have, below the targets (2 % of everyday
# messages, 4 % of hard ones) with room for messages the tuning sets do not have.
MAX_WRONG = {"everyday": 0.015, "hard": 0.03}
# A per-intent cutoff must win at least this many messages' worth of utility to be kept.
MIN_CUTOFF_GAIN = 2


@dataclass(frozen=True)
class Trial:
    settings: MatcherSettings
    accuracy: float
    clarify_hit_rate: float
    wrong_answer_rate: float
    wrong_by_kind: dict
    red_flag_recall: float
    out_of_scope_handled: float
    feasible: bool

    @property
    def utility(self) -> float:
        return self.accuracy + CLARIFY_HIT_VALUE * self.clarify_hit_rate - WRONG_ANSWER_COST * self.wrong_answer_rate


class _Scorer:
    """Scores settings on one matcher's analysis of the labelled messages."""

    def __init__(self, matcher: Matcher, items: list[Labelled], kinds: list[str]):
        self.matcher = matcher
        self.kinds = {kind: np.array([k == kind for k in kinds]) for kind in set(kinds)}
        index = {intent: i for i, intent in enumerate(matcher.intent_ids)}
        self.expected = np.array([index.get(item.intent, -2) for item in items])
        self.also = [{index.get(a, -2) for a in item.also} for item in items]
        analyses = [matcher.analyze(item.text) for item in items]
        self.batch = matcher.batch(analyses)
        # Danger signs and empty messages are decided before the model: fixed outcomes.
        self.fixed = np.array([index.get(matcher.sign_intent(a.danger_signs[0]), -3) if a.danger_signs else -1 for a in analyses])
        self.fixed[[a.empty for a in analyses]] = index[FALLBACK_INTENT]
        self.fallback, self.red = index[FALLBACK_INTENT], index.get(RED_FLAG, -3)

    def trial(self, settings: MatcherSettings) -> Trial:
        v = self.matcher.decisions(self.batch, settings)
        answer = (v.decision == ANSWER) | (v.reason == NAMED_REASON)
        outcome = np.where(answer, v.intent, np.where(v.decision == FALLBACK, self.fallback, -1))
        fixed = self.fixed >= 0
        outcome[fixed] = self.fixed[fixed]
        answered = (answer | fixed) & (outcome != self.fallback)
        correct = (outcome == self.expected) | np.array([o in a for o, a in zip(outcome, self.also)])
        clarify = (outcome == -1) & ((v.intent == self.expected) | (v.second == self.expected))
        wrongs = answered & ~correct
        wrong = float(wrongs.mean())
        by_kind = {kind: float(wrongs[mask].mean()) for kind, mask in self.kinds.items()}
        is_red, is_oos = self.expected == self.red, self.expected == self.fallback
        red_recall = float((outcome[is_red] == self.red).mean()) if is_red.any() else 1.0
        oos = float((outcome[is_oos] == self.fallback).mean()) if is_oos.any() else 1.0
        feasible = all(by_kind[kind] <= MAX_WRONG[kind] for kind in by_kind) and red_recall == 1.0 and oos >= 0.9
        return Trial(settings, float(correct.mean()), float(clarify.mean()), wrong, by_kind, red_recall, oos, feasible)


def _rank(trial: Trial) -> tuple:
    # Between equals, the lower red_flag threshold: a missed emergency costs more than an alarm.
    return trial.feasible, round(trial.utility, 6), -trial.settings.red_flag_threshold


def tune(kb: KnowledgeBase, sets: dict[str, list[Labelled]], models: ModelSource | None = None, progress=None) -> list[Trial]:
    """Trials of every C and threshold combination, best first (feasible ones, by utility),
    the best one refined with per-intent cutoffs. `sets`: labelled messages by set name; a
    set whose name starts with "hard" is held to the wrong-answer limit of hard messages."""
    items = [item for name in sets for item in sets[name]]
    kinds = [kind_of(name) for name in sets for _ in sets[name]]
    trials: list[Trial] = []
    scorers = {}
    for number, c in enumerate(C_GRID, start=1):
        base = replace(kb.settings, c=c, cutoffs={})
        scorer = scorers[c] = _Scorer(Matcher(replace(kb, settings=base), models), items, kinds)
        for answer, margin, gap, red in itertools.product(*THRESHOLD_GRID.values()):
            settings = replace(
                base,
                answer_threshold=float(answer),
                clarify_margin=margin,
                clarify_threshold=round(float(answer) - gap, 3),
                red_flag_threshold=red,
            )
            trials.append(scorer.trial(settings))
        if progress:
            progress(number, len(C_GRID))
    trials.sort(key=_rank, reverse=True)
    best = trials[0]
    refined = _refine_cutoffs(scorers[best.settings.c], best, len(items))
    return [refined, *trials] if refined is not best else trials


def kind_of(name: str) -> str:
    return "hard" if name.startswith("hard") else "everyday"


def _refine_cutoffs(scorer: _Scorer, best: Trial, count: int) -> Trial:
    """One pass over the intents: give an intent its own cutoff when that wins at least
    MIN_CUTOFF_GAIN messages' worth of utility and keeps the targets."""
    for intent_id in scorer.matcher.intent_ids:
        if intent_id == FALLBACK_INTENT:
            continue
        options = [scorer.trial(replace(best.settings, cutoffs={**best.settings.cutoffs, intent_id: float(c)})) for c in CUTOFF_GRID]
        option = max(options, key=_rank)
        if option.feasible >= best.feasible and option.utility - best.utility >= MIN_CUTOFF_GAIN / count:
            best = option
    return best


def format_trials(trials: list[Trial], count: int = 10) -> str:
    lines = []
    for trial in trials[:count]:
        flag = "ok " if trial.feasible else "   "
        lines.append(
            f"{flag}acc {trial.accuracy:.3f}  clarify-hit {trial.clarify_hit_rate:.3f}  wrong "
            + " ".join(f"{kind} {rate:.3f}" for kind, rate in sorted(trial.wrong_by_kind.items()))
            + "  "
            f"red {trial.red_flag_recall:.2f}  oos {trial.out_of_scope_handled:.2f}  | {describe(trial.settings)}"
        )
    return "\n".join(lines)


TUNED_KEYS = ("answer_threshold", "clarify_margin", "clarify_threshold", "red_flag_threshold", "c")


def describe(settings: MatcherSettings) -> str:
    values = ", ".join(f"{k}={getattr(settings, k):g}" for k in TUNED_KEYS)
    cutoffs = ", ".join(f"{k} {v:g}" for k, v in sorted(settings.cutoffs.items()))
    return values + (f", cutoffs: {cutoffs}" if cutoffs else "")


def write_settings(path: Path, settings: MatcherSettings) -> None:
    """Put tuned values into knowledge/matcher.yaml, keeping its comments and other keys."""
    text = path.read_text(encoding="utf-8")
    cutoffs = "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(settings.cutoffs.items())) + "}"
    for key, value in [*((k, f"{getattr(settings, k):g}") for k in TUNED_KEYS), ("cutoffs", cutoffs)]:
        line = re.compile(rf"^{key}:[ \t]*(\{{[^}}\n]*\}}|[^ \t#\n]+)", re.MULTILINE)
        if line.search(text):
            text = line.sub(lambda found: f"{key}: {value}".ljust(len(found.group(0))), text, count=1)
        else:
            text = text.rstrip("\n") + f"\n{key}: {value}\n"
    path.write_text(text, encoding="utf-8")
