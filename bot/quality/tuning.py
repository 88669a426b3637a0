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

from bot.core.knowledge import KnowledgeBase, MatcherSettings
from bot.core.matcher import ANSWER, FALLBACK, NAMED_REASON, Matcher
from bot.core.messages import FALLBACK_INTENT
from bot.core.triage import Level, Triage
from bot.core.understand import IN_MEMORY, ModelSource
from bot.quality.evaluation import RED_FLAG, Labelled

C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
THRESHOLD_GRID = {
    "answer_threshold": tuple(np.round(np.arange(0.30, 0.61, 0.02), 3)),
    "clarify_margin": (0.0, 0.02, 0.04, 0.06, 0.08),
    "clarify_gap": (0.04, 0.08, 0.12),  # clarify_threshold = answer_threshold - gap
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

    def __init__(self, matcher: Matcher, triage: Triage, items: list[Labelled], kinds: list[str]):
        self.matcher = matcher
        self.kinds = {kind: np.array([k == kind for k in kinds]) for kind in set(kinds)}
        index = {intent: i for i, intent in enumerate(matcher.intent_ids)}
        self.expected = np.array([index.get(item.intent, -2) for item in items])
        self.also = [{index.get(a, -2) for a in item.also} for item in items]
        analyses = [matcher.analyze(item.text) for item in items]
        self.batch = matcher.batch(analyses)
        # Emergencies (the triage step) and empty messages are decided before the intent model.
        urgent = [triage.assess(matcher.read(item.text))[0] for item in items]
        self.fixed = np.array([index.get(a.intent, -3) if a.level is Level.EMERGENCY else -1 for a in urgent])
        self.fixed[[a.empty for a in analyses]] = index[FALLBACK_INTENT]
        self.fallback, self.red = index[FALLBACK_INTENT], index.get(RED_FLAG, -3)

    def trial(self, settings: MatcherSettings) -> Trial:
        v = self.matcher.decisions(self.batch, settings)
        answer = (v.decision == ANSWER) | (v.reason == NAMED_REASON)
        outcome = np.where(answer, v.intent, np.where(v.decision == FALLBACK, self.fallback, -1))
        fixed = self.fixed >= 0
        outcome[fixed] = self.fixed[fixed]
        answered = (answer | fixed) & (outcome != self.fallback)
        correct = (outcome == self.expected) | np.array([o in a for o, a in zip(outcome, self.also, strict=True)])
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
    return trial.feasible, round(trial.utility, 6)


def tune(
    kb: KnowledgeBase, sets: dict[str, list[Labelled]], models: ModelSource | None = None, progress=None
) -> list[Trial]:
    """Trials of every C and threshold combination, best first (feasible ones, by utility),
    the best one refined with per-intent cutoffs. `sets`: labelled messages by set name; a
    set whose name starts with "hard" is held to the wrong-answer limit of hard messages."""
    items = [item for name in sets for item in sets[name]]
    kinds = [kind_of(name) for name in sets for _ in sets[name]]
    trials: list[Trial] = []
    scorers = {}
    first = Matcher(kb, models)
    triage = Triage(kb, first.rules, models or IN_MEMORY, first.normalize, first.training)
    for number, c in enumerate(C_GRID, start=1):
        base = replace(kb.settings, c=c, cutoffs={})
        scorer = scorers[c] = _Scorer(Matcher(replace(kb, settings=base), models, first.rules), triage, items, kinds)
        for answer, margin, gap in itertools.product(*THRESHOLD_GRID.values()):
            settings = replace(
                base,
                answer_threshold=float(answer),
                clarify_margin=margin,
                clarify_threshold=round(float(answer) - gap, 3),
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
        options = [
            scorer.trial(replace(best.settings, cutoffs={**best.settings.cutoffs, intent_id: float(c)}))
            for c in CUTOFF_GRID
        ]
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


_COMMENT_COLUMN = 27
TUNED_KEYS = ("answer_threshold", "clarify_margin", "clarify_threshold", "c")


def describe(settings: MatcherSettings) -> str:
    values = ", ".join(f"{k}={getattr(settings, k):g}" for k in TUNED_KEYS)
    cutoffs = ", ".join(f"{k} {v:g}" for k, v in sorted(settings.cutoffs.items()))
    return values + (f", cutoffs: {cutoffs}" if cutoffs else "")


def write_settings(path: Path, settings: MatcherSettings, keys: tuple[str, ...] = (*TUNED_KEYS, "cutoffs")) -> None:
    """Put tuned values into knowledge/matcher.yaml, keeping its comments and other keys."""
    text = path.read_text(encoding="utf-8")
    cutoffs = "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(settings.cutoffs.items())) + "}"
    values = {
        **{k: f"{getattr(settings, k):g}" for k in keys if k != "cutoffs"},
        **({"cutoffs": cutoffs} if "cutoffs" in keys else {}),
    }
    for key, value in values.items():
        line = re.compile(rf"^{key}:[ \t]*(\{{[^}}\n]*\}}|[^ \t#\n]+)[ \t]*(?=#|$)", re.MULTILINE)
        if line.search(text):
            setting = f"{key}: {value}".ljust(_COMMENT_COLUMN - 1) + " "
            text = line.sub(lambda _found, setting=setting: setting, text, count=1)
        else:
            text = text.rstrip("\n") + f"\n{key}: {value}\n"
    path.write_text(text, encoding="utf-8")


# -- the triage model's thresholds ------------------------------------------------------------

TRIAGE_C_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
TRIAGE_GRID = tuple(np.round(np.arange(0.5, 0.96, 0.025), 3))
# Harmless messages raised to an emergency (the target is 2 %: room left for new messages),
# and to a doctor's visit.
MAX_FALSE_ALARMS = 0.01
MAX_NONE_AS_DOCTOR = 0.05


@dataclass(frozen=True)
class TriageTrial:
    settings: MatcherSettings
    emergency_recall: float
    doctor_recall: float
    false_alarms: float
    none_as_doctor: float

    @property
    def feasible(self) -> bool:
        return self.false_alarms <= MAX_FALSE_ALARMS and self.none_as_doctor <= MAX_NONE_AS_DOCTOR

    def rank(self) -> tuple:
        return self.feasible, self.emergency_recall, self.doctor_recall, -self.false_alarms, -self.none_as_doctor


def tune_triage(
    kb: KnowledgeBase, levelled: list[tuple[str, str]], models: ModelSource | None = None
) -> list[TriageTrial]:
    """Every C of the triage model and pair of its thresholds, best first: among those that keep
    false alarms ≤ 1 % and harmless messages sent to a doctor ≤ 5 %, the highest emergency
    recall, then doctor recall. `levelled`: (text, level) pairs."""
    matcher = Matcher(kb, models)
    trials = []
    for c in TRIAGE_C_GRID:
        base = replace(kb.settings, triage_c=c)
        triage = Triage(
            replace(kb, settings=base), matcher.rules, models or IN_MEMORY, matcher.normalize, matcher.training
        )
        rows = []
        for text, level in levelled:
            reading = matcher.read(text)
            rows.append((level, triage.by_rules(reading)[0], triage.confidences(reading)))
        for emergency, doctor in itertools.product(TRIAGE_GRID, TRIAGE_GRID):
            settings = replace(base, emergency_threshold=float(emergency), doctor_threshold=float(doctor))
            outcomes = [
                (level, triage.decide(rules, confidences, settings).level) for level, rules, confidences in rows
            ]
            trials.append(TriageTrial(settings, *_triage_rates(outcomes)))
    trials.sort(key=TriageTrial.rank, reverse=True)
    return trials


def _triage_rates(outcomes: list[tuple[str, Level]]) -> tuple[float, float, float, float]:
    def share(expected: str, got: set[Level]) -> float:
        rows = [level for label, level in outcomes if label == expected]
        return sum(level in got for level in rows) / len(rows) if rows else 1.0

    return (
        share("emergency", {Level.EMERGENCY}),
        share("doctor", {Level.DOCTOR}),
        1.0 - share("none", {Level.NONE, Level.DOCTOR}),
        share("none", {Level.DOCTOR}),
    )


def format_triage_trials(trials: list[TriageTrial], count: int = 5) -> str:
    return "\n".join(
        f"{'ok ' if t.feasible else '   '}emergency recall {t.emergency_recall:.3f}"
        f"  doctor recall {t.doctor_recall:.3f}  false alarms {t.false_alarms:.3f}"
        f"  harmless as doctor {t.none_as_doctor:.3f}  | triage_c={t.settings.triage_c:g}, "
        f"emergency_threshold={t.settings.emergency_threshold:g}, doctor_threshold={t.settings.doctor_threshold:g}"
        for t in trials[:count]
    )


TRIAGE_KEYS = ("triage_c", "emergency_threshold", "doctor_threshold")
