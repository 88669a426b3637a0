"""Triage: how urgent a message is, decided before anything else the bot does.

Three levels: `emergency` (go to the IGD / call 119 now; staff alerted as urgent), `doctor`
(see a doctor in the coming days; the question is still answered, with that advice first) and
`none`. Safety is rule-first: the rules of knowledge/triage.yaml decide, with the modifiers that
matter (negation, the past, exertion, figures of speech: their `unless` terms). A second net, a
small classifier trained on knowledge/triage_examples.yaml, may raise a message's level (and
tells staff it did); it lowers only a rule's emergency told as lasting weeks.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .knowledge import KnowledgeBase, TriageRule
from .normalize import Normalizer
from .repair import Reading, Token, words_of
from .understand import Doc, ModelSource, Training

RED_FLAG = "red_flag"
CRISIS = "crisis"
# The words of one rule must lie in one clause within this many positions of each other, or,
# across a comma or sentence end, right next to each other.
_SPAN = 8
_SPAN_ACROSS_CLAUSES = 2
_NEGATION_BRIDGE = 2
# Classes of the triage model: an emergency answered by red_flag or by crisis, doctor, none.
_MODEL_INTENTS = {"emergency": RED_FLAG, "crisis": CRISIS}

Parts = tuple[tuple[str, tuple[int, ...]], ...]


class Level(IntEnum):
    """How urgent a message is; a higher level always wins."""

    NONE = 0
    DOCTOR = 1
    EMERGENCY = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def of(cls, label: str) -> Level:
        return cls[label.upper()]


@dataclass(frozen=True)
class Assessment:
    """The triage of one message: its level, the rule that decided it (or "model" when the
    second net raised it), the intent that answers an emergency, and the rule's note."""

    level: Level = Level.NONE
    rule: str | None = None
    intent: str | None = None
    note: str | None = None
    score: float = 0.0
    # The message tells its complaint has lasted weeks or came slowly (triage.yaml `lasting`),
    # nothing that it is recent, and its rule is a doctor's or allows it (`if_lasting: doctor`).
    lasting: bool = False

    @property
    def by_model(self) -> bool:
        return self.rule == "model"


NONE = Assessment()


