"""Match a patient's message to an intent of the knowledge base.

How a message is scored, in order:
1. The normalizer turns it into canonical tokens ("knp betis kedut2" -> kenapa betis kedutan
   kedutan), sentence by sentence.
2. Each word unknown to the knowledge base is resolved against the vocabulary of the examples:
   a clitic split off ("betismu" -> betis), a particle or a second word glued on ("knpya",
   "kopikedutan"), or a typo corrected with rapidfuzz (optimal string alignment: a swapped,
   missing, extra or wrong letter is one edit). Ordinary words that no example uses (lexicon
   common_words) are left alone and weigh little.
3. Danger signs (knowledge/danger_signs.yaml) are looked for in the whole message; any one wins.
4. Every example sharing a word gets a score: an F-measure of the weighted word overlap (a word
   used by few intents weighs more; words the knowledge base has never seen weigh against the
   match), the best ones refined with rapidfuzz string similarity (`process.cdist`). An intent
   scores its best example, blended with a vote of every known word. Long messages are also
   scored sentence by sentence, and greetings or thanks around a question are set aside.
5. The best intent is answered when it is strong and clearly ahead; when two are close the
   patient is asked which one; when nothing is strong enough the message is out of scope.

The index (vocabulary, weights, postings, per-example word lists) is built once, in __init__;
`analyze` does everything that does not depend on thresholds, `decide` applies them, so that
tuning can try many thresholds on one analysis.
"""
from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from .knowledge import KnowledgeBase, MatcherSettings
from .messages import FALLBACK_INTENT, Candidate, Decision, Match

RED_FLAG = "red_flag"
SOCIAL_INTENTS = frozenset({"greeting", "thanks", "goodbye", FALLBACK_INTENT})
_MIN_TYPO_LENGTH = 4
_CACHE_LIMIT = 50_000
_CANDIDATES = 5
_MAX_SENTENCES = 3
_FUZZY_SHORTLIST = 64
# The words of one danger sign must lie in one clause within this many positions of each other,
# or, across a comma or sentence end, right next to each other.
_DANGER_SPAN = 8
_DANGER_SPAN_ACROSS_CLAUSES = 2
_NEGATION_BRIDGE = 2
_RESCORE_SHORTLIST = 512
_MIN_SHARED_FRACTION = 0.2
_TYPO_TIE = 5.0
_FIRST_LETTER_TYPO = 90.0
# One edit in fewer letters than this is below 90% similarity: no other first letter is tried.
_FIRST_LETTER_MIN_LENGTH = 10
_ANSWER, _CLARIFY, _FALLBACK = 0, 1, 2
_DECISIONS = (Decision.ANSWER, Decision.CLARIFY, Decision.FALLBACK)
_R_FUZZY, _R_CLOSE, _R_LOW_CONFIDENCE, _R_OUT_OF_SCOPE, _R_NO_MATCH, _R_RED_FLAG, _R_OTHER_BODY_PART, _R_NAMED_OUT_OF_SCOPE = range(8)
_REASONS = (
    "fuzzy", "close_candidates", "low_confidence", "out_of_scope", "no_match", "red_flag_similar", "other_body_part",
    "out_of_scope:",
)  # fmt: skip


@dataclass(frozen=True)
class _Reading:
    """A message split into sentences, its words resolved, its danger signs found."""

    text: str
    settings: MatcherSettings
    sentences: list[list[str]]
    words: list[str]
    resolved: dict[str, tuple[Token, ...]]
    signs: tuple[str, ...]


@dataclass(frozen=True)
class Analysis:
    """Scores of a message before any threshold is applied (what `decide` needs)."""

    empty: bool = False
    danger_signs: tuple[str, ...] = ()
    plain: np.ndarray | None = field(default=None, compare=False)
    substantive: np.ndarray | None = field(default=None, compare=False)
    greeted: bool = False
    other_body_part: bool = False


@dataclass
class AnalysisBatch:
    """Analyses of many scored messages as matrices, with their threshold-free summaries."""

    plain_summary: "ScoreSummary"
    sub_summary: "ScoreSummary"
    has_sub: np.ndarray
    other_body_part: np.ndarray

    @classmethod
    def of(cls, matcher: "Matcher", analyses: Sequence[Analysis]) -> "AnalysisBatch":
        """Empty and danger-sign analyses have no scores: give them zeros (callers override)."""
        zeros = np.zeros(len(matcher.intent_ids))
        has_sub = np.array([a.substantive is not None for a in analyses])
        plain_summary = matcher.summarize(np.array([a.plain if a.plain is not None else zeros for a in analyses]))
        sub_summary = plain_summary
        if has_sub.any():
            sub_summary = matcher.summarize(np.array([a.substantive if a.substantive is not None else zeros for a in analyses]))
        return cls(plain_summary, sub_summary, has_sub, np.array([a.other_body_part for a in analyses]))


