"""Repair a message's words against the knowledge base's vocabulary, token by token.

Each word unknown to the knowledge base is resolved, cheapest step first: a clitic split off
("betismu" -> betis), a particle or a second word glued on ("knpya", "kopikedutan"), or a typo
corrected with rapidfuzz (optimal string alignment: a swapped, missing, extra or wrong letter is
one edit). Ordinary words that no example uses (lexicon common_words) are left alone.

The repaired words feed the intent model (as one of its views of a message) and the danger-sign
rules. Fuzzy string matching is the right tool here: it needs no training and it is exact about
what it changed.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import OSA

from .knowledge import Lexicon

_MIN_TYPO_LENGTH = 4
_CACHE_LIMIT = 50_000
_TYPO_TIE = 5.0
_FIRST_LETTER_TYPO = 90.0
# One edit in fewer letters than this is below 90% similarity: no other first letter is tried.
_FIRST_LETTER_MIN_LENGTH = 10


@dataclass(frozen=True)
class Reading:
    """A message split into sentences and clauses (canonical tokens), its words repaired."""

    text: str
    sentences: list[list[str]]
    clauses: list[list[str]]
    words: list[str]
    resolved: dict[str, tuple[Token, ...]]


@dataclass(frozen=True)
class Token:
    """A message token after repair: `word` is in the vocabulary when `similarity` > 0."""

    raw: str
    word: str
    similarity: float
    how: str  # exact | clitic | split | typo | common | unknown | number


class Repair:
    """Maps message words onto a vocabulary. Build once per knowledge base; thread-safe for
    reading (its memo of repaired words is a plain dict, replaced wholesale when full)."""

    def __init__(self, lexicon: Lexicon, frequency: Mapping[str, int], known: Collection[str], typo_cutoff: float):
        """`frequency`: how many examples use each word; `known`: the triage rules' words, never
        corrected into anything else and a correction target for the intent model however
        rarely the examples use them (triage itself never counts a correction: see words_of)."""
        self._slang = {k: tuple(v.split()) for k, v in lexicon.slang.items()}
        self._clitics = lexicon.clitics
        # "knpya", "gimanasih": a particle typed onto the word before it.
        self._glued_particles = sorted((p for p in lexicon.particles if len(p) >= 2), key=len, reverse=True)
        # Real words that are not in any example: never "corrected".
        self._common = lexicon.common_words | {w for v in self._slang.values() for w in v}
        self._frequency = dict(frequency)
        self.vocab = frozenset(self._frequency) | frozenset(known)
        self._typo_cutoff = typo_cutoff
        # A typo is corrected into a well-attested word only: one used by two examples or more
        # (a word seen once may itself be a typo), or a triage word.
        targets = [
            w
            for w in sorted(self.vocab)
            if len(w) >= _MIN_TYPO_LENGTH - 1 and not w.isdigit() and (self._frequency.get(w, 0) >= 2 or w in known)
        ]
        self._by_length: dict[int, list[str]] = {}
        self._buckets: dict[str, dict[int, list[str]]] = {}
        for word in targets:
            self._by_length.setdefault(len(word), []).append(word)
            self._buckets.setdefault(word[0], {}).setdefault(len(word), []).append(word)
        self._candidates: dict[tuple[int, str], list[str]] = {}
        self._cache: dict[str, tuple[Token, ...]] = {}

    def resolve(self, words: Iterable[str], fuzzy_limit: int | None = None) -> dict[str, tuple[Token, ...]]:
        """Map each distinct word onto the vocabulary (unknown words get similarity 0).

        Typo correction, the only costly step, is tried for the first `fuzzy_limit` distinct
        words; the rest get the cheap steps only, which keeps a 5,000-character message fast.
        """
        resolved: dict[str, tuple[Token, ...]] = {}
        pending: list[str] = []
        for position, raw in enumerate(dict.fromkeys(words)):
            found = self._cache.get(raw) or self._resolve_cheap(raw)
            if found is None:
                if fuzzy_limit is None or position < fuzzy_limit:
                    pending.append(raw)
                found = (Token(raw, raw, 0.0, "unknown"),)
            resolved[raw] = found
        for raw in pending:
            found = resolved[raw] = self._correct_typo(raw)
            self._remember(raw, found)
        return resolved

    def forget(self) -> None:
        """Forget every repaired word (a benchmark times the next message as if it were new)."""
        self._cache = {}

    def _resolve_cheap(self, raw: str) -> tuple[Token, ...] | None:
        if raw in self.vocab:
            return (Token(raw, raw, 1.0, "exact"),)
        if raw.isdigit():
            return (Token(raw, raw, 0.0, "number"),)
        found = self._without_suffix(raw, self._clitics, "clitic")
        if found:
            return found
        if raw in self._common:
            return (Token(raw, raw, 0.0, "common"),)
        found = self._without_suffix(raw, self._glued_particles, "split")
        if found:
            return found
        if len(raw) >= 6:
            for cut in range(3, len(raw) - 2):
                left = self._slang.get(raw[:cut], (raw[:cut],))
                right = self._slang.get(raw[cut:], (raw[cut:],))
                if all(w in self.vocab for w in left + right):
                    return tuple(Token(raw, w, 1.0, "split") for w in left + right)
        if len(raw) < _MIN_TYPO_LENGTH:
            return (Token(raw, raw, 0.0, "unknown"),)
        return None

    def _without_suffix(self, raw: str, suffixes: Sequence[str], how: str) -> tuple[Token, ...] | None:
        """The word without one of `suffixes`, when what is left (after slang) is known."""
        for suffix in suffixes:
            stem = raw[: -len(suffix)]
            if raw.endswith(suffix) and len(stem) >= 3:
                words = self._slang.get(stem, (stem,))
                if all(w in self.vocab for w in words):
                    return tuple(Token(raw, w, 1.0, how) for w in words)
        return None

    def _correct_typo(self, raw: str) -> tuple[Token, ...]:
        """Nearest vocabulary word by optimal-string-alignment similarity, via rapidfuzz.
        Typing slips rarely hit the first letter, so words with the same first letter are tried
        first; another first letter needs a closer match. Among near-ties the word used by more
        examples wins ("betsi" -> betis)."""
        found = self._nearest(raw, self._typo_candidates(len(raw), raw[0]), self._typo_cutoff)
        if not found and len(raw) >= _FIRST_LETTER_MIN_LENGTH:
            found = self._nearest(raw, self._typo_candidates(len(raw), ""), _FIRST_LETTER_TYPO)
        if not found:
            return (Token(raw, raw, 0.0, "unknown"),)
        best = max(score for _, score in found)
        word, score = max(
            ((w, sc) for w, sc in found if sc >= best - _TYPO_TIE),
            key=lambda ws: (self._frequency.get(ws[0], 0), ws[1]),
        )
        return (Token(raw, word, score / 100, "typo"),)

    @staticmethod
    def _nearest(raw: str, candidates: list[str], cutoff: float) -> list[tuple[str, float]]:
        found = process.extract(raw, candidates, scorer=OSA.normalized_similarity, score_cutoff=cutoff / 100, limit=8)
        return [(word, score * 100) for word, score, _ in found]

    def _typo_candidates(self, length: int, first: str) -> list[str]:
        """Vocabulary words (starting with `first`, if given) whose length can reach the typo
        cutoff at all: a similarity of c% needs the shorter word to be c% of the longer."""
        key = (length, first)
        found = self._candidates.get(key)
        if found is None:
            share = self._typo_cutoff / 100
            lengths = range(math.ceil(length * share), math.floor(length / share) + 1)
            buckets = self._buckets.get(first, {}) if first else self._by_length
            found = self._candidates[key] = [w for n in lengths for w in buckets.get(n, ())]
        return found

    def _remember(self, raw: str, found: tuple[Token, ...]) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache = {}
        self._cache[raw] = found


def words_of(resolved: Mapping[str, tuple[Token, ...]], raw_words: Sequence[str], typos: bool = True) -> list[str]:
    """The vocabulary words a run of message words resolved to, in order. Without `typos`, a
    word corrected as a typo stays as typed: triage never counts a guess ("menyusui" is not
    "menyusut"); misspellings people really type are slang in the lexicon instead."""
    if typos:
        return [token.word for raw in raw_words for token in resolved[raw]]
    return [token.raw if token.how == "typo" else token.word for raw in raw_words for token in resolved[raw]]
