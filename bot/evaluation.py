"""Measure the bot on labelled messages: accuracy, per-intent precision/recall, confusions.

Each message runs as the first message of a fresh conversation through the dialogue engine,
exactly as a new patient's message would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .core.dates import JAKARTA
from .core.dialogue import Engine
from .core.messages import FALLBACK_INTENT, ConversationState, Decision, Incoming
from .core.yamlschema import Problems, Reader, compose

RED_FLAG = "red_flag"
# Messages are evaluated as if sent on a Wednesday at 10:00 in Jakarta (the clinic is open),
# so that reports never depend on when they are run.
REFERENCE_NOW = datetime(2026, 11, 25, 10, 0, tzinfo=JAKARTA)

# What the core issue asks of the held-out set.
TARGETS = {
    "accuracy": (">=", 0.93),
    "wrong_answer_rate": ("<=", 0.03),
    "red_flag_recall": (">=", 1.0),
    "out_of_scope_handled": (">=", 0.90),
}


class LabelledSetError(Exception):
    pass


@dataclass(frozen=True)
class Labelled:
    text: str
    intent: str
    line: int


@dataclass(frozen=True)
class Result:
    text: str
    expected: str
    intent: str
    decision: str
    score: float
    candidates: tuple[dict, ...]

    @property
    def outcome(self) -> str:
        """What the patient got: the answered intent, 'clarify', or 'fallback'."""
        if self.decision == Decision.ANSWER.value:
            return self.intent
        return self.decision

    @property
    def correct(self) -> bool:
        return self.outcome == self.expected

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "expected": self.expected,
            "intent": self.intent,
            "decision": self.decision,
            "score": round(self.score, 4),
            "candidates": list(self.candidates),
        }


def load_labelled(path: str | Path) -> list[Labelled]:
    """Read a YAML list of {text, intent}; problems are reported with file and line."""
    path = Path(path)
    problems = Problems()
    node = compose(path, str(path), problems)
    items: list[Labelled] = []
    if node is not None:
        reader = Reader(str(path), problems)
        for item in reader.sequence(node, "labelled messages") or ():
            fields = reader.mapping(item, "labelled message", required=("text", "intent"))
            if fields and "text" in fields and "intent" in fields:
                text = reader.string(fields["text"], "text", allow_empty=True)
                intent = reader.string(fields["intent"], "intent")
                if text is not None and intent is not None:
                    items.append(Labelled(text, intent.strip(), item.start_mark.line + 1))
    if problems:
        raise LabelledSetError("\n".join(str(p) for p in sorted(problems)))
    return items


def run(engine: Engine, items: list[Labelled]) -> list[Result]:
    unknown = sorted({item.intent for item in items} - set(engine.kb.intents))
    if unknown:
        raise LabelledSetError(f"labels name unknown intents: {', '.join(unknown)}")
    results = []
    for item in items:
        turn = engine.step(ConversationState(), Incoming(item.text), REFERENCE_NOW)
        match = turn.match
        candidates = tuple({"intent": c.intent, "score": round(c.score, 4)} for c in match.candidates)
        results.append(Result(item.text, item.intent, match.intent, match.decision.value, match.score, candidates))
    return results


def summarize(results: list[Result]) -> dict:
    total = len(results)
    if not total:
        return {"total": 0}
    answered_wrong = sum(1 for r in results if r.decision == "answer" and not r.correct)
    out_of_scope = [r for r in results if r.expected == FALLBACK_INTENT]
    red_flags = [r for r in results if r.expected == RED_FLAG]
    labels = sorted({r.expected for r in results} | {r.outcome for r in results} - {"clarify"})
    per_intent = {}
    for label in labels:
        predicted = [r for r in results if r.outcome == label]
        actual = [r for r in results if r.expected == label]
        hits = sum(1 for r in actual if r.outcome == label)
        per_intent[label] = {
            "support": len(actual),
            "precision": round(hits / len(predicted), 4) if predicted else None,
            "recall": round(hits / len(actual), 4) if actual else None,
        }
    confusion = Counter((r.expected, r.outcome) for r in results if not r.correct)
    return {
        "total": total,
        "accuracy": round(sum(r.correct for r in results) / total, 4),
        "wrong_answer_rate": round(answered_wrong / total, 4),
        "clarify_rate": round(sum(r.decision == "clarify" for r in results) / total, 4),
        "fallback_rate": round(sum(r.decision == "fallback" for r in results) / total, 4),
        "red_flag_recall": round(sum(r.outcome == RED_FLAG for r in red_flags) / len(red_flags), 4) if red_flags else None,
        "out_of_scope_handled": round(sum(r.outcome == FALLBACK_INTENT for r in out_of_scope) / len(out_of_scope), 4)
        if out_of_scope
        else None,
        "per_intent": per_intent,
        "confusions": [{"expected": e, "got": g, "count": n} for (e, g), n in confusion.most_common()],
    }


def target_failures(summary: dict) -> list[str]:
    """The core issue's targets that a summary misses (an empty list means all are met)."""
    failures = []
    for key, (op, bound) in TARGETS.items():
        value = summary.get(key)
        if value is None:
            continue
        ok = value >= bound if op == ">=" else value <= bound
        if not ok:
            failures.append(f"{key} = {value:.4f}, target {op} {bound}")
    return failures


def format_report(name: str, summary: dict, results: list[Result], show_errors: int = 30) -> str:
    if not summary.get("total"):
        return f"{name}: no messages"

    def pct(value):
        return "   -  " if value is None else f"{value * 100:5.1f}%"

    lines = [
        f"== {name}: {summary['total']} messages",
        f"accuracy             {pct(summary['accuracy'])}",
        f"wrong answers        {pct(summary['wrong_answer_rate'])}   (answered with the wrong intent)",
        f"clarify rate         {pct(summary['clarify_rate'])}",
        f"fallback rate        {pct(summary['fallback_rate'])}",
        f"red_flag recall      {pct(summary['red_flag_recall'])}",
        f"out of scope handled {pct(summary['out_of_scope_handled'])}",
        "",
        f"{'intent':<20} {'support':>7} {'precision':>9} {'recall':>7}",
    ]
    for label, row in summary["per_intent"].items():
        lines.append(f"{label:<20} {row['support']:>7} {pct(row['precision']):>9} {pct(row['recall']):>7}")
    if summary["confusions"]:
        lines += ["", "confusions (expected -> got):"]
        lines += [f"  {c['count']:>3} × {c['expected']} -> {c['got']}" for c in summary["confusions"][:15]]
    wrong = [r for r in results if not r.correct]
    if wrong and show_errors:
        lines += ["", f"misses (first {min(show_errors, len(wrong))} of {len(wrong)}):"]
        for r in wrong[:show_errors]:
            top = ", ".join(f"{c['intent']} {c['score']:.2f}" for c in r.candidates[:3])
            lines.append(f"  [{r.expected} -> {r.outcome}] {r.text!r}  ({top})")
    failures = target_failures(summary)
    lines += ["", "targets: " + ("all met" if not failures else "MISSED: " + "; ".join(failures))]
    return "\n".join(lines)