class Rules:
    """The triage rules of a knowledge base, compiled for lookup in repaired words."""

    def __init__(self, kb: KnowledgeBase, normalize: Normalizer):
        lexicon = kb.lexicon
        self._negations = lexicon.negations
        self._bridges = lexicon.negation_bridges
        self._lists = lexicon.negation_lists
        self._askers = lexicon.negation_askers
        self.by_id: dict[str, TriageRule] = {rule.id: rule for rule in kb.triage_rules}

        def compile_terms(terms) -> list[tuple[str, ...]]:
            return [term for term in (tuple(normalize.tokens(t)) for t in terms) if term]

        # Highest level first, then file order: the first rule found is the one that decides.
        ordered = sorted(kb.triage_rules, key=lambda rule: -Level.of(rule.level))
        self._terms = [(rule.id, [compile_terms(group) for group in rule.groups]) for rule in ordered]
        self._unless = {rule.id: compile_terms(rule.unless) for rule in ordered if rule.unless}
        said = kb.triage_words
        self._said = {name: compile_terms(getattr(said, name)) for name in _TOLD}
        self._anywhere = {rule.id for rule in ordered if rule.anywhere}
        # Rules a hypothetical does not cancel: "herbal apa yang bisa bikin ga bangun lagi" asks
        # for a way to die.
        self._always_reported = {rule.id for rule in ordered if rule.intent == CRISIS}
        self._group_counts = {rule.id: len(rule.groups) for rule in ordered}
        # Words of the rules: typo repair never corrects them into anything else, and the rules
        # never count a word corrected into one ("menyusui" is not "menyusut"): misspellings
        # people really type ("lumpu", "sadarkn") are slang in the lexicon.
        self.vocabulary = frozenset(w for _, groups in self._terms for group in groups for term in group for w in term)
        stemmed = self.vocabulary | {w for terms in self._unless.values() for term in terms for w in term}
        # "rasanya" in "mati rasanya", "dadaku" in "dadaku sesak": a clitic on a symptom word (not
        # on words of one or two letters: "die" is no "di" + "e"). Messages and terms are read
        # alike: the term "ubun ubunnya" is "ubun ubun".
        self._stems = {word + clitic: word for word in stemmed for clitic in lexicon.clitics if len(word) > 2}

        def stem(terms: list[tuple[str, ...]]) -> _Terms:
            return _Terms(dict.fromkeys(tuple(self._stems.get(w, w) for w in term) for term in terms))

        self._terms = [(rule_id, [stem(group) for group in groups]) for rule_id, groups in self._terms]
        self._unless = {rule_id: stem(terms) for rule_id, terms in self._unless.items()}
        self._said = {name: stem(terms) for name, terms in self._said.items()}
        self._lookup = stemmed | {w for terms in self._said.values() for term in terms for w in term}
        # Per rule, the first words of each group's terms: a rule missing one is skipped at once.
        self._firsts = [[frozenset(term[0] for term in group) for group in groups] for _, groups in self._terms]
        # (rule id, groups, their first words) of the rules marked `anywhere`, read by parts_in
        self._anywhere_terms = [
            (rule_id, groups, firsts)
            for (rule_id, groups), firsts in zip(self._terms, self._firsts, strict=True)
            if rule_id in self._anywhere
        ]
        # Symptoms a patient can deny ("ga sesak kok", "tidak nyeri dada"): the emergency rules'
        # terms that are not body parts (a body part is not a symptom to deny: "ga sih betis").
        body = lexicon.calf_words | lexicon.other_body_parts
        urgent = [groups for rule_id, groups in self._terms if self.by_id[rule_id].level == "emergency"]
        deniable = {term for groups in urgent for group in groups for term in group if not set(term) <= body}
        self._signs = frozenset(deniable)
        self._longest = max(map(len, deniable), default=0)
        self._terms_by_first: dict[str, set[tuple[str, ...]]] = {}
        for term in deniable:
            self._terms_by_first.setdefault(term[0], set()).add(term)

    def find(
        self,
        sentences: Sequence[Sequence[str]],
        clauses: Sequence[Sequence[str]],
        resolved: Mapping[str, tuple[Token, ...]],
    ) -> tuple[str, ...]:
        """Rules present within one clause, or with their words right next to each other, or,
        for the rules marked `anywhere`, anywhere in the message; none cancelled by an affirmed
        `unless` term beside them: in the clause or the ones next to it in its sentence ("naik
        tangga 6 lantai, ngos2an" is breathless from exertion); for `anywhere` rules, see
        _beside_anywhere. None only asked about ("kalau ada orang digigit ular")."""
        denied = self._echo_denied(sentences, resolved)
        kept = [
            (clause, s) for clause, s in zip(clauses, _sentence_of(clauses, sentences), strict=True) if s not in denied
        ]
        layout = _Layout.of(kept, resolved)
        scattered = self._hits(layout.sequence, len(layout.sequence))
        if not scattered:
            return ()  # not even scattered over the message: no clause can have one
        found = [
            *self._in_clauses(layout, resolved),
            *(rule for rule, span in scattered if rule in self._anywhere and self._stands(rule, layout, *span)),
            *self._across_clauses(layout),
        ]
        order = {rule: index for index, (rule, _) in enumerate(self._terms)}
        return tuple(sorted(dict.fromkeys(found), key=order.__getitem__))

    def _in_clauses(self, layout: _Layout, resolved: Mapping[str, tuple[Token, ...]]) -> list[str]:
        """The rules whose words stand within one clause."""
        found = []
        for number, first in enumerate(layout.starts):
            clause_words = layout.clause_words(number)
            asked = self._asked(clause_words)
            for rule, (start, end) in self._hits(clause_words, _SPAN):
                if rule in self._anywhere:
                    beside = self._beside_anywhere(rule, layout, first + start, first + end)
                else:
                    near = layout.typed_near(number)
                    beside = (words_of(resolved, near, typos=False), near)
                if not (asked and rule not in self._always_reported) and not self._cancelled(rule, *beside):
                    found.append(rule)
        return found

    def _stands(self, rule: str, layout: _Layout, start: int, end: int) -> bool:
        """Whether an `anywhere` rule found over the message stands: not asked about in its own
        clauses, not cancelled beside it."""
        asked = rule not in self._always_reported and self._asked(layout.clauses_over(start, end)[0])
        return not asked and not self._cancelled(rule, *self._beside_anywhere(rule, layout, start, end))

    def _across_clauses(self, layout: _Layout) -> list[str]:
        """The rules whose words stand right next to each other across a comma or sentence end."""
        sequence, found = layout.sequence, []
        for rule, (start, end) in self._hits(sequence, _SPAN_ACROSS_CLAUSES):
            around = sequence[max(start - _SPAN, 0) : end + _SPAN + 1]
            asked = rule not in self._always_reported and self._asked(sequence[max(start - _SPAN, 0) : end + 1])
            if not asked and not self._cancelled(rule, around, layout.clauses_over(start - _SPAN, end + _SPAN)[1]):
                found.append(rule)
        return found

    def _beside_anywhere(self, rule: str, layout: _Layout, start: int, end: int) -> tuple[list[str], list[str]]:
        """Where an `anywhere` rule's unless terms count: an emergency's in the clauses its words
        stand in and the one before and after ("betis bengkak merah. kayaknya digigit nyamuk"),
        not in a question further on; a doctor's in the message ("kemarin kepleset, lutut memar
        ... ga kebentur kepala")."""
        if self.by_id[rule].level == "doctor":
            return layout.sequence, layout.typed
        return layout.clauses_over(start, end, widen=1)

    def _echo_denied(self, sentences: Sequence[Sequence[str]], resolved: Mapping[str, tuple[Token, ...]]) -> set[int]:
        """Sentences that only name a sign and are denied by the next one: "pingsan? engga
        kok, cuma pusing" (the patient repeats the question, then says no)."""
        denied = set()
        for index in range(len(sentences) - 1):
            named = words_of(resolved, sentences[index], typos=False)
            answer = words_of(resolved, sentences[index + 1], typos=False)
            if (
                0 < len(named) <= _ECHO_WORDS
                and answer
                and answer[0] in self._negations
                and not self._hits(answer[:_ECHO_WORDS], _SPAN)
            ):
                denied.add(index)
        return denied

    def parts_in(self, sequence: Sequence[str]) -> Parts:
        """For each rule marked `anywhere` that these words show in part (some of its groups,
        affirmed, not all), the indices of those groups: the next message may complete it."""
        words, positions = self._positions(sequence)
        present_words = positions.keys()
        parts = []
        for rule_id, groups, firsts in self._anywhere_terms:
            if all(first.isdisjoint(present_words) for first in firsts):
                continue
            present = tuple(
                i
                for i, (group, first) in enumerate(zip(groups, firsts, strict=True))
                if not first.isdisjoint(present_words) and self._term_places(words, positions, group, asked=True)
            )
            if present and len(present) < len(groups) and not self._cancelled(rule_id, words):
                parts.append((rule_id, present))
        return tuple(parts)

    def completed(self, parts: Parts, carried: Parts) -> str | None:
        """A rule marked `anywhere` that this message's parts complete with the parts the
        previous message showed, if any."""
        now = dict(parts)
        for rule_id, before in carried:
            mine = set(now.get(rule_id, ()))
            groups = self._group_counts.get(rule_id)
            if mine and groups is not None and mine | set(before) == set(range(groups)):
                return rule_id
        return None

    def negated_raw_words(self, words: Sequence[str], resolved: Mapping[str, tuple[Token, ...]]) -> set[int]:
        """Indices of the message words that only say a symptom is absent ("ga sesak kok, cuma
        pegal" is about aching, not about breathlessness)."""
        if self._negations.isdisjoint(words):
            return set()
        positions = [index for index, raw in enumerate(words) for _ in resolved[raw]]
        negated = self._negated_words(words_of(resolved, words, typos=False))
        by_word: dict[int, list[int]] = {}
        for position, index in enumerate(positions):
            by_word.setdefault(index, []).append(position)
        return {index for index, places in by_word.items() if all(p in negated for p in places)}

    def _sign_at(self, words: Sequence[str], index: int) -> int:
        """The length of the longest sign a patient can deny that starts at `index` (0: none)."""
        for length in range(min(self._longest, len(words) - index), 0, -1):
            if tuple(words[index : index + length]) in self._signs:
                return length
        return 0

    def _negated_words(self, words: Sequence[str]) -> set[int]:
        """Positions of symptom words said not to be present, with their negation."""
        words = [self._stems.get(w, w) for w in words]
        dropped: set[int] = set()
        for index, word in enumerate(words):
            for term in self._terms_by_first.get(word, ()):
                if tuple(words[index : index + len(term)]) != term or not self._negated_at(words, index, asked=True):
                    continue
                start = index - 1
                while start >= 0 and words[start] not in self._negations:
                    start -= 1
                end = index + len(term)
                # "ga sesak pusing": the signs that follow belong to the same negated phrase
                # (whole signs only: "ga sesak, mau daftar" keeps "mau daftar").
                while following := self._sign_at(words, end):
                    end += following
                dropped.update(range(max(start, 0), end))
        return dropped

    def _asked(self, clause: Sequence[str]) -> bool:
        """Whether these words ask about a sign rather than report one: "kalau ada orang digigit
        ular", "akupuntur bisa bikin lumpuh?" (triage.yaml `hypothetical`), with nothing in them
        that says it is happening now ("kalau orang tua saya barusan pingsan" is a report)."""
        return self._told(clause, "hypothetical") and not self._told(clause, "now")

    def settled(self, sequence: Sequence[str]) -> bool:
        """Whether these words tell that a doctor has seen the complaint and it is getting better,
        and nothing that it is worse or new ("udah ke dokter, katanya otot, skrg mendingan")."""
        return (
            self._told(sequence, "seen_by_doctor")
            and self._told(sequence, "better")
            and not self._told(sequence, "worse")
        )

    def only_asked(self, sequence: Sequence[str]) -> bool:
        """Whether these words say nobody has the sign, it is only asked about ("nanya aja, kaki
        sy sih gapapa"), and nothing that it is happening now or lately."""
        return self._told(sequence, "just_asking") and not (
            self._told(sequence, "now") or self._told(sequence, "recent")
        )

    def _told(self, words: Sequence[str], name: str) -> bool:
        """Whether a term of the triage.yaml word list `name` stands, affirmed, in these words."""
        terms = self._said[name]
        if not terms:
            return False
        words, positions = self._positions(words)
        return bool(self._term_places(words, positions, terms))

    def lasting(self, sequence: Sequence[str]) -> bool:
        """Whether these words tell, affirmed, that a complaint has lasted weeks or came slowly,
        and nothing in them that it is recent ("dari kemarin", "tiba tiba")."""
        return self._told(sequence, "lasting") and not self._told(sequence, "recent")

    def _cancelled(self, rule_id: str, *readings: Sequence[str]) -> bool:
        """Whether an `unless` term of the rule stands, affirmed, in these words: the repaired
        words, or the words as typed ("liatnya aja" is repaired into "lihat saja")."""
        terms = self._unless.get(rule_id)
        if not terms:
            return False
        for words in readings:
            words, positions = self._positions(words)
            if self._term_places(words, positions, terms):
                return True
        return False

    def _hits(self, words: Sequence[str], span: int) -> list[tuple[str, tuple[int, int]]]:
        """(rule id, span of words) for each rule present: one affirmed term of every group,
        all within `span` words."""
        words, positions = self._positions(words)
        found = []
        present = positions.keys()
        for (rule_id, groups), firsts in zip(self._terms, self._firsts, strict=True):
            if any(first.isdisjoint(present) for first in firsts):
                continue
            places = [self._term_places(words, positions, group, asked=True) for group in groups]
            if not all(places):
                continue
            best = _tightest(places)
            if best[1] - best[0] <= span:
                found.append((rule_id, best))
        return found

    def _positions(self, words: Sequence[str]) -> tuple[list[str], dict[str, list[int]]]:
        """The words with clitics on symptom words taken off, and where each rule word is."""
        words = [self._stems.get(w, w) for w in words]
        positions: dict[str, list[int]] = {}
        for index, word in enumerate(words):
            if word in self._lookup:
                positions.setdefault(word, []).append(index)
        return words, positions

    def _term_places(
        self, words: list[str], positions: dict[str, list[int]], group, asked: bool = False
    ) -> list[tuple[int, int]]:
        """Where terms of a group occur, affirmed (not right after a negation): (first, last).
        `asked`: a negation that asks ("boleh ga ...") does not deny (a rule's own signs only:
        a cancelling or softening word stays denied by it, "bisa ga membaik")."""
        places = []
        for first, indices in positions.items():
            for term in group.by_first.get(first, ()):
                size = len(term)
                for index in indices:
                    if tuple(words[index : index + size]) == term and not self._negated_at(words, index, asked):
                        places.append((index, index + size - 1))
        return places

    def _negated_at(self, words: list[str], index: int, asked: bool = False) -> bool:
        """A negation before `index`, with at most two bridge words between ("tidak ada sesak",
        "belum pernah pingsan", "tidak sampai sesak"), or a denied sign listed right before it
        ("ga ada sesak atau nyeri dada", "ga sesak nyeri dada": "nyeri dada" is denied too)."""
        for gap in range(0, _NEGATION_BRIDGE + 1):
            before = index - 1 - gap
            if before < 0:
                break
            if words[before] in self._negations:
                if asked and before > 0 and words[before - 1] in self._askers:
                    break  # "boleh ga ...": asks, denies nothing
                if all(w in self._bridges for w in words[before + 1 : index]):
                    return True
                break
        # The sign that ends right before, with "atau" between or nothing ("ga ada lemah/pelo"),
        # denied itself.
        end = index - 1 if index >= 2 and words[index - 1] in self._lists else index
        signs = (start for start in range(max(end - self._longest, 0), end) if tuple(words[start:end]) in self._signs)
        return any(self._negated_at(words, start, asked) for start in signs)


