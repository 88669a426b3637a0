"""Match a patient's message to an intent of the knowledge base.

How a message is scored, in order:
1. The normalizer turns it into canonical tokens ("knp betis kedut2" -> kenapa betis kedutan kedutan).
2. Each token unknown to the knowledge base is resolved against the vocabulary of the examples:
   a clitic split off ("betisku" -> betis), two glued words split ("betiskedutan"), or a typo
   corrected with rapidfuzz (`process.cdist`, one vectorised call for all unknown tokens).
3. Danger signs (knowledge/danger_signs.yaml) are looked for in the whole message; any one wins.
4. Every example gets a score: an F-measure of weighted token overlap (each token weighted by how
   specific it is to few intents, unknown tokens weighing against the match), blended with a
   rapidfuzz string similarity over all examples (`process.cdist` again). An intent scores
   its best example.
5. The best intent is answered when it is strong and clearly ahead; when two are close the
   patient is asked which one; when nothing is strong enough the message is out of scope.

The index (vocabulary, weights, postings, example strings) is built once, in __init__.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from .knowledge import KnowledgeBase, MatcherSettings
from .messages import FALLBACK_INTENT, Candidate, Decision, Match

RED_FLAG = "red_flag"
SOCIAL_INTENTS = frozenset({"greeting", "thanks", "goodbye", FALLBACK_INTENT})
_MIN_TYPO_LENGTH = 4
_CACHE_LIMIT = 50_000
_CANDIDATES = 5


@dataclass(frozen=True)
class Token:
    """A message token after resolution: `word` is in the vocabulary when `similarity` > 0."""

    raw: str
    word: str
    similarity: float
    how: str  # exact | clitic | split | typo | unknown | number


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
        self._starts = np.array(starts, dtype=np.intp)

        self._danger = [
            (sign.id, [[tuple(self.normalize.tokens(term)) for term in group] for group in sign.groups])
            for sign in kb.danger_signs
        ]
        vocab = sorted(
            {t for tokens in example_tokens for t in tokens}
            | {w for _, groups in self._danger for group in groups for term in group for w in term}
        )
        self.vocab = {word: i for i, word in enumerate(vocab)}
        self._vocab_list = vocab
        self._typo_targets = [w for w in vocab if len(w) >= _MIN_TYPO_LENGTH - 1 and not w.isdigit()]

        # Specificity weight: a word found in few intents says more about the intent.
        n_intents = len(intent_ids)
        intents_with = np.zeros(len(vocab))
        owner = np.repeat(np.arange(n_intents), np.diff(np.append(self._starts, len(example_tokens))))
        for word_ids in {(owner[e], self.vocab[t]) for e, tokens in enumerate(example_tokens) for t in tokens}:
            intents_with[word_ids[1]] += 1
        self.weights = np.log1p(n_intents / np.maximum(intents_with, 1)) ** kb.settings.idf_power

        postings: dict[int, list[int]] = {}
        norms = np.zeros(len(example_tokens))
        for e, tokens in enumerate(example_tokens):
            for word_id in {self.vocab[t] for t in tokens}:
                postings.setdefault(word_id, []).append(e)
                norms[e] += self.weights[word_id]
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
        for clitic in self._clitics:
            stem = raw[: -len(clitic)]
            if raw.endswith(clitic) and len(stem) >= 3:
                words = self._slang.get(stem, (stem,))
                if all(w in self.vocab for w in words):
                    return tuple(Token(raw, w, 1.0, "clitic") for w in words)
        if len(raw) >= 6:
            for cut in range(3, len(raw) - 2):
                left = self._slang.get(raw[:cut], (raw[:cut],))
                right = self._slang.get(raw[cut:], (raw[cut:],))
                if all(w in self.vocab for w in left + right):
                    return tuple(Token(raw, w, 1.0, "split") for w in left + right)
        if len(raw) < _MIN_TYPO_LENGTH:
            return (Token(raw, raw, 0.0, "unknown"),)
        return None

    def _correct_typos(self, words: list[str]) -> list[tuple[Token, ...]]:
        cutoff = self.settings.typo_cutoff
        scores = process.cdist(words, self._typo_targets, scorer=fuzz.ratio, score_cutoff=cutoff, dtype=np.uint8)
        out = []
        for raw, row in zip(words, scores):
            best = int(row.argmax()) if len(row) else 0
            if len(row) and row[best] >= cutoff:
                out.append((Token(raw, self._typo_targets[best], float(row[best]) / 100, "typo"),))
            else:
                out.append((Token(raw, raw, 0.0, "unknown"),))
        return out

    def _remember(self, raw: str, found: tuple[Token, ...]) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[raw] = found

    # -- danger signs -----------------------------------------------------------------------

    def danger_signs(self, words: Sequence[str]) -> list[str]:
        """Ids of the danger signs present in a resolved word sequence."""
        text = f" {' '.join(words)} "
        found = []
        for sign_id, groups in self._danger:
            if all(any(f" {' '.join(term)} " in text for term in group) for group in groups):
                found.append(sign_id)
        return found

    # -- scoring ----------------------------------------------------------------------------

    def scores(self, tokens: Sequence[Token], context: Sequence[str] = ()) -> np.ndarray:
        """Score of every intent (in `intent_ids` order) for resolved tokens."""
        s = self.settings
        n_examples = len(self._norms)
        overlap = np.zeros(n_examples)
        evidence = np.zeros(len(self.intent_ids))
        query_weight = 0.0
        seen: set[str] = set()
        for token in tokens:
            if token.how == "number" or token.word in seen:
                continue
            seen.add(token.word)
            if token.similarity > 0:
                word_id = self.vocab[token.word]
                weight = self.weights[word_id]
                overlap[self._postings.get(word_id, _EMPTY)] += weight * token.similarity
                evidence += self._evidence[word_id] * (weight * token.similarity)
            else:
                weight = s.unknown_weight
            query_weight += weight
        if not query_weight:
            return np.zeros(len(self.intent_ids))
        precision = overlap / query_weight
        recall = overlap / self._norms
        beta2 = s.recall_beta**2
        with np.errstate(invalid="ignore", divide="ignore"):
            f_score = np.nan_to_num((1 + beta2) * precision * recall / (beta2 * precision + recall))
        if s.fuzzy_weight:
            query = " ".join(sorted(t.word for t in tokens if t.how != "number"))
            similarity = process.cdist([query], self._example_strings, scorer=fuzz.ratio, dtype=np.uint8)[0]
            f_score = (1 - s.fuzzy_weight) * f_score + s.fuzzy_weight * (similarity / 100.0)
        intent_scores = np.maximum.reduceat(f_score, self._starts)
        if s.evidence_weight:
            intent_scores = (1 - s.evidence_weight) * intent_scores + s.evidence_weight * (evidence / query_weight)
        if context and len(seen) <= s.context_max_tokens:
            for intent_id in context:
                index = self._intent_index.get(intent_id)
                if index is not None:
                    intent_scores[index] += s.context_bonus
        return intent_scores

    def match(self, text: str, context: Sequence[str] = ()) -> Match:
        """Decide what to do with one message. `context`: intents the last reply offered."""
        words = self.normalize.tokens(text)
        if not words:
            return Match(Decision.FALLBACK, FALLBACK_INTENT, 0.0, reason="empty")
        limit = self.settings.max_tokens
        resolved = self.resolve(words, fuzzy_limit=limit)
        signs = self.danger_signs([token.word for raw in words for token in resolved[raw]])
        if signs:
            return Match(Decision.ANSWER, RED_FLAG, 1.0, (Candidate(RED_FLAG, 1.0),), reason=f"danger_sign:{signs[0]}")
        tokens = [token for raw in list(resolved)[:limit] for token in resolved[raw]]

        lead, core, trail = self._split_social(tokens)
        if core and (lead or trail):
            inner = self._decide(core, context)
            if inner.decision is not Decision.FALLBACK and inner.intent not in SOCIAL_INTENTS:
                return Match(inner.decision, inner.intent, inner.score, inner.candidates, inner.reason, greeted=bool(lead))
        return self._decide(tokens, context)

    def _split_social(self, tokens: list[Token]) -> tuple[list[Token], list[Token], list[Token]]:
        """Leading greeting words, the rest, trailing thanks words."""
        start = 0
        while start < len(tokens) and tokens[start].word in self._greeting:
            start += 1
        end = len(tokens)
        while end > start and tokens[end - 1].word in self._thanks:
            end -= 1
        return tokens[:start], tokens[start:end], tokens[end:]

    def _decide(self, tokens: list[Token], context: Sequence[str]) -> Match:
        s = self.settings
        scores = self.scores(tokens, context)
        order = np.argsort(-scores, kind="stable")
        candidates = tuple(Candidate(self.intent_ids[i], float(scores[i])) for i in order[:_CANDIDATES])
        top = candidates[0]
        red = self._intent_index.get(RED_FLAG)
        if red is not None and scores[red] >= s.red_flag_threshold:
            return Match(Decision.ANSWER, RED_FLAG, float(scores[red]), candidates, reason="red_flag_similar")
        if top.intent == FALLBACK_INTENT and top.score >= s.clarify_threshold:
            return Match(Decision.FALLBACK, FALLBACK_INTENT, top.score, candidates, reason="out_of_scope")
        rivals = [c for c in candidates[1:] if c.intent != FALLBACK_INTENT]
        runner_up = rivals[0] if rivals else Candidate(FALLBACK_INTENT, 0.0)
        if top.score >= s.answer_threshold and top.score - runner_up.score >= s.clarify_margin:
            return Match(Decision.ANSWER, top.intent, top.score, candidates)
        if top.score >= s.clarify_threshold and runner_up.score >= s.clarify_threshold:
            return Match(Decision.CLARIFY, top.intent, top.score, candidates, reason="close_candidates")
        if top.score >= s.answer_threshold:
            return Match(Decision.ANSWER, top.intent, top.score, candidates)
        if top.score >= s.clarify_threshold:
            return Match(Decision.CLARIFY, top.intent, top.score, candidates, reason="low_confidence")
        return Match(Decision.FALLBACK, FALLBACK_INTENT, top.score, candidates, reason="no_match")

    def clarify_options(self, match: Match) -> tuple[str, ...]:
        """The two intents a clarify question offers."""
        options = [c.intent for c in match.candidates if c.intent != FALLBACK_INTENT]
        return tuple(options[:2])


_EMPTY = np.array([], dtype=np.intp)

