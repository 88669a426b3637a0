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

# "kedut2" / "kedut2an" / "pelan2nya": a word followed by the digit 2 is written-out reduplication.
_REDUPLICATION = re.compile(r"\b([a-z]{2,})2([a-z]*)\b")
# Three or more of the same letter in a row is emphasis ("sakiiit", "tolonggg"): keep one.
_REPEATS = re.compile(r"([a-z])\1{2,}")
# Letters glued to digits ("jam3", "3x") are two tokens.
_LETTER_DIGIT = re.compile(r"(?<=[a-z])(?=\d)|(?<=\d)(?=[a-z])")
# Anything that is not a letter or digit (punctuation, emoji, symbols) separates words.
_NON_WORD = re.compile(r"[^a-z0-9]+")


class Normalizer:
    """Turns a raw message into a list of canonical tokens.

    Idempotent: normalizing already-normalized text changes nothing (the knowledge check
    rejects lexicons whose replacements are themselves slang keys or particles).
    """

    def __init__(self, slang: Mapping[str, str], particles: frozenset[str] | set[str]):
        self._slang = {key: tuple(value.split()) for key, value in slang.items()}
        self._particles = frozenset(particles)

    def tokens(self, text: str) -> list[str]:
        text = unicodedata.normalize("NFKD", text or "")
        text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
        text = _REDUPLICATION.sub(_expand_reduplication, text)
        text = _REPEATS.sub(r"\1", text)
        text = _NON_WORD.sub(" ", text)
        text = _LETTER_DIGIT.sub(" ", text)
        out: list[str] = []
        for raw in text.split():
            for token in self._slang.get(raw, (raw,)):
                if token not in self._particles:
                    out.append(token)
        return out

    def __call__(self, text: str) -> str:
        return " ".join(self.tokens(text))


def _expand_reduplication(found: re.Match) -> str:
    word, suffix = found.group(1), found.group(2)
    return f"{word} {word}{suffix}"
