"""Danger signs: rules from knowledge/danger_signs.yaml, looked for before any intent.

Safety is not learned: a sign is present when every one of its groups has an affirmed term in
the message (not right after a negation), all within a few words of each other in one clause,
right next to each other across a clause end, or anywhere for a sign marked `anywhere`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

from .knowledge import KnowledgeBase
from .normalize import Normalizer
from .repair import Token, words_of

RED_FLAG = "red_flag"
# The words of one danger sign must lie in one clause within this many positions of each other,
# or, across a comma or sentence end, right next to each other.
_SPAN = 8
_SPAN_ACROSS_CLAUSES = 2
_NEGATION_BRIDGE = 2

Parts = tuple[tuple[str, tuple[int, ...]], ...]


class DangerSigns:
    """The knowledge base's danger signs, compiled for fast lookup in repaired words."""

    def __init__(self, kb: KnowledgeBase, normalize: Normalizer):
        lexicon = kb.lexicon
        self._clitics = lexicon.clitics
        self._negations = lexicon.negations
        self._bridges = lexicon.negation_bridges
        compiled = [(sign.id, [[tuple(normalize.tokens(term)) for term in group] for group in sign.groups]) for sign in kb.danger_signs]
        self._terms = [(sign_id, [[term for term in group if term] for group in groups]) for sign_id, groups in compiled]
        self._intent = {sign.id: sign.intent for sign in kb.danger_signs}
        self._anywhere = {sign.id for sign in kb.danger_signs if sign.anywhere}
        self._group_counts = {sign.id: len(sign.groups) for sign in kb.danger_signs}
        self.vocabulary = frozenset(w for _, groups in self._terms for group in groups for term in group for w in term)
        # Per sign, the first words of each group's terms: a sign missing one is skipped at once.
        self._firsts = [[frozenset(term[0] for term in group) for group in groups] for _, groups in self._terms]
        body = lexicon.calf_words | lexicon.other_body_parts
        self._body_terms = {term for _, groups in self._terms for group in groups for term in group if set(term) <= body}
        self._terms_by_first: dict[str, set[tuple[str, ...]]] = {}
        for _, groups in self._terms:
            for group in groups:
                for term in group:
                    self._terms_by_first.setdefault(term[0], set()).add(term)
        # "rasanya" in "mati rasanya", "dadaku" in "dadaku sesak": a clitic on a danger word.
        self._stems = {word + clitic: word for word in self.vocabulary for clitic in self._clitics}

    def intent(self, sign_id: str) -> str:
        """The intent that answers a sign (red_flag unless the sign names another)."""
        return self._intent.get(sign_id, RED_FLAG)

    def signs_in(self, clauses: Sequence[Sequence[str]], resolved: Mapping[str, tuple[Token, ...]], words: Sequence[str]) -> tuple[str, ...]:
        """Danger signs within one clause, or with their words right next to each other, or,
        for the signs marked `anywhere`, anywhere in the message."""
        sequence = words_of(resolved, words)
        scattered = self._hits(sequence, len(sequence))
        if not scattered:
            return ()  # not even scattered over the message: no clause can have one
        found = [sign for clause in clauses for sign, _ in self._hits(words_of(resolved, clause), _SPAN)]
        found += [sign for sign, _ in scattered if sign in self._anywhere]
        found += [sign for sign, _ in self._hits(sequence, _SPAN_ACROSS_CLAUSES)]
        return tuple(dict.fromkeys(found))

    def parts_in(self, sequence: Sequence[str]) -> Parts:
        """For each sign marked `anywhere` that these words show in part (some of its groups,
        affirmed, not all), the indices of those groups: the next message may complete it."""
        words, positions = self._positions(sequence)
        parts = []
        for sign_id, groups in self._terms:
            if sign_id in self._anywhere:
                present = tuple(i for i, group in enumerate(groups) if self._term_places(words, positions, group))
                if present and len(present) < len(groups):
                    parts.append((sign_id, present))
        return tuple(parts)

    def completed(self, parts: Parts, carried: Parts) -> str | None:
        """A sign marked `anywhere` that this message's parts complete with the parts the
        previous message showed, if any."""
        now = dict(parts)
        for sign_id, before in carried:
            mine = set(now.get(sign_id, ()))
            groups = self._group_counts.get(sign_id)
            if mine and groups is not None and mine | set(before) == set(range(groups)):
                return sign_id
        return None

    def negated_raw_words(self, words: Sequence[str], resolved: Mapping[str, tuple[Token, ...]]) -> set[int]:
        """Indices of the message words that only say a danger sign is absent ("ga sesak kok,
        cuma pegal" is about aching, not about breathlessness)."""
        if self._negations.isdisjoint(words):
            return set()
        positions = [index for index, raw in enumerate(words) for _ in resolved[raw]]
        negated = self._negated_words(words_of(resolved, words))
        by_word: dict[int, list[int]] = {}
        for position, index in enumerate(positions):
            by_word.setdefault(index, []).append(position)
        return {index for index, places in by_word.items() if all(p in negated for p in places)}

    def _negated_words(self, words: Sequence[str]) -> set[int]:
        """Positions of danger words said not to be present, with their negation."""
        words = [self._stems.get(w, w) for w in words]
        dropped: set[int] = set()
        for index, word in enumerate(words):
            for term in self._terms_by_first.get(word, ()):
                if term in self._body_terms:
                    continue  # "ga sih betis kedutan": a body part is not a symptom to deny
                if tuple(words[index : index + len(term)]) != term or not self._negated_at(words, index):
                    continue
                start = index - 1
                while start >= 0 and words[start] not in self._negations:
                    start -= 1
                end = index + len(term)
                # "tidak nyeri dada", "ga sesak napas": the danger words that follow belong to
                # the same negated phrase.
                while end < len(words) and words[end] in self.vocabulary:
                    end += 1
                dropped.update(range(max(start, 0), end))
        return dropped

    def _hits(self, words: Sequence[str], span: int) -> list[tuple[str, tuple[int, int]]]:
        """(sign id, span of words) for each danger sign present: one affirmed term of every
        group, all within `span` words."""
        words, positions = self._positions(words)
        found = []
        present = positions.keys()
        for (sign_id, groups), firsts in zip(self._terms, self._firsts):
            if any(first.isdisjoint(present) for first in firsts):
                continue
            places = [self._term_places(words, positions, group) for group in groups]
            if not all(places):
                continue
            best = None
            for choice in itertools.product(*places):
                start, end = min(p[0] for p in choice), max(p[1] for p in choice)
                if end - start <= span and (best is None or end - start < best[1] - best[0]):
                    best = (start, end)
            if best is not None:
                found.append((sign_id, best))
        return found

    def _positions(self, words: Sequence[str]) -> tuple[list[str], dict[str, list[int]]]:
        """The words with danger-sign stems applied, and where each danger word occurs."""
        words = [self._stems.get(w, w) for w in words]
        positions: dict[str, list[int]] = {}
        for index, word in enumerate(words):
            if word in self.vocabulary:
                positions.setdefault(word, []).append(index)
        return words, positions

    def _term_places(self, words: list[str], positions: dict[str, list[int]], group) -> list[tuple[int, int]]:
        """Where terms of a group occur, affirmed (not right after a negation): (first, last)."""
        places = []
        for term in group:
            size = len(term)
            for index in positions.get(term[0], ()):
                if tuple(words[index : index + size]) == term and not self._negated_at(words, index):
                    places.append((index, index + size - 1))
        return places

    def _negated_at(self, words: list[str], index: int) -> bool:
        """A negation before `index`, with at most two bridge words between ("tidak ada sesak",
        "belum pernah pingsan", "tidak sampai sesak")."""
        for gap in range(0, _NEGATION_BRIDGE + 1):
            before = index - 1 - gap
            if before < 0:
                return False
            if words[before] in self._negations:
                return all(w in self._bridges for w in words[before + 1 : index])
        return False