class Triage:
    """Rules first, then the second net. Build once per knowledge base; `assess` is pure."""

    def __init__(self, kb: KnowledgeBase, rules: Rules, models: ModelSource, normalize: Normalizer, intents: Training):
        """`intents`: the intent model's training documents, read once for both models: each
        intent's examples teach this model too (red_flag and crisis as emergencies, the rest as
        "none")."""
        self.kb, self.rules = kb, rules
        self.settings = kb.settings
        self._joking = _joking_pattern(kb.triage_words.joking)
        labels, docs = [], []
        for level, text in kb.triage_examples:
            tokens = normalize.example(text)
            if tokens:
                labels.append(level)
                docs.append(Doc.of(text, tokens))
        levels = {intent: label for label, intent in _MODEL_INTENTS.items()}
        labels += [levels.get(intent, "none") for intent in intents.labels]
        docs += intents.docs
        self.training = Training(tuple(docs), tuple(labels), self.settings.triage_c)
        self.model = models.get(self.training)
        self._classes = {label: i for i, label in enumerate(self.model.classes)}

    def assess(self, reading: Reading, carried: Parts = ()) -> tuple[Assessment, Parts]:
        """The message's triage, and the parts of `anywhere` rules it shows (for the next
        message; an emergency carries none)."""
        if not reading.words:
            return NONE, carried  # a photo between the two halves of a sign keeps the first
        by_rules, parts = self.by_rules(reading, carried)
        settled = by_rules.level is Level.EMERGENCY and not (by_rules.lasting and by_rules.intent == RED_FLAG)
        assessment = self.decide(by_rules, {} if settled else self.confidences(reading))
        return assessment, (() if assessment.level is Level.EMERGENCY else parts)

    def by_rules(self, reading: Reading, carried: Parts = ()) -> tuple[Assessment, Parts]:
        """The rules' verdict alone (the highest level of the rules found), and the parts."""
        found = list(self.rules.find(reading.sentences, reading.clauses, reading.resolved))
        sequence = words_of(reading.resolved, reading.words, typos=False)
        parts = self.rules.parts_in(sequence)
        completed = self.rules.completed(parts, carried)
        if completed is not None:
            found.append(completed)
        found = [rule for rule in found if self._counts(self.rules.by_id[rule], reading, sequence)]
        if not found:
            return NONE, parts
        rule = max((self.rules.by_id[r] for r in found), key=lambda r: Level.of(r.level))
        level = Level.of(rule.level)
        slow = level is Level.DOCTOR or rule.slow_is_doctor
        lasting = slow and self.rules.lasting(sequence)
        return Assessment(
            level, rule.id, rule.intent if level is Level.EMERGENCY else None, rule.note, 1.0, lasting
        ), parts

    def _counts(self, rule: TriageRule, reading: Reading, sequence: Sequence[str]) -> bool:
        """Whether a rule found counts as the message tells it: not a figure of speech in a joke
        ("kepala gw mau pecah wkwk"), not an emergency a doctor has seen that is getting better
        or one only asked about. Thoughts of suicide always count."""
        if rule.intent == CRISIS:
            return True
        if rule.figurative and self.joking(reading):
            return False
        return rule.level != "emergency" or not (self.rules.settled(sequence) or self.rules.only_asked(sequence))

    def joking(self, reading: Reading) -> bool:
        """Whether the message laughs (triage.yaml `joking`): "kepala gw mau pecah wkwk"."""
        return self._joking is not None and self._joking.search(reading.text.lower()) is not None

    def confidences(self, reading: Reading) -> dict[str, float]:
        """The second net's confidence (0..1) in each of its classes for this message, as the
        message tells it."""
        doc = Doc.of(reading.text, words_of(reading.resolved, reading.words), self.settings.max_tokens)
        confidence = 1.0 / (1.0 + np.exp(-2.0 * self.model.margins(doc)))
        confidences = {label: float(confidence[index]) for label, index in self._classes.items()}
        # As the message tells it: a doctor has seen it and it is getting better (only thoughts
        # of suicide may still raise it), or a joke (no alarm of a bodily sign: "kaki gw kaya
        # mati rasa 😂").
        if self.rules.settled(words_of(reading.resolved, reading.words, typos=False)):
            return {label: value if label == "crisis" else 0.0 for label, value in confidences.items()}
        if self.joking(reading) or self.rules.only_asked(words_of(reading.resolved, reading.words, typos=False)):
            confidences["emergency"] = 0.0
        return confidences

    def decide(self, by_rules: Assessment, confidences: Mapping[str, float], settings=None) -> Assessment:
        """The rules' verdict, raised by the second net where it is confident: to an emergency
        at emergency_threshold (not above a doctor rule's verdict in a message that tells the
        complaint has lasted weeks or came slowly: "makin lemah dari 3 minggu lalu"), to a
        doctor's visit at doctor_threshold. Lowered only in one case: a rule's emergency in a
        message that tells the complaint has lasted ("makin sering keselek sebulan ini"), when
        the second net is sure (at lasting_threshold, and surer than of an emergency) that it
        is a doctor's visit."""
        s = settings or self.settings
        if by_rules.level is Level.EMERGENCY:
            doctor = confidences.get("doctor", 0.0)
            urgent = max(confidences.get(name, 0.0) for name in _MODEL_INTENTS)
            if by_rules.lasting and by_rules.intent == RED_FLAG and doctor >= s.lasting_threshold and doctor > urgent:
                return Assessment(Level.DOCTOR, "model", None, None, doctor)
            return by_rules
        label = max(_MODEL_INTENTS, key=lambda name: confidences.get(name, 0.0))
        slow = by_rules.level is Level.DOCTOR and by_rules.lasting
        if confidences.get(label, 0.0) >= s.emergency_threshold and not slow:
            return Assessment(Level.EMERGENCY, "model", _MODEL_INTENTS[label], None, confidences[label])
        doctor = confidences.get("doctor", 0.0)
        if by_rules.level is Level.NONE and doctor >= s.doctor_threshold:
            return Assessment(Level.DOCTOR, "model", None, None, doctor)
        return by_rules


