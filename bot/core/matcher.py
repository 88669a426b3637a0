"""Understand one message: which intent it asks about (a learned model).

How a message is read, in order:
1. The normalizer turns it into canonical tokens ("knp betis kedut2" -> kenapa betis kedutan
   kedutan), sentence by sentence and clause by clause.
2. Each word unknown to the knowledge base is repaired against its vocabulary (bot.core.repair:
   clitics, glued words, typos through rapidfuzz). The same reading serves the triage step
   (bot.core.triage), which runs first and alone decides emergencies: the intent model never
   answers an urgent intent.
3. The intent model (bot.core.understand) scores every intent. Words that only deny a symptom
   ("ga sesak kok") are left out; a greeting before or thanks after a question is set aside so
   that the question is what gets answered.
4. The decision, under the thresholds of knowledge/matcher.yaml (chosen by `python -m bot tune`
   on the dev and calib splits): answer the best intent when it clears its cutoff and no rival
   is close; ask which one when two are close or the best is unsure; otherwise the message is
   out of scope.

`analyze` does everything that does not depend on thresholds and `decisions` applies them to
many analyses at once, so that tuning tries thousands of thresholds on one reading.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process

from .knowledge import KnowledgeBase, MatcherSettings
from .messages import FALLBACK_INTENT, Candidate, Decision, Match
from .normalize import typed_words
from .repair import Reading, Repair, Token, words_of
from .triage import Rules
from .understand import IN_MEMORY, Doc, IntentModel, ModelSource, Training

SOCIAL_INTENTS = frozenset({"greeting", "thanks", "goodbye", FALLBACK_INTENT})
_CANDIDATES = 5
# Decision codes in the arrays of Verdicts.
ANSWER, CLARIFY, FALLBACK = 0, 1, 2
_DECISIONS = (Decision.ANSWER, Decision.CLARIFY, Decision.FALLBACK)
_REASONS = (
    "model", "close_candidates", "low_confidence", "out_of_scope", "no_match", "out_of_scope:",
)  # fmt: skip
_R_MODEL, _R_CLOSE, _R_LOW, _R_OUT_OF_SCOPE, _R_NO_MATCH, _R_NAMED = range(6)
# The reason code of a topic the bot recognises but does not handle (answered with its own text),
# and the prefix of its reason in a Match ("out_of_scope:calf_injury").
NAMED_REASON = _R_NAMED
NAMED_PREFIX = _REASONS[_R_NAMED]


@dataclass(frozen=True)
class Analysis:
    """What `decide` needs about a message. Scores are confidences in 0..1, one per intent:
    `whole` for the message, `core` for it without a leading greeting or trailing thanks."""

    empty: bool = False
    whole: np.ndarray | None = field(default=None, compare=False)
    core: np.ndarray | None = field(default=None, compare=False)
    greeted: bool = False


@dataclass(frozen=True)
class Batch:
    """Analyses of many messages as matrices (one row per message)."""

    whole: np.ndarray
    core: np.ndarray
    has_core: np.ndarray


@dataclass(frozen=True)
class Verdicts:
    """Decisions for many analysed messages, as arrays (one entry per message)."""

    decision: np.ndarray
    intent: np.ndarray
    second: np.ndarray
    score: np.ndarray
    reason: np.ndarray
    used_core: np.ndarray


class Matcher:
    """Reads messages against one knowledge base. Build once, call `match` many times; safe to
    share between the threads of a server."""

    def __init__(self, kb: KnowledgeBase, models: ModelSource | None = None, rules: Rules | None = None):
        self.kb = kb
        self.settings: MatcherSettings = kb.settings
        self.normalize = kb.normalizer()
        self.rules = rules or Rules(kb, self.normalize)
        lexicon = kb.lexicon
        self._greeting, self._thanks = lexicon.greeting_words, lexicon.thanks_words
        self._reassurance = lexicon.reassurance_tags

        labels, docs, frequency = [], [], Counter()
        for intent in kb.intents.values():
            for example in intent.examples:
                tokens = self.normalize.example(example.text)
                if tokens:
                    labels.append(intent.id)
                    docs.append(Doc.of(example.text, tokens))
                    frequency.update(set(tokens))
        self.repair = Repair(lexicon, frequency, self.rules.vocabulary, self.settings.typo_cutoff)
        self.vocab = self.repair.vocab
        self.training = Training(tuple(docs), tuple(labels), self.settings.c)
        self.models = models or IN_MEMORY
        self.model: IntentModel = self.models.get(self.training)
        self.intent_ids = self.model.classes
        index = {intent_id: i for i, intent_id in enumerate(self.intent_ids)}
        self._fallback = index.get(FALLBACK_INTENT, -1)
        intents = [kb.intents[i] for i in self.intent_ids]
        self._social = np.array([i.id in SOCIAL_INTENTS for i in intents])
        # Topics the bot recognises but does not handle: answered with their own text, as out of scope.
        self._named_out_of_scope = np.array([i.out_of_scope for i in intents])
        self._urgent = {i.id for i in intents if i.action == "handoff_urgent"}
        self._urgent_mask = np.array([i.id in self._urgent for i in intents])
        self._context_ok = ~self._urgent_mask
        self._cutoffs = self.cutoffs(self.settings)
        self._examples = {i.id: [e.text for e in i.examples] for i in intents}
        self._local = threading.local()

    # -- reading ----------------------------------------------------------------------------

    def resolve(self, words: Sequence[str]) -> dict[str, tuple[Token, ...]]:
        """Each distinct word mapped onto the vocabulary (see bot.core.repair)."""
        return self.repair.resolve(words)

    def read(self, text: str) -> Reading:
        """Split and repair a message; the last reading is kept per thread because the triage
        step and the intent model read the same text one after the other."""
        last = getattr(self._local, "reading", None)
        if last is not None and last.text == text:
            return last
        sentences, clauses = self.normalize.split(text)
        words = [word for sentence in sentences for word in sentence]
        resolved = self.repair.resolve(words, fuzzy_limit=self.settings.max_tokens) if words else {}
        reading = self._local.reading = Reading(text, sentences, clauses, words, resolved)
        return reading

    def _social_edges(self, raw_words: Sequence[str], resolved) -> tuple[int, int]:
        """Where a message's core starts and ends (in message words): after leading greeting
        words, before trailing thanks words."""

        def all_in(raw: str, words: frozenset[str]) -> bool:
            return all(token.word in words for token in resolved[raw])

        start = 0
        while start < len(raw_words) and all_in(raw_words[start], self._greeting):
            start += 1
        end = len(raw_words)
        while end > start and all_in(raw_words[end - 1], self._thanks):
            end -= 1
        return start, end

    def forget(self, words: bool = False) -> None:
        """Forget the last message read (and with `words`, every repaired word), so that a
        benchmark times the next message as if it were new."""
        self._local.reading = None
        if words:
            self.repair.forget()
            self.model.forget()
            self.normalize.forget()

    # -- intents ----------------------------------------------------------------------------

    def confidences(self, text: str, words: Sequence[str]) -> np.ndarray:
        """The model's confidence in each intent, 0..1: its margin m through the logistic
        function 1 / (1 + e^(-2m)), so that the SVM's margins of -1, 0 and +1 read as 0.12,
        0.5 and 0.88. Monotone: it changes no ranking, only the scale thresholds are set on."""
        margins = self.model.margins(Doc.of(text, words, self.settings.max_tokens))
        return 1.0 / (1.0 + np.exp(-2.0 * margins))

    def analyze(self, text: str, context: Sequence[str] = ()) -> Analysis:
        """Everything `decide` needs about a message; independent of the thresholds."""
        reading = self.read(text)
        if not reading.words:
            return Analysis(empty=True)
        raw_words = reading.words
        dropped = self.rules.negated_raw_words(raw_words, reading.resolved)
        if dropped and self._reassurance.intersection(typed_words(text)[-2:]):
            dropped = set()  # "akupuntur ga sakit kan?" asks about the pain: it is not denied
        if dropped:
            raw_words = [w for i, w in enumerate(raw_words) if i not in dropped]
            if not raw_words:
                # Only "not this danger sign": nothing left to answer.
                return Analysis(whole=np.zeros(len(self.intent_ids)))
        words = words_of(reading.resolved, raw_words)
        whole = self._with_context(self.confidences(" ".join(raw_words) if dropped else text, words), words, context)
        lead, end = self._social_edges(raw_words, reading.resolved)
        core = None
        if (lead or end < len(raw_words)) and lead < end:
            core_words = words_of(reading.resolved, raw_words[lead:end])
            core = self.confidences(" ".join(raw_words[lead:end]), core_words)
            core = self._with_context(core, core_words, context)
        return Analysis(whole=whole, core=core, greeted=lead > 0)

    def _with_context(self, scores: np.ndarray, words: Sequence[str], context: Sequence[str]) -> np.ndarray:
        """A short follow-up leans towards what the last reply offered ("kalau kopi?"), never
        towards an urgent intent: a danger sign must be in the message itself."""
        if not context or len(set(words)) > self.settings.context_max_tokens:
            return scores
        scores = scores.copy()
        for intent_id in context:
            if intent_id in self._examples:
                index = self.intent_ids.index(intent_id)
                if self._context_ok[index]:
                    scores[index] = min(scores[index] + self.settings.context_bonus, 1.0)
        return scores

    def cutoffs(self, settings: MatcherSettings) -> np.ndarray:
        """Each intent's answer cutoff: its own when tuned, else the common answer_threshold."""
        return np.array([settings.cutoffs.get(i, settings.answer_threshold) for i in self.intent_ids])

    def decide(self, analysis: Analysis, settings: MatcherSettings | None = None) -> Match:
        """Turn an analysis into a decision under the given (default: configured) thresholds."""
        if analysis.empty:
            return Match(Decision.FALLBACK, FALLBACK_INTENT, 0.0, reason="empty")
        v = self.decisions(self.batch([analysis]), settings)
        scores = analysis.core if v.used_core[0] else analysis.whole
        order = np.argsort(-scores, kind="stable")[:_CANDIDATES]
        candidates = tuple(Candidate(self.intent_ids[i], float(scores[i])) for i in order)
        decision, intent, reason = int(v.decision[0]), int(v.intent[0]), int(v.reason[0])
        acted = FALLBACK_INTENT if decision == FALLBACK else self.intent_ids[intent]
        why = _REASONS[reason] + (self.intent_ids[intent] if reason == _R_NAMED else "")
        greeted = analysis.greeted and bool(v.used_core[0])
        return Match(_DECISIONS[decision], acted, float(v.score[0]), candidates, why, greeted)

    def batch(self, analyses: Sequence[Analysis]) -> Batch:
        """Many analyses as matrices (rows without scores, for danger signs or empty messages,
        are zeros that callers override)."""
        zeros = np.zeros(len(self.intent_ids))
        return Batch(
            whole=np.array([a.whole if a.whole is not None else zeros for a in analyses]),
            core=np.array([a.core if a.core is not None else zeros for a in analyses]),
            has_core=np.array([a.core is not None for a in analyses]),
        )

    def decisions(self, batch: Batch, settings: MatcherSettings | None = None) -> Verdicts:
        """Decisions for many analysed messages at once (vectorised: tuning tries thousands of
        thresholds on one batch; `decide` calls it with one message).

        The core of a message (greeting and thanks set aside) is answered when it names a real
        topic; otherwise the whole message is ("halo admin" is a hello, not a request for
        staff)."""
        s = settings or self.settings
        cutoffs = self._cutoffs if settings is None else self.cutoffs(s)
        w = self._apply(batch.whole, s, cutoffs)
        c = self._apply(batch.core, s, cutoffs)
        use_core = batch.has_core & (c[0] != FALLBACK) & ~self._social[c[1]]
        decision, intent, second, score, reason = (np.where(use_core, a, b) for a, b in zip(c, w, strict=True))
        # "udah itu aja, makasih": thanks or goodbye is not worth a question; take the best.
        small_talk = (decision == CLARIFY) & self._social[intent] & self._social[second]
        decision = np.where(small_talk, ANSWER, decision)
        named = (decision == ANSWER) & self._named_out_of_scope[intent]
        decision, reason = np.where(named, FALLBACK, decision), np.where(named, _R_NAMED, reason)
        return Verdicts(decision, intent, second, score, reason, use_core)

    def _apply(self, scores: np.ndarray, s: MatcherSettings, cutoffs: np.ndarray):
        """(decision, intent, second, score, reason) per row of scores under thresholds `s`.

        An urgent intent (red_flag, crisis) takes no part: emergencies are the triage step's to
        decide (its rules, and its own model as a second net), so "kaki" alone is never one."""
        rows = np.arange(len(scores))
        scores = np.where(self._urgent_mask, -np.inf, scores)
        top = np.argmax(scores, axis=1)
        top_score = scores[rows, top]
        others = scores.copy()
        others[rows, top] = -np.inf
        if self._fallback >= 0:
            others[:, self._fallback] = -np.inf
        second = np.argmax(others, axis=1)
        runner_up = np.maximum(others[rows, second], 0.0)
        decision = np.full(len(top), FALLBACK)
        reason = np.full(len(top), _R_NO_MATCH)
        sure = top_score >= cutoffs[top]
        # Two close intents are asked about only while the runner-up is unsure itself: when the
        # model is sure of both, the patient asked about both, and the first is answered.
        close = (
            (runner_up >= s.clarify_threshold)
            & (top_score - runner_up < s.clarify_margin)
            & (runner_up < cutoffs[second])
        )
        # Each rule applies only where no earlier rule in this list did: written last-first.
        steps = (
            (top_score >= s.clarify_threshold, CLARIFY, _R_LOW),
            (sure & close, CLARIFY, _R_CLOSE),
            (sure & ~close, ANSWER, _R_MODEL),
            (top == self._fallback, FALLBACK, _R_OUT_OF_SCOPE),
        )
        for mask, code, why in steps:
            decision[mask], reason[mask] = code, why
        return decision, top, second, top_score, reason

    def match(self, text: str, context: Sequence[str] = ()) -> Match:
        """Decide what to do with one message. `context`: intents the last reply offered."""
        return self.decide(self.analyze(text, context))

    def clarify_options(self, match: Match) -> tuple[str, ...]:
        """The two intents a clarify question offers (never fallback or an urgent intent)."""
        options = [c.intent for c in match.candidates if c.intent != FALLBACK_INTENT and c.intent not in self._urgent]
        return tuple(options[:2])

    def nearest_example(self, text: str, intent_id: str) -> tuple[str, float] | None:
        """The example of an intent closest to the message (rapidfuzz token-set similarity,
        0..100): the reason shown for an answer in `chat --debug` and the staff console."""
        examples = self._examples.get(intent_id)
        if not examples:
            return None
        query = " ".join(self.normalize.tokens(text))
        found = process.extractOne(query, examples, scorer=fuzz.token_set_ratio, processor=self.normalize)
        return (found[0], float(found[1])) if found else None