@dataclass(frozen=True)
class ScoreSummary:
    """Per message (one entry per row): best intent, its score, the best rival (fallback
    excluded) and its score, the red_flag score, and whether the best intent is fallback."""

    top: np.ndarray
    top_score: np.ndarray
    second: np.ndarray
    runner_up: np.ndarray
    red_score: np.ndarray
    top_is_fallback: np.ndarray


@dataclass(frozen=True)
class Token:
    """A message token after resolution: `word` is in the vocabulary when `similarity` > 0."""

    raw: str
    word: str
    similarity: float
    how: str  # exact | clitic | split | typo | common | unknown | number


class Matcher:
    """Scores messages against one knowledge base. Build once, call `match` many times."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb
        self.settings: MatcherSettings = kb.settings
        self.normalize = kb.normalizer()
        self._slang = {k: tuple(v.split()) for k, v in kb.lexicon.slang.items()}
        self._greeting = kb.lexicon.greeting_words
        self._thanks = kb.lexicon.thanks_words
        self._clitics = kb.lexicon.clitics
        self._negations_set = kb.lexicon.negations
        self._bridges = kb.lexicon.negation_bridges
        # "knpya", "gimanasih": a particle typed onto the word before it.
        self._glued_particles = sorted((p for p in kb.lexicon.particles if len(p) >= 2), key=len, reverse=True)
        # Real words that are not in any example: never "corrected", and weigh little.
        self._common = kb.lexicon.common_words | {w for v in self._slang.values() for w in v}

        intent_ids: list[str] = []
        example_tokens: list[list[str]] = []
        starts: list[int] = []
        for intent in kb.intents.values():
            examples = [self.normalize.tokens(e.text) for e in intent.examples]
            examples = [[t for t in tokens if not t.isdigit()] or tokens for tokens in examples if tokens]
            if not examples:
                continue
            starts.append(len(example_tokens))
            intent_ids.append(intent.id)
            example_tokens.extend(examples)
        self.intent_ids = tuple(intent_ids)
        self._intent_index = {intent_id: i for i, intent_id in enumerate(intent_ids)}
        self._red_index = self._intent_index.get(RED_FLAG)
        self._social_mask = np.array([i in SOCIAL_INTENTS for i in intent_ids])
        self._calf_mask = np.array([kb.intents[i].topic == "calf" for i in intent_ids])
        # Topics the bot recognises but does not handle: answered with their own text, as out of scope.
        self._out_of_scope_mask = np.array([kb.intents[i].out_of_scope for i in intent_ids])
        self._calf_words = kb.lexicon.calf_words
        self._other_body_parts = kb.lexicon.other_body_parts
        body = self._calf_words | self._other_body_parts
        self._fallback_index = self._intent_index.get(FALLBACK_INTENT)
        self._starts = np.array(starts, dtype=np.intp)

        self._danger = [
            (sign.id, [[tuple(self.normalize.tokens(term)) for term in group] for group in sign.groups])
            for sign in kb.danger_signs
        ]
        self._danger_terms = [(sign_id, [[term for term in group if term] for group in groups]) for sign_id, groups in self._danger]
        self._sign_intent = {sign.id: sign.intent for sign in kb.danger_signs}
        self._signs_anywhere = {sign.id for sign in kb.danger_signs if sign.anywhere}
        self._group_counts = {sign.id: len(sign.groups) for sign in kb.danger_signs}
        self._danger_vocabulary = {w for _, groups in self._danger for group in groups for term in group for w in term}
        # Per sign, the first words of each group's terms: a sign missing one is skipped at once.
        self._danger_firsts = [[frozenset(term[0] for term in group) for group in groups] for _, groups in self._danger_terms]
        self._body_terms = {term for _, groups in self._danger for group in groups for term in group if term and set(term) <= body}
        self._terms_by_first: dict[str, set[tuple[str, ...]]] = {}
        for _, groups in self._danger:
            for group in groups:
                for term in group:
                    if term:
                        self._terms_by_first.setdefault(term[0], set()).add(term)
        self._urgent_intents = {i.id for i in kb.intents.values() if i.action == "handoff_urgent"}
        # "rasanya" in "mati rasanya", "dadaku" in "dadaku sesak": a clitic on a danger word.
        self._danger_stems = {
            word + clitic: word
            for _, groups in self._danger
            for group in groups
            for term in group
            for word in term
            for clitic in self._clitics
        }
        self._frequency: dict[str, int] = {}
        for tokens in example_tokens:
            for word in set(tokens):
                self._frequency[word] = self._frequency.get(word, 0) + 1
        vocab = sorted(
            {t for tokens in example_tokens for t in tokens}
            | {w for _, groups in self._danger for group in groups for term in group for w in term}
        )
        self.vocab = {word: i for i, word in enumerate(vocab)}

        self._vocab_list = vocab
        # A typo is corrected into a well-attested word only: one used by two examples or
        # more, or named in a danger sign (a word seen once may itself be a typo).
        danger_words = {w for _, groups in self._danger for group in groups for term in group for w in term}
        self._typo_targets = [
            w
            for w in vocab
            if len(w) >= _MIN_TYPO_LENGTH - 1 and not w.isdigit() and (self._frequency.get(w, 0) >= 2 or w in danger_words)
        ]
        self._typo_lengths: dict[tuple[int, str], list[str]] = {}
        self._typo_by_length: dict[int, list[str]] = {}
        self._typo_buckets: dict[str, dict[int, list[str]]] = {}
        for word in self._typo_targets:
            self._typo_by_length.setdefault(len(word), []).append(word)
            self._typo_buckets.setdefault(word[0], {}).setdefault(len(word), []).append(word)

        # Specificity weight: a word found in few intents says more about the intent.
        n_intents = len(intent_ids)
        intents_with = np.zeros(len(vocab))
        owner = np.repeat(np.arange(n_intents), np.diff(np.append(self._starts, len(example_tokens))))
        for word_ids in {(owner[e], self.vocab[t]) for e, tokens in enumerate(example_tokens) for t in tokens}:
            intents_with[word_ids[1]] += 1
        self.weights = np.log1p(n_intents / np.maximum(intents_with, 1)) ** kb.settings.idf_power
        self._weight_list = self.weights.tolist()

        postings: dict[int, list[int]] = {}
        norms = np.zeros(len(example_tokens))
        example_words: list[list[int]] = []
        for e, tokens in enumerate(example_tokens):
            word_ids = sorted({self.vocab[t] for t in tokens})
            example_words.append(word_ids)
            for word_id in word_ids:
                postings.setdefault(word_id, []).append(e)
                norms[e] += self.weights[word_id]
        # Each example's distinct word ids, concatenated (CSR layout), for rescoring a shortlist.
        self._ex_ptr = np.concatenate(([0], np.cumsum([len(w) for w in example_words]))).astype(np.intp)
        self._ex_words = np.fromiter((w for words in example_words for w in words), dtype=np.intp)
        self._postings = {w: np.array(ids, dtype=np.intp) for w, ids in postings.items()}
        # How strongly each word points to each intent: the share of the intent's examples
        # that use it, normalised over intents (a word used by one intent only points there).
        share = np.zeros((len(vocab), n_intents))
        sizes = np.diff(np.append(self._starts, len(example_tokens)))
        for e, tokens in enumerate(example_tokens):
            for word_id in {self.vocab[t] for t in tokens}:
                share[word_id, owner[e]] += 1.0 / sizes[owner[e]]
        totals = share.sum(axis=1, keepdims=True)
        self._evidence = np.divide(share, totals, out=np.zeros_like(share), where=totals > 0)
        self._norms = norms
        # Scratch buffers kept zeroed between calls, one set per thread, so that a threaded
        # server can share one Matcher.
        self._local = threading.local()
        self._example_strings = [" ".join(sorted(tokens)) for tokens in example_tokens]
        self._cache: dict[str, tuple[Token, ...]] = {}

    # -- token resolution -------------------------------------------------------------------

    def resolve(self, words: Sequence[str], fuzzy_limit: int | None = None) -> dict[str, tuple[Token, ...]]:
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
        if pending:
            for raw, found in zip(pending, self._correct_typos(pending)):
                resolved[raw] = found
                self._remember(raw, found)
        return resolved

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

    def _without_suffix(self, raw: str, suffixes, how: str) -> tuple[Token, ...] | None:
        """The word without one of `suffixes`, when what is left (after slang) is known."""
        for suffix in suffixes:
            stem = raw[: -len(suffix)]
            if raw.endswith(suffix) and len(stem) >= 3:
                words = self._slang.get(stem, (stem,))
                if all(w in self.vocab for w in words):
                    return tuple(Token(raw, w, 1.0, how) for w in words)
        return None

    def _correct_typos(self, words: list[str]) -> list[tuple[Token, ...]]:
        """Nearest vocabulary word by optimal-string-alignment similarity (a swapped, missing,
        extra or wrong letter is one edit), via rapidfuzz. Typing slips rarely hit the first
        letter, so words with the same first letter are tried first; another first letter needs
        a closer match. Among near-ties the word used by more examples wins ("betsi" -> betis)."""
        cutoff = self.settings.typo_cutoff
        out = []
        for raw in words:
            found = self._nearest(raw, self._typo_candidates(len(raw), raw[0]), cutoff)
            if not found and len(raw) >= _FIRST_LETTER_MIN_LENGTH:
                found = self._nearest(raw, self._typo_candidates(len(raw), ""), _FIRST_LETTER_TYPO)
            if found:
                best = max(score for _, score in found)
                word, score = max(
                    ((w, sc) for w, sc in found if sc >= best - _TYPO_TIE),
                    key=lambda ws: (self._frequency.get(ws[0], 0), ws[1]),
                )
                out.append((Token(raw, word, score / 100, "typo"),))
            else:
                out.append((Token(raw, raw, 0.0, "unknown"),))
        return out

    @staticmethod
    def _nearest(raw: str, candidates: list[str], cutoff: float) -> list[tuple[str, float]]:
        found = process.extract(raw, candidates, scorer=OSA.normalized_similarity, score_cutoff=cutoff / 100, limit=8)
        return [(word, score * 100) for word, score, _ in found]

    def _typo_candidates(self, length: int, first: str) -> list[str]:
        """Vocabulary words (starting with `first`, if given) whose length can reach the typo
        cutoff at all: a similarity of c% needs the shorter word to be c% of the longer."""
        key = (length, first)
        found = self._typo_lengths.get(key)
        if found is None:
            share = self.settings.typo_cutoff / 100
            lengths = range(math.ceil(length * share), math.floor(length / share) + 1)
            buckets = self._typo_buckets.get(first, {}) if first else self._typo_by_length
            found = [w for n in lengths for w in buckets.get(n, ())]
            self._typo_lengths[key] = found
        return found

    def _remember(self, raw: str, found: tuple[Token, ...]) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[raw] = found

    # -- danger signs -----------------------------------------------------------------------

    def danger_signs(self, words: Sequence[str]) -> list[str]:
        """Ids of the danger signs present in a resolved word sequence (one clause)."""
        return [sign_id for sign_id, _ in self._danger_hits(words, _DANGER_SPAN)]

    def _danger_hits(self, words: Sequence[str], span: int) -> list[tuple[str, tuple[int, int]]]:
        """(sign id, span of words) for each danger sign present.

        A sign needs one affirmed term of every group, all within `span` words."""
        words, positions = self._danger_positions(words)
        found = []
        present = positions.keys()
        for (sign_id, groups), firsts in zip(self._danger_terms, self._danger_firsts):
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

    def _danger_positions(self, words: Sequence[str]) -> tuple[list[str], dict[str, list[int]]]:
        """The words with danger-sign stems applied, and where each danger word occurs."""
        words = [self._danger_stems.get(w, w) for w in words]
        positions: dict[str, list[int]] = {}
        for index, word in enumerate(words):
            if word in self._danger_vocabulary:
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
            if words[before] in self._negations_set:
                return all(w in self._bridges for w in words[before + 1 : index])
        return False

    def _signs_in(self, clauses, resolved: dict[str, tuple[Token, ...]], words: list[str]) -> tuple[str, ...]:
        """Danger signs within one clause, or with their words right next to each other, or,
        for the signs marked `anywhere`, anywhere in the message."""
        sequence = _sequence(resolved, words)
        scattered = self._danger_hits(sequence, len(sequence))
        if not scattered:
            return ()  # not even scattered over the message: no clause can have one
        found = [sign for clause in clauses for sign, _ in self._danger_hits(_sequence(resolved, clause), _DANGER_SPAN)]
        found += [sign for sign, _ in scattered if sign in self._signs_anywhere]
        found += [sign for sign, _ in self._danger_hits(sequence, _DANGER_SPAN_ACROSS_CLAUSES)]
        return tuple(dict.fromkeys(found))

    def _negated_raw_words(self, words: list[str], resolved) -> set[int]:
        """Indices of the message words that only say a danger sign is absent."""
        if self._negations_set.isdisjoint(words):
            return set()
        positions = [index for index, raw in enumerate(words) for _ in resolved[raw]]
        negated = self.negated_danger_words([token.word for raw in words for token in resolved[raw]])
        by_word: dict[int, list[int]] = {}
        for position, index in enumerate(positions):
            by_word.setdefault(index, []).append(position)
        return {index for index, places in by_word.items() if all(p in negated for p in places)}

    def negated_danger_words(self, words: Sequence[str]) -> set[int]:
        """Positions of danger words said not to be present, with their negation: left out of
        scoring, so "ga sesak kok, cuma pegal" is about aching, not about breathlessness."""
        words = [self._danger_stems.get(w, w) for w in words]
        dropped: set[int] = set()
        for index, word in enumerate(words):
            for term in self._terms_by_first.get(word, ()):
                if term in self._body_terms:
                    continue  # "ga sih betis kedutan": a body part is not a symptom to deny
                if tuple(words[index : index + len(term)]) != term or not self._negated_at(words, index):
                    continue
                start = index - 1
                while start >= 0 and words[start] not in self._negations_set:
                    start -= 1
                end = index + len(term)
                # "tidak nyeri dada", "ga sesak napas": the danger words that follow belong to
                # the same negated phrase.
                while end < len(words) and words[end] in self._danger_vocabulary:
                    end += 1
                dropped.update(range(max(start, 0), end))
        return dropped

    # -- scoring ----------------------------------------------------------------------------

    def scores(self, tokens: Sequence[Token], context: Sequence[str] = ()) -> np.ndarray:
        """Score of every intent (in `intent_ids` order) for resolved tokens, in 0..1."""
        return self._score_unit(tokens, context)[0]

    def _score_unit(self, tokens: Sequence[Token], context: Sequence[str] = (), within: np.ndarray | None = None):
        """(intent scores, the examples sharing most with the message).

        With `within`, only those examples are compared: a sentence of a message shares words
        only with examples that the whole message shares words with, so its sentences are
        rescored on the whole message's best examples instead of the whole knowledge base."""
        s = self.settings
        unknown_weight = 0.0
        seen: set[str] = set()
        postings: list[tuple[int, float]] = []
        for token in tokens:
            if token.how == "number" or token.word in seen:
                continue
            seen.add(token.word)
            if token.similarity > 0:
                word_id = self.vocab[token.word]
                postings.append((word_id, self._weight_list[word_id] * token.similarity))
            else:
                unknown_weight += s.common_weight if token.how == "common" else s.unknown_weight
        if not postings:
            return np.zeros(len(self.intent_ids)), _EMPTY
        query_ids = np.fromiter((w for w, _ in postings), dtype=np.intp, count=len(postings))
        query_weights = np.fromiter((weight for _, weight in postings), dtype=float, count=len(postings))
        known_weight = float(query_weights.sum())
        query_weight = known_weight + unknown_weight
        evidence = query_weights @ self._evidence[query_ids]
        if within is None:
            hits, shared = self._overlap_all(postings)
            if not len(hits):
                # Only words no example uses (a danger sign's own words): nothing to score.
                return np.zeros(len(self.intent_ids)), _EMPTY
            # Examples sharing only a sliver of what the best ones share cannot come near the
            # top; dropping them keeps long messages on a large knowledge base fast.
            strong = shared >= _MIN_SHARED_FRACTION * shared.max()
            hits, shared = hits[strong], shared[strong]
            shortlist = hits
            if len(hits) > _RESCORE_SHORTLIST:
                shortlist = hits[np.argpartition(-shared, _RESCORE_SHORTLIST - 1)[:_RESCORE_SHORTLIST]]
        else:
            hits, shared = self._overlap_within(postings, within)
            shortlist = within
        # Example score: F-measure of the weighted overlap (precision over the message,
        # recall over the example), blended with rapidfuzz similarity of the sorted words.
        precision = shared / query_weight
        recall = shared / self._norms[hits]
        beta2 = s.recall_beta**2
        hit_scores = (1 + beta2) * precision * recall / (beta2 * precision + recall)
        if s.fuzzy_weight:
            # rapidfuzz refines the best examples by token overlap; comparing every example
            # would cost time linear in the size of the knowledge base for the same ranking.
            hit_scores *= 1 - s.fuzzy_weight
            best = np.arange(len(hits))
            if len(hits) > _FUZZY_SHORTLIST:
                best = np.argpartition(-hit_scores, _FUZZY_SHORTLIST - 1)[:_FUZZY_SHORTLIST]
            query = " ".join(sorted(t.word for t in tokens if t.how != "number"))
            strings = [self._example_strings[i] for i in hits[best]]
            similarity = process.cdist([query], strings, scorer=fuzz.ratio, dtype=np.uint8)[0]
            hit_scores[best] += s.fuzzy_weight * (similarity / 100.0)
        example_scores = self._example_buffer()
        example_scores[hits] = hit_scores
        try:
            intent_scores = np.maximum.reduceat(example_scores, self._starts)
        finally:
            example_scores[hits] = 0.0
        if s.evidence_weight:
            # Intent score from the vote of every known word, damped by how much of the
            # message is known at all (a message of unknown words is out of scope).
            coverage = (known_weight / query_weight) ** s.coverage_power
            vote = evidence / known_weight * coverage
            intent_scores = (1 - s.evidence_weight) * intent_scores + s.evidence_weight * vote
        if context and len(seen) <= s.context_max_tokens:
            # Context tips a short follow-up towards what was just offered, never towards an
            # urgent intent: a danger sign must be in the message itself.
            for intent_id in context:
                index = self._intent_index.get(intent_id)
                if index is not None and intent_id not in self._urgent_intents:
                    intent_scores[index] += s.context_bonus
        return np.minimum(intent_scores, 1.0), shortlist

    def _overlap_all(self, postings: list[tuple[int, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Examples sharing a word with the query and their weighted overlap, through the
        postings: one bincount over the concatenated posting lists."""
        lists = [self._postings.get(word_id, _EMPTY) for word_id, _ in postings]
        weights = np.repeat([weight for _, weight in postings], [len(ids) for ids in lists])
        overlap = np.bincount(np.concatenate(lists), weights=weights, minlength=len(self._norms))
        hits = np.flatnonzero(overlap > 0)
        return hits, overlap[hits]

    def _overlap_within(self, postings: list[tuple[int, float]], within: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The same for the given examples only, through each example's own word list."""
        if not len(within):
            return _EMPTY, np.zeros(0)
        query = self._query_buffer()
        ids = np.fromiter((w for w, _ in postings), dtype=np.intp, count=len(postings))
        query[ids] = np.fromiter((weight for _, weight in postings), dtype=float, count=len(postings))
        try:
            starts, ends = self._ex_ptr[within], self._ex_ptr[within + 1]
            lengths = ends - starts
            bounds = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            positions = np.repeat(starts - bounds, lengths) + np.arange(lengths.sum())
            shared_all = np.add.reduceat(query[self._ex_words[positions]], bounds)
        finally:
            query[ids] = 0.0
        keep = shared_all > 0
        return within[keep], shared_all[keep]

    def _query_buffer(self) -> np.ndarray:
        buffer = getattr(self._local, "query", None)
        if buffer is None:
            buffer = self._local.query = np.zeros(len(self.vocab))
        return buffer

    def _example_buffer(self) -> np.ndarray:
        buffer = getattr(self._local, "examples", None)
        if buffer is None:
            buffer = self._local.examples = np.zeros(len(self._norms))
        return buffer

    def danger_signs_in(self, text: str) -> tuple[str, ...]:
        """Ids of the danger signs a message shows: the first step of `analyze` alone, so that
        asking "is this urgent?" costs no scoring."""
        return self._read(text).signs

    def forget(self, words: bool = False) -> None:
        """Forget the last message read (and with `words`, every resolved word), so that a
        benchmark times the next message as if it were new."""
        self._local.reading = None
        if words:
            self._cache.clear()

    def danger_parts_in(self, text: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """For each sign marked `anywhere` that this message shows in part (some of its groups,
        affirmed, not all), the indices of those groups: the next message may complete it."""
        reading = self._read(text)
        words, positions = self._danger_positions(_sequence(reading.resolved, reading.words))
        parts = []
        for sign_id, groups in self._danger_terms:
            if sign_id in self._signs_anywhere:
                present = tuple(i for i, group in enumerate(groups) if self._term_places(words, positions, group))
                if present and len(present) < len(groups):
                    parts.append((sign_id, present))
        return tuple(parts)

    def completed_sign(self, parts: Sequence[tuple[str, Sequence[int]]], carried: Sequence[tuple[str, Sequence[int]]]) -> str | None:
        """A sign marked `anywhere` that this message's parts complete with the parts the
        previous message showed (both from danger_parts_in), if any."""
        now = dict(parts)
        for sign_id, before in carried:
            mine = set(now.get(sign_id, ()))
            groups = self._group_counts.get(sign_id)
            if mine and groups is not None and mine | set(before) == set(range(groups)):
                return sign_id
        return None

    def sign_intent(self, sign_id: str) -> str:
        return self._sign_intent.get(sign_id, RED_FLAG)

    def _read(self, text: str) -> _Reading:
        """Split, resolve and look for danger signs; the last reading is kept per thread
        because the dialogue asks about danger signs and then matches the same text."""
        last = getattr(self._local, "reading", None)
        if last is not None and last.text == text and last.settings is self.settings:
            return last
        sentences, clauses = self.normalize.split(text)
        words = [word for sentence in sentences for word in sentence]
        resolved = self.resolve(words, fuzzy_limit=self.settings.max_tokens) if words else {}
        signs = self._signs_in(clauses, resolved, words) if words else ()
        reading = self._local.reading = _Reading(text, self.settings, sentences, words, resolved, signs)
        return reading

    def analyze(self, text: str, context: Sequence[str] = ()) -> Analysis:
        """Everything `decide` needs about a message; independent of the thresholds."""
        reading = self._read(text)
        sentences, words, resolved = reading.sentences, reading.words, reading.resolved
        if not words:
            return Analysis(empty=True)
        limit = self.settings.max_tokens
        if reading.signs:
            return Analysis(danger_signs=reading.signs)
        dropped = self._negated_raw_words(words, resolved)
        if dropped:
            if len(dropped) == len(words):
                # Only "not this danger sign": nothing left to answer.
                return Analysis(plain=np.zeros(len(self.intent_ids)))
            numbered = iter(range(len(words)))
            sentences = [[w for w in sentence if next(numbered) not in dropped] for sentence in sentences]
            sentences = [sentence for sentence in sentences if sentence]
            words = [w for sentence in sentences for w in sentence]

        def resolve_words(unit: Sequence[str]) -> list[Token]:
            return [token for raw in list(dict.fromkeys(unit))[:limit] for token in resolved[raw]]

        full = resolve_words(words)
        units = [full]
        if len(sentences) > 1:
            units += [resolve_words(sentence) for sentence in sentences[-_MAX_SENTENCES:]]
        plain, shortlist = self._score_unit(full, context)
        parts = []
        greeted = False
        for index, unit in enumerate(units):
            lead, core, trail = self._split_social(unit)
            if not core:
                continue
            if index == 0:
                greeted = bool(lead)
                parts.append(self._score_unit(core, context, shortlist)[0] if lead or trail else plain)
            else:
                parts.append(self._score_unit(core, context, shortlist)[0])
        substantive = None
        if parts and (len(parts) > 1 or parts[0] is not plain):
            substantive = np.max(parts, axis=0)
        words_seen = set(_sequence(resolved, words))
        other_body = bool(words_seen & self._other_body_parts) and not words_seen & self._calf_words
        return Analysis(plain=plain, substantive=substantive, greeted=greeted, other_body_part=other_body)

    def decide(self, analysis: Analysis, settings: MatcherSettings | None = None) -> Match:
        """Turn an analysis into a decision under the given (default: configured) thresholds."""
        s = settings or self.settings
        if analysis.empty:
            return Match(Decision.FALLBACK, FALLBACK_INTENT, 0.0, reason="empty")
        if analysis.danger_signs:
            sign = analysis.danger_signs[0]
            intent = self.sign_intent(sign)
            return Match(Decision.ANSWER, intent, 1.0, (Candidate(intent, 1.0),), reason=f"danger_sign:{sign}")
        batch = AnalysisBatch.of(self, [analysis])
        decision, intent, score, reason, used_sub = self.decisions(batch, s)
        scores = analysis.substantive if used_sub[0] else analysis.plain
        order = np.argsort(-scores, kind="stable")[:_CANDIDATES]
        candidates = tuple(Candidate(self.intent_ids[i], float(scores[i])) for i in order)
        acted = FALLBACK_INTENT if decision[0] == _FALLBACK else self.intent_ids[intent[0]]
        greeted = analysis.greeted and bool(used_sub[0])
        why = _REASONS[reason[0]]
        if reason[0] == _R_NAMED_OUT_OF_SCOPE:
            why += self.intent_ids[intent[0]]
        return Match(_DECISIONS[decision[0]], acted, float(score[0]), candidates, why, greeted)

    def decisions(self, batch: AnalysisBatch, s: MatcherSettings):
        """Decisions for many analysed messages at once (vectorised: tuning tries thousands of
        thresholds on cached analyses; `decide` calls it with one message).

        The substantive part of a message (greeting and thanks stripped, sentence by sentence)
        is answered when it names a real topic, unless the whole message is a better match for
        a greeting, thanks or goodbye ("halo admin" is a hello, not a request for staff).
        A calf-specific answer is never given to a question about another body part.
        Returns arrays (decision, intent, score, reason, used_substantive)."""
        plain = self.apply_thresholds(batch.plain_summary, s)
        sub = plain if batch.sub_summary is batch.plain_summary else self.apply_thresholds(batch.sub_summary, s)
        social = self._social_mask
        plain_social = social[plain[1]] & (plain[0] != _FALLBACK)
        use_sub = batch.has_sub & (sub[0] != _FALLBACK) & ~social[sub[1]] & (~plain_social | (sub[2] >= plain[2]))
        decision, intent, score, reason = (np.where(use_sub, a, b) for a, b in zip(sub, plain))
        # "udah itu aja, makasih": thanks or goodbye is not worth a question; take the best.
        second = np.where(use_sub, batch.sub_summary.second, batch.plain_summary.second)
        small_talk = (decision == _CLARIFY) & social[intent] & social[second]
        decision = np.where(small_talk, _ANSWER, decision)
        off = batch.other_body_part & self._calf_mask[intent] & (decision != _FALLBACK)
        decision = np.where(off, _FALLBACK, decision)
        reason = np.where(off, _R_OTHER_BODY_PART, reason)
        named = (decision == _ANSWER) & self._out_of_scope_mask[intent]
        decision = np.where(named, _FALLBACK, decision)
        reason = np.where(named, _R_NAMED_OUT_OF_SCOPE, reason)
        return decision, intent, score, reason, use_sub

    def summarize(self, scores: np.ndarray) -> ScoreSummary:
        """The threshold-independent facts of each row: best intent, its lead, red flag score."""
        rows = np.arange(len(scores))
        top = np.argmax(scores, axis=1)
        others = scores.copy()
        others[rows, top] = -np.inf
        if self._fallback_index is not None:
            others[:, self._fallback_index] = -np.inf
        second = np.argmax(others, axis=1)
        runner_up = np.maximum(others[rows, second], 0.0) if others.shape[1] > 1 else np.zeros(len(scores))
        red = scores[:, self._red_index] if self._red_index is not None else np.zeros(len(scores))
        top_is_fallback = top == self._fallback_index if self._fallback_index is not None else np.zeros(len(scores), bool)
        return ScoreSummary(top, scores[rows, top], second, runner_up, red, top_is_fallback)

    def apply_thresholds(self, summary: ScoreSummary, s: MatcherSettings):
        top, top_score, runner_up = summary.top, summary.top_score, summary.runner_up
        plausible = top_score >= s.clarify_threshold
        decision = np.full(len(top), _FALLBACK)
        reason = np.full(len(top), _R_NO_MATCH)
        intent = top.copy()
        score = top_score.copy()
        # Each rule applies only where no earlier rule did; written last-first so earlier wins.
        steps = [
            (plausible, _CLARIFY, _R_LOW_CONFIDENCE),
            (top_score >= s.answer_threshold, _ANSWER, _R_FUZZY),
            (plausible & (runner_up >= s.clarify_threshold), _CLARIFY, _R_CLOSE),
            ((top_score >= s.answer_threshold) & (top_score - runner_up >= s.clarify_margin), _ANSWER, _R_FUZZY),
            (summary.top_is_fallback & plausible, _FALLBACK, _R_OUT_OF_SCOPE),
        ]
        for mask, code, why in steps:
            decision[mask] = code
            reason[mask] = why
        if self._red_index is not None:
            red = summary.red_score >= s.red_flag_threshold
            decision[red] = _ANSWER
            reason[red] = _R_RED_FLAG
            intent[red] = self._red_index
            score[red] = summary.red_score[red]
        return decision, intent, score, reason

    def match(self, text: str, context: Sequence[str] = ()) -> Match:
        """Decide what to do with one message. `context`: intents the last reply offered."""
        return self.decide(self.analyze(text, context))

    def _split_social(self, tokens: list[Token]) -> tuple[list[Token], list[Token], list[Token]]:
        """Leading greeting words, the rest, trailing thanks words."""
        start = 0
        while start < len(tokens) and tokens[start].word in self._greeting:
            start += 1
        end = len(tokens)
        while end > start and tokens[end - 1].word in self._thanks:
            end -= 1
        return tokens[:start], tokens[start:end], tokens[end:]

    def clarify_options(self, match: Match) -> tuple[str, ...]:
        """The two intents a clarify question offers (never fallback or an urgent intent)."""
        options = [c.intent for c in match.candidates if c.intent != FALLBACK_INTENT and c.intent not in self._urgent_intents]
        return tuple(options[:2])


_EMPTY = np.array([], dtype=np.intp)


def _sequence(resolved: dict[str, tuple[Token, ...]], words: Sequence[str]) -> list[str]:
    """The vocabulary words a run of message words resolved to, in order."""
    return [token.word for raw in words for token in resolved[raw]]