# A sign repeated as a question before "engga kok" is at most this many words long.
_ECHO_WORDS = 3
# The word lists of TriageWords the rules look for ("joking" is read from the raw text).
_TOLD = ("lasting", "recent", "hypothetical", "now", "just_asking", "seen_by_doctor", "better", "worse")
# Stands between two sentences in the words of a whole message: no negation reaches across it.
_SENTENCE_END = "."


@dataclass(frozen=True)
class _Layout:
    """The words of a message (repaired), clause after clause, with a sentence end marked where
    a sentence ends (a negation does not reach across it: "pinggang sakit? bukan. betis kiri
    bengkak"), and where each clause lies in them."""

    kept: tuple[tuple[Sequence[str], int], ...]  # (typed words of a clause, its sentence)
    sequence: tuple[str, ...]
    places: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, kept: Sequence[tuple[Sequence[str], int]], resolved: Mapping[str, tuple[Token, ...]]) -> _Layout:
        sequence: list[str] = []
        places = []
        for number, (clause, sentence) in enumerate(kept):
            if number and kept[number - 1][1] != sentence:
                sequence.append(_SENTENCE_END)
            words = words_of(resolved, clause, typos=False)
            places.append((len(sequence), len(sequence) + len(words)))
            sequence.extend(words)
        return cls(tuple(kept), tuple(sequence), tuple(places))

    @property
    def starts(self) -> list[int]:
        return [first for first, _ in self.places]

    @property
    def typed(self) -> list[str]:
        return [w for clause, _ in self.kept for w in clause]

    def clause_words(self, number: int) -> list[str]:
        return list(self.sequence[slice(*self.places[number])])

    def typed_near(self, number: int) -> list[str]:
        """The typed words of a clause and of the ones next to it in its sentence."""
        sentence = self.kept[number][1]
        near = [j for j in (number - 1, number, number + 1) if 0 <= j < len(self.kept) and self.kept[j][1] == sentence]
        return [w for j in near for w in self.kept[j][0]]

    def clauses_over(self, start: int, end: int, widen: int = 0) -> tuple[list[str], list[str]]:
        """The repaired and the typed words of the clauses that words start..end touch, and of
        `widen` clauses more on each side."""
        touched = [n for n, (first, stop) in enumerate(self.places) if first <= end and stop > start]
        if touched and widen:
            touched = list(range(max(touched[0] - widen, 0), min(touched[-1] + widen + 1, len(self.places))))
        return [w for n in touched for w in self.clause_words(n)], [w for n in touched for w in self.kept[n][0]]


