"""Informal WhatsApp Indonesian to canonical text.

Deliberately no stemmer and no stock stopword list: Indonesian stemmers turn "kenapa" into
"kena" and "cara" into "car", and stopword lists drop "tidak", "cara" and "kenapa", which carry
the meaning of exactly the questions patients ask. Instead a curated, domain-specific lexicon
(knowledge/lexicon.yaml) maps slang and abbreviations to standard words and names the particles
and address words that carry no meaning for matching.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

# "can't", "don’t": the apostrophe joins, it does not separate.
_TYPED_WORD = re.compile(r"[a-z]+")
_APOSTROPHE = re.compile(r"['’`´]")
# Accents left over after NFKD decomposition ("é" -> "e" + U+0301).
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# "kedut2" / "kedut2an" / "pelan2nya": a word followed by the digit 2 is written-out reduplication.
_REDUPLICATION = re.compile(r"\b([a-z]{2,})2([a-z]*)\b")
# Three or more of the same letter in a row is emphasis ("sakiiit", "tolonggg"): keep one.
_REPEATS = re.compile(r"([a-z])\1{2,}")
# Letters glued to digits ("jam3", "3x") are two tokens.
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])")
_WORD_CACHE_LIMIT = 100_000
# Knowledge-base examples remembered (`example`): several readers normalize the same ones.
_TEXT_CACHE_LIMIT = 20_000
# Sentence boundaries; a dot between digits ("19.30") is a time, not an end.
_SENTENCE_END = re.compile(r"[!?;\n]+|(?<!\d)\.+|\.+(?!\d)")
# Clause boundaries: sentence ends and commas (a comma between digits is a decimal).
_CLAUSE_END = re.compile(r"[!?;\n]+|(?<!\d)[.,]+|[.,]+(?!\d)")
# Anything that is not a letter or digit (punctuation, emoji, symbols) separates words.
_NON_WORD = re.compile(r"[^a-z0-9]+")


class Normalizer:
    """Turns a raw message into a list of canonical tokens.

    Idempotent: normalizing already-normalized text changes nothing (the knowledge check
    rejects lexicons whose replacements are themselves slang keys or particles).
    """

    def __init__(
        self, slang: Mapping[str, str], particles: frozenset[str] | set[str], phrases: Mapping[str, str] | None = None
    ):
        self._slang = {key: tuple(value.split()) for key, value in slang.items()}
        self._particles = frozenset(particles)
        self._words: dict[str, tuple[str, ...]] = {}
        self._texts: dict[str, tuple[str, ...]] = {}
        # Several words that mean one thing ("how much", "thank you"), longest first.
        self._phrases: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
        for key, value in sorted((phrases or {}).items(), key=lambda kv: -len(kv[0].split())):
            words = tuple(key.split())
            self._phrases.setdefault(words[0], []).append((words, tuple(value.split())))

    def tokens(self, text: str) -> list[str]:
        return self._words_of(_prepare(text))

    def example(self, text: str) -> list[str]:
        """The tokens of a knowledge-base example, remembered: loading, the checks and both
        models read the same examples. (Patients' messages go through `tokens`, and are never
        kept.)"""
        found = self._texts.get(text)
        if found is None:
            found = tuple(self.tokens(text))
            if len(self._texts) >= _TEXT_CACHE_LIMIT:
                self._texts = {}
            self._texts[text] = found
        return list(found)

    def forget(self) -> None:
        """Forget the texts and words seen (a benchmark times a message as if it were new)."""
        self._texts, self._words = {}, {}

    def _words_of(self, prepared: str) -> list[str]:
        """Canonical tokens of prepared text (see _prepare): split, phrases, slang, particles."""
        text = _NON_WORD.sub(" ", prepared)
        text = _LETTER_DIGIT.sub(" ", text)
        raw_words = text.split()
        out: list[str] = []
        index = 0
        while index < len(raw_words):
            raw = raw_words[index]
            if raw in self._phrases:
                replacement, used = self._phrase_at(raw_words, index)
                if replacement is not None:
                    out.extend(token for token in replacement if token not in self._particles)
                    index += used
                    continue
            out.extend(self._word(raw))
            index += 1
        return out

    def _word(self, raw: str) -> tuple[str, ...]:
        """One word's canonical tokens (slang replaced, particles dropped), memoised."""
        found = self._words.get(raw)
        if found is None:
            found = tuple(token for token in self._slang.get(raw, (raw,)) if token not in self._particles)
            if len(self._words) < _WORD_CACHE_LIMIT:
                self._words[raw] = found
        return found

    def _phrase_at(self, words: list[str], index: int) -> tuple[tuple[str, ...] | None, int]:
        """The phrase starting at words[index], and how many words it spans. Words that yield
        no token (particles: "good ya morning") are skipped inside a phrase, as they would be
        dropped anyway; otherwise normalising the output again would find the phrase."""
        for key, value in self._phrases.get(words[index], ()):
            position = index
            for part in key:
                while position < len(words) and words[position] != part and not self._word(words[position]):
                    position += 1
                if position == len(words) or words[position] != part:
                    break
                position += 1
            else:
                return value, position - index
        return None, 0

    def sentences(self, text: str) -> list[list[str]]:
        """Tokens of each sentence (split on . ! ? ; and line breaks), empty ones left out."""
        return self.split(text)[0]

    def clauses(self, text: str) -> list[list[str]]:
        """Tokens of each clause: sentences further split at commas."""
        return self.split(text)[1]

    def split(self, text: str) -> tuple[list[list[str]], list[list[str]]]:
        """(sentences, clauses) from one pass of tokenization."""
        text = _prepare(text)
        sentences: list[list[str]] = []
        clauses: list[list[str]] = []
        current: list[str] = []
        position = 0
        for boundary in _CLAUSE_END.finditer(text):
            tokens = self._words_of(text[position : boundary.start()])
            if tokens:
                clauses.append(tokens)
                current.extend(tokens)
            position = boundary.end()
            if _SENTENCE_END.fullmatch(boundary.group(0)) and current:
                sentences.append(current)
                current = []
        tokens = self._words_of(text[position:])
        if tokens:
            clauses.append(tokens)
            current.extend(tokens)
        if current:
            sentences.append(current)
        return sentences, clauses

    def __call__(self, text: str) -> str:
        return " ".join(self.tokens(text))


def typed_words(text: str) -> list[str]:
    """The words exactly as typed (lower case, letters only), before any repair or slang: for
    checks on what the patient literally wrote ("kan" at the end, a button title, a number word)."""
    return _TYPED_WORD.findall(text.lower())


def _prepare(text: str | None) -> str:
    """Lower case, accents dropped, reduplication written out, stretched letters collapsed;
    punctuation is kept, so that sentences can still be told apart."""
    text = text or ""
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    text = _APOSTROPHE.sub("", text.lower())
    text = _REDUPLICATION.sub(_expand_reduplication, text)
    return _REPEATS.sub(r"\1", text)


def _expand_reduplication(found: re.Match) -> str:
    word, suffix = found.group(1), found.group(2)
    return f"{word} {word}{suffix}"
