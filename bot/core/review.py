"""What `kb check` warns about in an answer: a promised cure or a named dose, with the file and
line of the answer's line. The word lists are knowledge/review.yaml; the checklist around them is
docs/KNOWLEDGE-REVIEW.md."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .yamlschema import Problem, Reader


@dataclass(frozen=True)
class Review:
    """knowledge/review.yaml: what `kb check` warns about in an answer (docs/KNOWLEDGE-REVIEW.md)."""

    cure_promises: tuple[str, ...]
    dose_units: tuple[str, ...]
    dose_frequencies: tuple[str, ...]


def read_review(node, r: Reader | None) -> Review | None:
    if node is None:
        return None
    keys = ("cure_promises", "dose_units", "dose_frequencies")
    top = r.mapping(node, "review", required=keys) or {}
    lists = {k: tuple(text.lower().strip() for text, _ in r.strings(top[k], k)) for k in keys if k in top}
    return Review(**lists) if len(lists) == len(keys) else None


def _phrases(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


def review_answers(intents: Iterable, review: Review, numbers: Mapping[str, int]) -> list[Problem]:
    """Warnings for the answer lines of `intents` (knowledge.Intent) that promise a cure or name
    a dose (a number with a unit, or "times a day"), each at its file and line."""
    cure = re.compile(rf"(?<!\w)({_phrases(review.cure_promises)})(?!\w)", re.IGNORECASE)
    amount = rf"(?:\d+(?:[.,/]\d+)?|{_phrases(numbers)}|se(?=kali))"
    dose = re.compile(
        rf"(?<!\w){amount}\s*(?:-|–|sampai|hingga)?\s*{amount}?\s*"
        rf"(?:(?:{_phrases(review.dose_units)})(?!\w)|(?:x|kali)\s*(?:{_phrases(review.dose_frequencies)})(?!\w))",
        re.IGNORECASE,
    )
    warnings = []
    for intent in intents:
        for offset, line in enumerate(intent.answer.splitlines()):
            where = (intent.file, intent.answer_line + offset)
            for found in cure.finditer(line):
                warnings.append(Problem(*where, f"intent '{intent.id}' answer promises a cure: '{found.group(0)}'"))
            for found in dose.finditer(line):
                warnings.append(Problem(*where, f"intent '{intent.id}' answer names a dose: '{found.group(0)}'"))
    return warnings