def _joking_pattern(marks: Sequence[str]) -> re.Pattern[str] | None:
    """A pattern for the laughter and emoji of triage.yaml `joking`: a word of letters matches
    as a whole word and also stretched by its first two letters ("wkwk": "wkwkwk", "wkwkwkw");
    anything else (an emoji) matches anywhere."""
    if not marks:
        return None
    parts = []
    for mark in marks:
        if mark.isalpha():
            parts.append(rf"\b{re.escape(mark)}(?:{re.escape(mark[:2])})*[a-z]?\b")
        else:
            parts.append(re.escape(mark))
    return re.compile("|".join(parts))


class _Terms(list):
    """A group of terms (word tuples), indexed by first word: a message's few words look up
    their terms instead of every term being tried against the message."""

    def __init__(self, terms=()):
        super().__init__(terms)
        self.by_first: dict[str, list[tuple[str, ...]]] = {}
        for term in self:
            self.by_first.setdefault(term[0], []).append(term)


def _tightest(places: Sequence[Sequence[tuple[int, int]]]) -> tuple[int, int]:
    """The shortest stretch of words holding one place of every group. For each place where
    the stretch could start, every group takes its place starting there or later that ends
    first (a binary search over its places sorted by start, with the earliest end of each
    suffix precomputed): n log n in the places, where trying every combination grew
    exponentially with the groups, and a long message repeating a rule's words stalled a
    worker."""
    tables = []
    for spans in places:
        spans = sorted(spans)
        ends = [end for _, end in spans]
        for i in range(len(ends) - 2, -1, -1):
            ends[i] = min(ends[i], ends[i + 1])
        tables.append(([start for start, _ in spans], ends))
    best = None
    for first in sorted({start for spans in places for start, _ in spans}):
        end = first
        for starts, ends in tables:
            index = bisect.bisect_left(starts, first)
            if index == len(starts):
                break
            end = max(end, ends[index])
        else:
            if best is None or end - first < best[1] - best[0]:
                best = (first, end)
    return best


def _sentence_of(clauses: Sequence[Sequence[str]], sentences: Sequence[Sequence[str]]) -> list[int]:
    """The index of the sentence each clause belongs to (clauses are the sentences cut at
    commas, in order)."""
    out, index, used = [], 0, 0
    for clause in clauses:
        if index < len(sentences) and used >= len(sentences[index]):
            index, used = index + 1, 0
        out.append(index)
        used += len(clause)
    return out
